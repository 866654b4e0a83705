"""The CLI's side of the control plane: publish a signed command, read the audit trail.

The current deployment, as ops see it, is what the audit trail says the workers folded:
the last command record's state after. A command is published with that revision as its
``expected_revision``, so a command written against a state that has moved on since is
rejected as stale instead of being applied on top of something its author never saw.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from features.bounded_json import MIB, load_bounded
from models_store.control.signing import Principal, issue, load_keyring
from models_store.control.state import client_digest
from streams.errors import ProfitstreamError
from streams.kafka.key_partitions import key_partition, partition_count
from streams.settings import Settings

MAX_RECORD_BYTES = MIB  # what a producer may send at most by default
MAX_RECORD_DEPTH = 64  # audit and monitoring records nest 4 deep


@dataclass(frozen=True)
class Published:
    """A command on the control topic, and its audit record once a worker wrote it."""

    command: dict[str, Any]
    offset: int
    audit: dict[str, Any] | None
    trail_end: int = 0  # the audit trail's end offset before the command was published


def signing_principal(settings: Settings) -> Principal:
    """Who the CLI signs as: ``PROFITSTREAM_CONTROL_PRINCIPAL`` in the keys file."""
    if settings.control_keys is None or settings.control_principal is None:
        raise ProfitstreamError(
            "signing a control command needs PROFITSTREAM_CONTROL_KEYS (the keys file) and "
            "PROFITSTREAM_CONTROL_PRINCIPAL (your name in it); "
            "`profitstream control keygen NAME --role admin` creates an entry"
        )
    principal = load_keyring(settings.control_keys).get(settings.control_principal)
    if principal is None:
        raise ProfitstreamError(
            f"{settings.control_principal!r} is not in {settings.control_keys}; "
            "`profitstream control keygen` adds a principal"
        )
    return principal


async def read_topic(
    bootstrap: list[str], options: dict[str, Any], topic: str, follow_s: float = 0.0
) -> list[tuple[int, int, bytes]]:
    """(offset, timestamp ms, value) of every record of a single-partition topic, to its end
    (and for ``follow_s`` seconds more)."""
    return await _read_partition(bootstrap, options, topic, None, None, follow_s)


async def read_key_partition(
    bootstrap: list[str], options: dict[str, Any], topic: str, key: str, since_ms: int
) -> list[tuple[int, int, bytes]]:
    """The records of the partition the default partitioner gives ``key``, from the first
    one stored at or after ``since_ms`` to the end."""
    return await _read_partition(bootstrap, options, topic, key, since_ms, 0.0)


async def _read_partition(
    bootstrap: list[str],
    options: dict[str, Any],
    topic: str,
    key: str | None,
    since_ms: int | None,
    follow_s: float,
) -> list[tuple[int, int, bytes]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        **options,
    )  # fmt: skip
    await consumer.start()
    try:
        partition = (
            0
            if key is None
            else await key_partition({"bootstrap_servers": bootstrap, **options}, topic, key)
        )
        if partition is None or topic not in await consumer.topics():
            return []
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = int((await consumer.end_offsets([tp]))[tp])
        found = None if since_ms is None else (await consumer.offsets_for_times({tp: since_ms}))
        if found is None:
            await consumer.seek_to_beginning(tp)
        elif found[tp] is None:
            return []
        else:
            consumer.seek(tp, found[tp].offset)
        deadline = time.monotonic() + follow_s
        records: list[tuple[int, int, bytes]] = []
        while await consumer.position(tp) < end or time.monotonic() < deadline:
            fetched = await consumer.getmany(tp, timeout_ms=200)
            records.extend(
                (r.offset, int(r.timestamp), r.value or b"") for r in fetched.get(tp, [])
            )
        return records
    finally:
        await consumer.stop()


def json_objects(values: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The values that are JSON objects, decoded (anything else, or too large or deeply
    nested to decode safely, is skipped)."""
    for value in values:
        try:
            record = load_bounded(value, max_bytes=MAX_RECORD_BYTES, max_depth=MAX_RECORD_DEPTH)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def audit_records(raw: list[tuple[int, int, bytes]]) -> list[dict[str, Any]]:
    """The audit trail's records, each once (a record repeated after a crash is dropped)."""
    seen: set[tuple[Any, ...]] = set()
    records = []
    for record in json_objects(value for _, _, value in raw):
        identity = (record.get("kind"), record.get("offset"), record.get("worker"),
                    record.get("at"))  # fmt: skip
        if identity in seen:
            continue
        seen.add(identity)
        records.append(record)
    return records


def experiment_results(
    raw: list[tuple[int, int, bytes]], experiment_id: str
) -> list[dict[str, Any]]:
    """The monitor's ``experiment_result`` records of one experiment, oldest first."""
    return [
        record
        for record in json_objects(value for _, _, value in raw)
        if record.get("kind") == "experiment_result"
        and record.get("experiment_id") == experiment_id
    ]


def current_state(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The deployment state after the last audited command (revision 0 before any)."""
    for record in reversed(records):
        if record.get("kind") == "command":
            return dict(record["after"])
    return {"revision": None, "champion": None, "experiment": None}


async def publish(
    settings: Settings,
    bootstrap: list[str],
    options: dict[str, Any],
    kind: str,
    args: dict[str, Any],
    key: str,
    wait_s: float,
) -> Published:
    """Sign and publish one command; wait up to ``wait_s`` for its audit record."""
    principal = signing_principal(settings)
    topics = settings.topics
    if await partition_count({"bootstrap_servers": bootstrap, **options}, topics.control) is None:
        # Producing would fail with a traceback, or (auto-creation) create the control log
        # with the broker's retention instead of kept forever.
        raise ProfitstreamError(
            f"topic {topics.control} does not exist: no worker has run on this broker yet "
            "(a worker creates its topics); start one with `profitstream worker`"
        )
    trail = await read_topic(bootstrap, options, topics.audit)
    state = current_state(audit_records(trail))
    command = issue(kind, args, principal, issued_at=datetime.now(UTC),
                    expected_revision=state.get("revision"))  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            topics.control, json.dumps(command).encode(), key=key.encode(), partition=0
        )
    finally:
        await producer.stop()
    after = trail[-1][0] + 1 if trail else 0
    command_id = command["command_id"]
    found = await _follow_trail(
        bootstrap, options, topics.audit, after, wait_s,
        lambda r: r.get("kind") == "command" and r.get("command_id") == command_id,
    )  # fmt: skip
    return Published(command, int(sent.offset), found[-1] if found else None, after)


def erasure_command(records: list[dict[str, Any]], client_id: str) -> dict[str, Any] | None:
    """The audit record of the accepted ``erase_client`` of ``client_id``, if any."""
    digest = client_digest(client_id)
    for record in records:
        args = record.get("args")
        if (
            record.get("kind") == "command"
            and record.get("type") == "erase_client"
            and record.get("outcome") == "accepted"
            and isinstance(args, dict)
            and args.get("client_sha256") == digest
        ):
            return record
    return None


async def erasure_reports(
    bootstrap: list[str],
    options: dict[str, Any],
    topic: str,
    control_offset: int,
    after: int,
    wait_s: float,
) -> list[dict[str, Any]]:
    """The ``erasure`` records of the command at ``control_offset``, followed from audit
    offset ``after`` until together they cover every table partition, for at most
    ``wait_s``."""
    return await _follow_trail(
        bootstrap, options, topic, after, wait_s,
        lambda r: r.get("kind") == "erasure" and r.get("offset") == control_offset,
        done=lambda found: not unswept(found),
    )  # fmt: skip


def unswept(records: list[dict[str, Any]]) -> list[int] | None:
    """The table partitions no ``erasure`` record of one command says it cleared (None:
    no record yet, so the partition count is unknown)."""
    if not records:
        return None
    total = max(int(r.get("table_partitions") or 0) for r in records)
    swept = {p for r in records for p in r.get("swept") or [] if isinstance(p, int)}
    return [p for p in range(total) if p not in swept]


def erasure_summary(records: list[dict[str, Any]]) -> str | None:
    """What the ``erasure`` records of one command say was erased, for people (None:
    nothing was found anywhere)."""
    parts = []
    for record in records:
        if not record.get("found"):
            continue
        cleared = [
            f"table partition {row['partition']} (changelog tombstone at offset "
            f"{row['changelog_offset']}, acknowledged)"
            for row in record.get("table", [])
        ]
        if record.get("redis_deleted"):
            cleared.append(f"Redis hash deleted ({record['redis_deleted']})")
        tombstone = record.get("predictions_tombstone") or {}
        cleared.append(f"predictions tombstone sent (partition {tombstone.get('partition')}, "
                       f"offset {tombstone.get('offset')})")  # fmt: skip
        parts.append(f"{', '.join(cleared)} by {record.get('worker')}")
    return "; ".join(parts) or None


async def _follow_trail(
    bootstrap: list[str],
    options: dict[str, Any],
    topic: str,
    after: int,
    wait_s: float,
    wanted: Callable[[dict[str, Any]], bool],
    done: Callable[[list[dict[str, Any]]], bool] = bool,
) -> list[dict[str, Any]]:
    """The ``wanted`` records of the trail from offset ``after``, followed until those
    found are ``done`` (by default: one) or ``wait_s`` passed."""
    deadline = time.monotonic() + wait_s
    found: list[dict[str, Any]] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                **options)  # fmt: skip
    await consumer.start()
    try:
        # No worker may have created the trail yet.
        while topic not in await consumer.topics():
            if time.monotonic() >= deadline:
                return found
            await asyncio.sleep(0.5)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, after)
        while (left := deadline - time.monotonic()) > 0:
            fetched = await consumer.getmany(tp, timeout_ms=max(1, int(min(left, 0.5) * 1000)))
            for record in json_objects(m.value or b"" for m in fetched.get(tp, [])):
                if wanted(record):
                    found.append(record)
                    if done(found):
                        return found
        return found
    finally:
        await consumer.stop()


async def read_since(
    bootstrap: list[str], options: dict[str, Any], topic: str, since_ms: int
) -> list[bytes]:
    """The values of every partition of ``topic`` stored at or after ``since_ms``, to the
    partitions' end offsets (empty when the topic does not exist)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **options
    )  # fmt: skip
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        found = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        remaining = []
        for tp in tps:
            start = found.get(tp)
            if start is not None and start.offset < ends[tp]:
                consumer.seek(tp, start.offset)
                remaining.append(tp)
        values: list[bytes] = []
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=200)
            for messages in fetched.values():
                values.extend(message.value or b"" for message in messages)
            remaining = [tp for tp in remaining if await consumer.position(tp) < ends[tp]]
        return values
    finally:
        await consumer.stop()
