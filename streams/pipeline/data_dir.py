"""The worker's data dir: one worker at a time, and no local table state the changelog lost.

RocksDB allows one process per database, so a second worker on the same data dir (and
app id) would die on its lock with a traceback; an exclusive ``flock`` taken before Faust
opens anything turns that into one line. And the table's local RocksDB state is only a
cache of its changelog: when the changelog has lost what the local state holds — the
embedded broker keeps topics in memory, so ``stack down`` / ``stack up`` empties it —
Faust refuses to start (``ConsistencyError``), or, with no persisted offset, would keep
rows (progress offsets among them) that no longer match the broker. Such partitions are
deleted before Faust starts and rebuilt from what the changelog holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.errors import ProfitstreamError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
# Where Faust's RocksDB store keeps the offset of the last changelog record it applied.
PERSISTED_OFFSET_KEY = b"__faust\x00offset__"


@contextlib.contextmanager
def exclusive_data_dir(path: Path, shown: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) while the block runs; ``shown``
    is the data dir as the user configured it, for the error message."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ProfitstreamError(
            f"cannot create the data dir {path}: {exc.strerror}; "
            "set PROFITSTREAM_DATA_DIR to a writable directory"
        ) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ProfitstreamError(
                f"the data dir {shown} is in use by another worker (pid {holder}); give each "
                "worker its own with --data-dir / PROFITSTREAM_DATA_DIR (on the embedded "
                "stack also pass --broker and --redis-url as `profitstream stack status` shows)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True)
class LocalPartition:
    """One partition's RocksDB database on disk, as far as the stale check needs it."""

    partition: int
    path: Path
    empty: bool
    persisted_offset: int | None


def stale_partitions(
    local: Iterable[LocalPartition], changelog_ends: Mapping[int, int]
) -> list[LocalPartition]:
    """The local partitions holding more than the changelog: it is empty, or it ends at or
    before the offset the local state says it applied (Faust's ``ConsistencyError``)."""
    stale = []
    for part in local:
        end = changelog_ends.get(part.partition, 0)
        if part.empty:
            continue
        if end == 0 or (part.persisted_offset is not None and part.persisted_offset >= end):
            stale.append(part)
    return stale


def read_local_partition(partition: int, path: Path) -> LocalPartition:
    """Open ``path`` read-only and report whether it holds anything, and its offset."""
    from rocksdict import AccessType, Options, Rdict

    db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        empty = next(iter(db.keys()), None) is None
        raw = db.get(PERSISTED_OFFSET_KEY)
    finally:
        db.close()
    return LocalPartition(partition, path, empty, None if raw is None else int(raw))


def table_partition_path(tabledir: Path, table: str, partition: int) -> Path:
    """Where Faust's RocksDB store keeps ``partition`` of ``table``."""
    return tabledir / f"{table}-{partition}.db"


async def changelog_ends(
    bootstrap: list[str], options: dict[str, Any], topic: str, partitions: int
) -> dict[int, int]:
    """The end offset of each changelog partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: int(offset) for tp, offset in ends.items()}


async def drop_stale_state(
    tabledir: Path,
    table: str,
    changelog: str,
    partitions: int,
    bootstrap: list[str],
    options: dict[str, Any],
) -> list[int]:
    """Delete the local partitions of ``table`` its changelog no longer holds (one WARNING);
    return their numbers."""
    paths = [(p, table_partition_path(tabledir, table, p)) for p in range(partitions)]
    local = [read_local_partition(p, path) for p, path in paths if path.is_dir()]
    if not local:
        return []
    stale = stale_partitions(local, await changelog_ends(bootstrap, options, changelog, partitions))
    for part in stale:
        shutil.rmtree(part.path)
    if stale:
        numbers = [part.partition for part in stale]
        log.warning(
            "deleted the local state of table %s partition(s) %s under %s: the changelog %s no "
            "longer holds it (the broker lost its data, e.g. the embedded stack was restarted); "
            "they start from what the changelog holds",
            table, numbers, tabledir, changelog,
        )  # fmt: skip
        return numbers
    return []
