"""Rebuild the Redis mirror of this worker's partitions when Redis lost it.

Detection. A marker per table partition (``OnlineStore.marker_key``), not one per
namespace: the workers of one app share the namespace and each owns some partitions, and
a namespace marker rewritten by the first worker to rebuild would hide the loss from the
others. The owner checks its markers every ``PROFITSTREAM_MIRROR_CHECK_INTERVAL_S``, after
every Redis reconnect and after every new assignment; a missing one (FLUSHALL, a valkey
restarted without persistence, a first start) makes it rebuild that partition.

A rebuild of partitions P, between two batches (the input reader waits for it):
1. each marker of P := ``rebuilding`` (unconditionally);
2. every client of P in the table: its hash (``features.serving.online_fields``, features
   as of its latest event, as a batch writes it), then its latest emitted prediction;
3. each marker of P := ``ok``, only if it still exists (``SET XX``): a flush during the
   rebuild removed it, and the partition is rebuilt again.
A marker left at ``rebuilding`` by a worker that lost the partition mid-way makes the next
owner rebuild it.

The latest prediction. A client's table row keeps only what decides its next emission
(``ClientRow.emitted``: margin, tier, model, arm, features' time), not the payload
(interval, drivers, ids, timestamps), and re-scoring would not give it back (the state
moved on since; ``scored_at`` differs). So the rebuild re-reads the predictions topic, only
the partitions its clients' keys hash to, with a group-less consumer, from the start to the
end offsets it saw first (its own batch loop waits, so no prediction of its clients is in
flight), and keeps each client's last record that matches its memo. That costs one read of
those partitions per rebuild — a rare event — and nothing on the hot path, where storing
the payload in every state would add ~1 KB to each state write. Its limit: a prediction
older than the topic's retention is gone; such clients get their hash without
``prediction`` (counted, and logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError
from faust.types import TableT
from redis.exceptions import RedisError

from features.serving import online_fields
from features.state import ClientState
from models_store.scoring.emission import Emitted
from streams.kafka.key_partitions import client_partition, partition_count
from streams.metrics import MIRROR_CLIENTS_REBUILT, MIRROR_PREDICTIONS_MISSING, MIRROR_REBUILDS
from streams.pipeline.client_row import decode_row
from streams.pipeline.waiting_store import WaitingStore, backoff_s, describe
from streams.settings import Settings
from streams.worker_health import WorkerHealth

log = logging.getLogger(__name__)

OK = "ok"
REBUILDING = "rebuilding"
CHUNK = 500  # clients per Redis round trip; the event loop serves the web views in between
READ_IDLE_LIMIT_S = 30.0  # the predictions topic read gives up after this long without data


class RebuildStoppedError(Exception):
    """The partitions are being revoked: the rebuild stops, its markers say ``rebuilding``."""


# --- pure ----------------------------------------------------------------------------------


def marker_value(status: str, worker_id: str, at: datetime) -> str:
    """A marker's value: its status first, then who wrote it when (for operators)."""
    return f"{status} {worker_id} {at.isoformat()}"


def partitions_to_rebuild(markers: Mapping[int, str | None]) -> set[int]:
    """The partitions whose marker is missing or not ``ok`` (a rebuild left unfinished)."""
    return {p for p, value in markers.items() if value is None or value.split(" ")[0] != OK}


def table_partitions(state: ClientState) -> set[int]:
    """The input partitions a client's events came from (``state.offsets``: "topic:p"); its
    state lives in the table partition of the same number."""
    return {int(key.rpartition(":")[2]) for key in state.offsets}


def matches_memo(payload: Mapping[str, Any], memo: Emitted) -> bool:
    """Whether a prediction payload is the one the client's ``emitted`` memo remembers."""
    model = payload.get("model") or {}
    experiment = payload.get("experiment")
    try:
        features_as_of = datetime.fromisoformat(str(payload["features_as_of"])).timestamp()
    except (KeyError, ValueError):
        return False
    return (
        payload.get("predicted_margin") == memo.margin
        and payload.get("risk_tier") == memo.tier
        and f"{model.get('name')}@{model.get('version')}" == memo.model
        and (None if experiment is None else experiment.get("arm")) == memo.arm
        # The payload's timestamp has microseconds; the memo the float it came from.
        and abs(features_as_of - memo.event_time) < 1e-5
    )


def json_object(value: bytes | None) -> dict[str, Any] | None:
    """A record's value as a JSON object (None if it is not one)."""
    try:
        decoded = json.loads(value or b"")
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    """``items`` in consecutive slices of at most ``size``."""
    return (items[start : start + size] for start in range(0, len(items), size))


# --- I/O -----------------------------------------------------------------------------------


async def latest_predictions(
    options: dict[str, Any], topic: str, wanted: Mapping[str, Emitted], stop: Callable[[], bool]
) -> dict[str, str]:
    """For each client of ``wanted``, the last record of the predictions topic matching its
    memo (clients without one are left out). ``options``: aiokafka client options."""
    if not wanted:
        return {}
    count = await partition_count(options, topic)
    if count is None:
        return {}
    tps = [TopicPartition(topic, p) for p in sorted({client_partition(c, count) for c in wanted})]
    consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest", **options)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[str, str] = {}
        reading = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
        last_data = time.monotonic()
        while reading:
            if stop():
                raise RebuildStoppedError
            fetched = await consumer.getmany(*reading, timeout_ms=500, max_records=5000)
            for records in fetched.values():
                for record in records:
                    client_id = (record.key or b"").decode(errors="replace")
                    memo = wanted.get(client_id)
                    payload = None if memo is None else json_object(record.value)
                    if memo is not None and payload is not None and matches_memo(payload, memo):
                        found[client_id] = (record.value or b"").decode()
            if fetched:
                last_data = time.monotonic()
            elif time.monotonic() - last_data > READ_IDLE_LIMIT_S:
                raise KafkaTimeoutError(f"no data from {topic} for {READ_IDLE_LIMIT_S:.0f}s")
            # Tansu under-reports an end offset (the last batch's base offset + 1), but a
            # fetch returns whole batches, so reaching it reads the last batch entirely.
            reading = [tp for tp in reading if await consumer.position(tp) < ends[tp]]
        return found
    finally:
        await consumer.stop()


class MirrorKeeper:
    """Checks the mirror markers of this worker's partitions; rebuilds what Redis lost."""

    def __init__(
        self,
        settings: Settings,
        states: TableT[str, bytes],
        store: WaitingStore,
        health: WorkerHealth,
        consumer_options: dict[str, Any],
        worker_id: str,
    ) -> None:
        self._settings = settings
        self._states = states
        self._store = store
        self._health = health
        self._options = consumer_options
        self._worker_id = worker_id
        self._pending: set[int] = set()
        self._rebuilding = False
        self._failures = 0  # rebuilds in a row that failed (the broker did not answer)
        self._retry_at = 0.0
        self._wake = asyncio.Event()

    def _owned(self) -> set[int]:
        return {partition for _, partition in self._health.next_offsets}

    def wake(self) -> None:
        """Check the markers now (Redis reconnected)."""
        self._wake.set()

    def assigned(self) -> None:
        """The worker's partitions changed: their markers are unchecked."""
        self._health.mirror = "unchecked"
        self._wake.set()

    async def watch(self) -> None:
        """Check the markers for as long as the worker runs."""
        failures = 0
        while True:
            interval = self._settings.mirror_check_interval_s
            if failures:
                interval = min(interval, backoff_s(failures, self._settings.retry_backoff_max_s))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                await self.check()
                failures = 0
            except (RedisError, OSError):
                failures += 1  # the store logged it and marked Redis unreachable

    async def check(self) -> None:
        """Read the markers of the owned partitions once; note the ones to rebuild."""
        if self._rebuilding:
            return  # its own markers say "rebuilding" until it is done
        owned = self._owned()
        if owned:
            missing = partitions_to_rebuild(await self._store.read_markers(owned))
        else:
            await self._store.ping()
            missing = set()
        if self._rebuilding:
            return
        new = missing - self._pending
        if new:
            log.info("Redis has no complete mirror of partition(s) %s: rebuilding", sorted(new))
        self._pending = (self._pending | missing) & owned
        self._health.mirror = "rebuild" if self._pending else "ok"

    def due(self) -> bool:
        """Whether the input reader should run ``rebuild`` before its next batch."""
        return bool(self._pending) and time.monotonic() >= self._retry_at

    async def rebuild(self, stop: Callable[[], bool]) -> None:
        """Rebuild the pending partitions this worker owns (between two batches)."""
        todo = self._pending & self._owned()
        self._pending = set(todo)
        if not todo:
            self._health.mirror = "ok"
            return
        self._rebuilding = True
        try:
            await self._rebuild(todo, stop)
            self._failures = 0
        except RebuildStoppedError:
            log.info("mirror rebuild of partition(s) %s stopped: partitions revoked", sorted(todo))
        except (KafkaError, OSError, TimeoutError) as exc:
            self._failures += 1
            wait = backoff_s(self._failures, self._settings.retry_backoff_max_s)
            self._retry_at = time.monotonic() + wait
            log.warning("mirror rebuild of partition(s) %s failed reading the predictions "
                        "topic (%s); trying again in %.1f s", sorted(todo), describe(exc),
                        wait)  # fmt: skip
        finally:
            self._rebuilding = False
        self._health.mirror = "rebuild" if self._pending else "ok"

    async def _rebuild(self, todo: set[int], stop: Callable[[], bool]) -> None:
        started = time.monotonic()
        for partition in sorted(todo):
            value = marker_value(REBUILDING, self._worker_id, datetime.now(UTC))
            await self._store.write_marker(partition, value, only_if_present=False)
        ttl = self._settings.redis_ttl_s or None
        memos: dict[str, Emitted] = {}
        rows: dict[str, dict[str, str]] = {}
        clients = 0
        # One pass over the table (a RocksDB iterator; the batch loop waits meanwhile):
        # the features first, chunk by chunk.
        for key, raw in self._states.items():
            if key.startswith("#") or raw is None:
                continue
            row = decode_row(raw)
            state = row.state
            if state.watermark is None or not table_partitions(state) & todo:
                continue
            rows[state.client_id] = online_fields(state)
            if row.emitted is not None:
                memos[state.client_id] = row.emitted
            if len(rows) >= CHUNK:
                clients += await self._write(rows, ttl, stop)
        clients += await self._write(rows, ttl, stop)
        # Then the latest predictions, from the topic.
        topic = self._settings.topics.predictions
        found = await latest_predictions(self._options, topic, memos, stop)
        ids = sorted(found)
        for part in chunks(ids, CHUNK):
            await self._write({c: {"prediction": found[c]} for c in part}, ttl, stop)
        finished = {
            partition
            for partition in sorted(todo)
            if await self._store.write_marker(
                partition, marker_value(OK, self._worker_id, datetime.now(UTC)),
                only_if_present=True,
            )
        }  # fmt: skip
        self._pending -= finished
        missing = len(memos) - len(found)
        MIRROR_REBUILDS.inc()
        MIRROR_CLIENTS_REBUILT.inc(clients)
        MIRROR_PREDICTIONS_MISSING.inc(missing)
        log.info("rebuilt the Redis mirror of partition(s) %s: %d clients, %d with their latest "
                 "prediction, in %.2f s", sorted(todo), clients, len(found),
                 time.monotonic() - started)  # fmt: skip
        if missing:
            log.warning("%d rebuilt clients have no prediction in Redis: their latest is no "
                        "longer on %s (retention)", missing, topic)  # fmt: skip
        if todo - finished:
            log.info("Redis was flushed again during the rebuild of partition(s) %s: "
                     "rebuilding them again", sorted(todo - finished))  # fmt: skip

    async def _write(
        self, rows: dict[str, dict[str, str]], ttl: int | None, stop: Callable[[], bool]
    ) -> int:
        """Write ``rows`` (then empty it); returns how many."""
        if stop():
            raise RebuildStoppedError
        count = len(rows)
        await self._store.write_many(dict(rows), ttl)
        rows.clear()
        await asyncio.sleep(0)  # let the web views answer between chunks
        return count
