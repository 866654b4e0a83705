"""The Faust table of client states and partition progress, read and written per partition.

Faust picks both the changelog partition and the RocksDB partition of a table access
from the *current event*. The input reader's records are not Faust events at all, so
every access here names its partition explicitly and acts as a stand-in event of it.

A write returns the future of its changelog message; the pipeline waits until the
broker has acknowledged every one before it reads the next batch, so a progress row
never claims more than the changelog holds.

Besides one row per client, the table keeps two rows per input partition (``#`` cannot
start a client id), in the changelog partition of the input partition they describe, so
they move with it on a rebalance:

- ``#progress/{topic}/{partition}``: the highest offset of that partition processed so far;
- ``#deployment/{topic}/{partition}``: the deployment revision the partition is scored
  with and the first offset it scored (``models_store.control.state``): a partition never
  goes back to an older deployment, whichever worker reads it next.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faust
from faust.streams import _current_event
from faust.types import RecordMetadata, TableT

from features.state import ClientState
from streams.pipeline.client_row import ClientRow, decode_row, encode_row

TABLE_NAME = "client-state"
PROGRESS_PREFIX = "#progress/"
DEPLOYMENT_PREFIX = "#deployment/"


@dataclass(frozen=True)
class _PartitionMessage:
    topic: str
    partition: int


@dataclass(frozen=True)
class _PartitionEvent:
    message: _PartitionMessage


def declare_client_table(app: faust.App, partitions: int) -> TableT[str, bytes]:
    """The table: client_id -> encoded ``ClientRow`` (msgpack bytes), with its changelog."""
    # value_type=bytes makes Faust store and send the value as is ("raw").
    return app.Table(
        TABLE_NAME, default=None, partitions=partitions, key_type=str, value_type=bytes
    )


@contextmanager
def _in_partition(topic: str, partition: int) -> Iterator[None]:
    """Make a stand-in event of ``partition`` Faust's current event for the block."""
    event = _PartitionEvent(_PartitionMessage(topic, partition))
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


def _write(
    table: TableT[str, bytes], key: str, value: bytes, topic: str, partition: int
) -> Awaitable[RecordMetadata]:
    with _in_partition(topic, partition):
        # What Table.__setitem__ does, minus dropping the changelog future on the floor,
        # and minus Faust's "persisted offset" bookkeeping for our own writes: that offset
        # should only ever come from reading the changelog, because Faust's recovery
        # refuses to start when it exceeds the broker's reported end offset — which
        # Tansu under-reports after a multi-record batch (it answers ListOffsets "latest"
        # with the last batch's base offset + 1). Recovery then simply re-reads our own
        # writes, which converges to the same values.
        table.data[key] = value
        return table.changelog_topic.send_soon(
            key=key,
            value=value,
            partition=partition,
            # Declared on faust's Collection, not on the TableT protocol.
            key_serializer=table.key_serializer,  # type: ignore[attr-defined]
            value_serializer=table.value_serializer,  # type: ignore[attr-defined]
            eager_partitioning=True,
        )


def load_row(table: TableT[str, bytes], client_id: str, topic: str, partition: int) -> ClientRow:
    """The client's row (a new one for an unknown client), read from its partition."""
    with _in_partition(topic, partition):
        raw = table.get(client_id)
    return ClientRow(ClientState(client_id)) if raw is None else decode_row(raw)


def save_row(
    table: TableT[str, bytes], row: ClientRow, topic: str, partition: int
) -> Awaitable[RecordMetadata]:
    """Write the row to the table and its changelog in ``partition``.

    Returns the changelog send, resolved when the broker has acknowledged it.
    """
    return _write(table, row.client_id, encode_row(row), topic, partition)


def progress_key(topic: str, partition: int) -> str:
    """The table key of an input partition's progress row."""
    return f"{PROGRESS_PREFIX}{topic}/{partition}"


def load_progress(table: TableT[str, bytes], topic: str, partition: int) -> int | None:
    """The highest offset of the input partition processed so far, if any."""
    with _in_partition(topic, partition):
        raw = table.get(progress_key(topic, partition))
    return None if raw is None else int(raw)


def save_progress(
    table: TableT[str, bytes], topic: str, partition: int, offset: int
) -> Awaitable[RecordMetadata]:
    """Record that the input partition is processed through ``offset``."""
    return _write(table, progress_key(topic, partition), str(offset).encode(), topic, partition)


def load_deployment(table: TableT[str, bytes], topic: str, partition: int) -> int | None:
    """The deployment revision the input partition was last scored with, if any."""
    with _in_partition(topic, partition):
        raw = table.get(f"{DEPLOYMENT_PREFIX}{topic}/{partition}")
    return None if raw is None else int(raw.split(b":")[0])


def save_deployment(
    table: TableT[str, bytes], topic: str, partition: int, revision: int, from_offset: int
) -> Awaitable[RecordMetadata]:
    """Record that the input partition is scored with ``revision`` from ``from_offset`` on."""
    key = f"{DEPLOYMENT_PREFIX}{topic}/{partition}"
    return _write(table, key, f"{revision}:{from_offset}".encode(), topic, partition)


def delete_client(
    table: TableT[str, bytes], client_id: str, topic: str, partition: int
) -> Awaitable[RecordMetadata] | None:
    """Delete a client's state from ``partition``: a tombstone in the changelog, so its
    compacted view forgets the client too. None when the partition holds no such client."""
    with _in_partition(topic, partition):
        if table.get(client_id) is None:
            return None
        del table.data[client_id]
        return table.changelog_topic.send_soon(
            key=client_id,
            value=None,
            partition=partition,
            key_serializer=table.key_serializer,  # type: ignore[attr-defined]
            value_serializer="raw",
            eager_partitioning=True,
        )


def read_state(table: TableT[str, bytes], client_id: str) -> ClientState | None:
    """The state of a client from outside the stream (e.g. an HTTP view), if known."""
    if client_id.startswith("#"):
        return None
    raw = table.get(client_id)
    return None if raw is None else decode_row(raw).state
