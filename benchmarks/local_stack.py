"""The embedded stack for benchmarks: started in a scratch dir, stopped afterwards."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.stack.processes import read_record


@dataclass(frozen=True)
class LocalStack:
    """Where the benchmark's broker and Redis listen."""

    bootstrap: str
    redis_url: str


def cli(data_dir: Path, *args: str) -> None:
    """Run a `profitstream` command on ``data_dir``; raise if it fails."""
    subprocess.run(
        [sys.executable, "-m", "streams.cli", "--data-dir", str(data_dir), *args],
        check=True,
        capture_output=True,
    )


@contextmanager
def running_stack(data_dir: Path) -> Iterator[LocalStack]:
    """`profitstream stack up` on ``data_dir`` for the duration of the block."""
    cli(data_dir, "stack", "up")
    try:
        kafka = read_record(data_dir / "stack", "kafka")
        redis = read_record(data_dir / "stack", "redis")
        assert kafka is not None
        assert redis is not None
        yield LocalStack(f"127.0.0.1:{kafka.port}", f"redis://127.0.0.1:{redis.port}/0")
    finally:
        cli(data_dir, "stack", "down")


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create ``names`` with ``partitions`` partitions each (replication 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()
