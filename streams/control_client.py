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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from features.bounded_json import MIB, load_bounded
from models_store.command_signing import Principal, issue, load_keyring
from streams.errors import ProfitstreamError
from streams.key_partitions import key_partition
from streams.settings import Settings

MAX_RECORD_BYTES = MIB  # what a producer may send at most by default
MAX_RECORD_DEPTH = 64  # audit and monitoring records nest 4 deep


@dataclass(frozen=True)
class Published:
    """A command on the control topic, and its audit record once a worker wrote it."""

    command: dict[str, Any]
    offset: int
    audit: dict[str, Any] | None


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
    audit = await _audit_of(bootstrap, options, topics.audit, command["command_id"], after,
                            wait_s)  # fmt: skip
    return Published(command, int(sent.offset), audit)


async def _audit_of(
    bootstrap: list[str],
    options: dict[str, Any],
    topic: str,
    command_id: str,
    after: int,
    wait_s: float,
) -> dict[str, Any] | None:
    """The command's audit record: the trail followed from offset ``after`` for ``wait_s``."""
    deadline = time.monotonic() + wait_s
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                **options)  # fmt: skip
    await consumer.start()
    try:
        # No worker may have created the trail yet.
        while topic not in await consumer.topics():
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.5)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, after)
        while (left := deadline - time.monotonic()) > 0:
            fetched = await consumer.getmany(tp, timeout_ms=max(1, int(min(left, 0.5) * 1000)))
            for record in json_objects(m.value or b"" for m in fetched.get(tp, [])):
                if record.get("kind") == "command" and record.get("command_id") == command_id:
                    return record
        return None
    finally:
        await consumer.stop()
