"""`profitstream predictions export`: the latest prediction of every client, from the
predictions topic.

The export reads every partition of the topic from its first offset up to the end offset
the broker reported when the export started, keeps the last record of each key (what
compaction keeps) and leaves out the keys whose last record is a tombstone (erased
clients). Tansu can report an end offset below the real one (the last batch's base offset
+ 1); a fetch returns whole batches, so reaching it reads that batch, and once every
partition is there the export reads on until nothing arrives for ``IDLE_S``, for
``SETTLE_MAX_S`` at most (a topic still being written would keep it going).

Written as JSON Lines (stdout without ``--out``, or a ``.jsonl`` file), or as CSV or
Parquet with the columns of `profitstream score` (``Prediction.flat``), ordered by client
id. One line on stderr says how many, and the offsets read up to: a subscriber that
starts consuming there misses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID

from streams.cli.context import load_settings, make_console
from streams.cli.publishing import broker_connection
from streams.errors import ProfitstreamError

if TYPE_CHECKING:
    from models_store.scoring.prediction import Prediction

# streams.cli.app imports this module for every command: the model code (xgboost, ~1 s),
# pandas and aiokafka are imported only when the export runs.

predictions_cli = typer.Typer(
    help="The predictions topic: export the latest prediction of every client.",
    no_args_is_help=True,
)
err = make_console(stderr=True)

FORMATS = (".jsonl", ".csv", ".parquet")
IDLE_S = 0.5
SETTLE_MAX_S = 5.0
FETCH_MS = 200
FETCH_RECORDS = 10_000


# --- pure ----------------------------------------------------------------------------------


@dataclass
class Reading:
    """What a read of the topic has seen so far (shown in the error when it times out)."""

    partitions: list[int] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)  # as reported at the start
    positions: dict[int, int] = field(default_factory=dict)  # the next offset to read
    records: int = 0
    reached: bool = False  # every partition read up to its end offset
    # Key -> value of its last record (None: a tombstone).
    last: dict[bytes | None, bytes | None] = field(default_factory=dict)

    def take(self, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """Fold records in topic order: a key's later record replaces its earlier one."""
        for key, value in records:
            self.last[key] = value
            self.records += 1

    def behind(self) -> list[int]:
        """The partitions not read up to their end offset yet."""
        return [p for p in self.partitions if self.positions.get(p, 0) < self.ends.get(p, 0)]


@dataclass(frozen=True)
class Latest:
    """The latest predictions by client id, and what was left out."""

    predictions: dict[str, Prediction]
    erased: int  # keys whose last record is a tombstone
    unreadable: int  # keys whose last record is no prediction of that key (or no key)


def latest_predictions(last: Mapping[bytes | None, bytes | None]) -> Latest:
    """Decode the last record of each key: a tombstone leaves the key out, as does a value
    that is not a prediction whose ``client_id`` is the key."""
    from pydantic import ValidationError

    from models_store.scoring.prediction import Prediction

    predictions: dict[str, Prediction] = {}
    erased = unreadable = 0
    for key, value in last.items():
        if value is None:
            erased += 1
            continue
        try:
            prediction = Prediction.model_validate_json(value)
        except ValidationError:
            unreadable += 1
            continue
        if key is None or key != prediction.client_id.encode():
            unreadable += 1
            continue
        predictions[prediction.client_id] = prediction
    return Latest(predictions, erased, unreadable)


def output_format(out: Path | None) -> str:
    """``.jsonl``, ``.csv`` or ``.parquet`` from the file name (JSON Lines without one)."""
    if out is None:
        return ".jsonl"
    if out.suffix.lower() not in FORMATS:
        raise ProfitstreamError(f"--out {out}: use a .jsonl, .csv or .parquet file")
    return out.suffix.lower()


def offsets_text(offsets: Mapping[int, int]) -> str:
    """``0:12 1:0 2:7``: partition:offset."""
    return " ".join(f"{p}:{o}" for p, o in sorted(offsets.items())) or "none"


# --- I/O -----------------------------------------------------------------------------------


@contextmanager
def _quiet_aiokafka() -> Iterator[None]:
    """aiokafka logs each failed connection with a traceback; the export reports one line."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def read_topic(
    bootstrap: list[str],
    options: dict[str, Any],
    topic: str,
    reading: Reading,
    progress: Progress | None = None,
) -> None:
    """Read ``topic`` from its first offsets to the end offsets of now into ``reading``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.kafka.key_partitions import partition_count
    from streams.kafka.preflight import MAX_PARTITION_FETCH_BYTES

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES, **options,
    )  # fmt: skip
    await consumer.start()
    try:
        missing = ProfitstreamError(
            f"topic {topic} does not exist on {','.join(bootstrap)}: no worker has created it "
            "yet; check PROFITSTREAM_TOPICS__PREDICTIONS"
        )
        # All topics' metadata first: naming a missing topic makes Tansu create it.
        if topic not in await consumer.topics():
            raise missing
        # The consumer's own metadata may not hold the topic yet (Apache Kafka, a new topic).
        count = await partition_count({"bootstrap_servers": bootstrap, **options}, topic)
        if not count:
            raise missing
        reading.partitions = list(range(count))
        tps = [TopicPartition(topic, p) for p in reading.partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        firsts = await consumer.beginning_offsets(tps)
        reading.ends = {tp.partition: int(o) for tp, o in (await consumer.end_offsets(tps)).items()}
        reading.positions = {tp.partition: int(o) for tp, o in firsts.items()}
        task: TaskID | None = None
        if progress is not None:
            total = sum(reading.ends[p] - reading.positions[p] for p in reading.partitions)
            task = progress.add_task(f"reading {topic}", total=total)

        async def fetch(wanted: list[TopicPartition], timeout_ms: int) -> int:
            fetched = await consumer.getmany(*wanted, timeout_ms=timeout_ms,
                                             max_records=FETCH_RECORDS)  # fmt: skip
            taken = 0
            for tp in sorted(fetched, key=lambda t: t.partition):
                records = fetched[tp]
                reading.take((r.key, r.value) for r in records)
                taken += len(records)
            for tp in tps:
                reading.positions[tp.partition] = int(await consumer.position(tp))
            if progress is not None and task is not None:
                progress.advance(task, taken)
            return taken

        while behind := reading.behind():
            await fetch([TopicPartition(topic, p) for p in behind], FETCH_MS)
        reading.reached = True
        settle_until = time.monotonic() + SETTLE_MAX_S
        while tps and time.monotonic() < settle_until:
            if not await fetch(tps, int(IDLE_S * 1000)):
                break
    finally:
        await consumer.stop()


def read_latest(
    bootstrap: list[str], options: dict[str, Any], topic: str, timeout_s: float
) -> tuple[Reading, float]:
    """Read the topic within ``timeout_s``, with a progress bar in a terminal; the reading
    and how long it took. A one-line error when it cannot."""
    from aiokafka.errors import KafkaError

    reading = Reading()
    started = time.monotonic()
    with (
        _quiet_aiokafka(),
        Progress(console=err, transient=True, disable=not err.is_terminal) as progress,
    ):
        reader = read_topic(bootstrap, options, topic, reading, progress)
        try:
            asyncio.run(asyncio.wait_for(reader, timeout_s))
        except TimeoutError:
            if reading.reached:  # complete: only the wait for a late tail was cut short
                return reading, time.monotonic() - started
            behind = reading.behind()
            where = (
                f"partitions {', '.join(map(str, behind))} not read to their end offsets "
                f"({reading.records:,} records read)"
                if behind
                else "the broker did not describe the topic and its offsets"
            )
            raise ProfitstreamError(
                f"reading {topic} took longer than --timeout {timeout_s:g}s: {where}; "
                "pass a longer --timeout, or check the broker"
            ) from None
        except KafkaError as exc:
            raise ProfitstreamError(
                f"reading {topic} from {','.join(bootstrap)} failed: {type(exc).__name__}: "
                f"{exc}; check the broker and the PROFITSTREAM_SECURITY__* settings"
            ) from exc
    return reading, time.monotonic() - started


def write_predictions(predictions: list[Prediction], out: Path | None, fmt: str) -> None:
    """Write ``predictions`` as ``fmt``: to ``out`` through a temporary file beside it (a
    failed export leaves no half-written file), or as JSON Lines to stdout."""
    import pandas as pd

    from models_store.scoring.prediction import FLAT_COLUMNS

    if out is None:
        for prediction in predictions:
            sys.stdout.write(prediction.model_dump_json() + "\n")
        sys.stdout.flush()
        return
    partial = out.with_name(f".{out.name}.partial")
    try:
        if fmt == ".jsonl":
            with partial.open("w", encoding="utf-8") as file:
                for prediction in predictions:
                    file.write(prediction.model_dump_json() + "\n")
        else:
            frame = pd.DataFrame([p.flat() for p in predictions], columns=list(FLAT_COLUMNS))
            if fmt == ".csv":
                frame.to_csv(partial, index=False)
            else:
                frame.to_parquet(partial, index=False)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ProfitstreamError(f"cannot write {out}: {exc.strerror or exc}") from exc


@predictions_cli.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="a .jsonl, .csv or .parquet file (default: JSON Lines on stdout)"
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="seconds the whole read may take")
    ] = 120.0,
) -> None:
    """Write the latest prediction of every client, from the predictions topic.

    Reads every partition from its first offset to its end, keeps each client's last
    record and leaves out the erased ones (a tombstone); ordered by client id. One line on
    stderr says how many, and the offsets to follow the topic from.
    """
    fmt = output_format(out)
    settings = load_settings(ctx)
    bootstrap, options = broker_connection(settings)
    topic = settings.topics.predictions
    reading, seconds = read_latest(bootstrap, options, topic, timeout)
    latest = latest_predictions(reading.last)
    predictions = [latest.predictions[c] for c in sorted(latest.predictions)]
    write_predictions(predictions, out, fmt)
    left_out = f"{latest.erased:,} erased (tombstone)"
    if latest.unreadable:
        left_out += f", {latest.unreadable:,} unreadable"
    where = "stdout" if out is None else str(out)
    err.print(
        escape(
            f"exported {len(predictions):,} latest predictions to {where}: {reading.records:,} "
            f"records of {topic} read from {len(reading.partitions)} partitions up to offsets "
            f"{offsets_text(reading.positions)} in {seconds:.2f}s; left out {left_out}"
        ),
        highlight=False,
        soft_wrap=True,
    )
