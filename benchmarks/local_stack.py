"""The embedded stack for benchmarks (started in a scratch dir, stopped afterwards), and
what every benchmark does with it: topics, worker environments, metrics, summary tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.table import Table

from streams.settings import TopicNames
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


def worker_env(
    stack: LocalStack, data_dir: Path, prefix: str, port: int, partitions: int
) -> dict[str, str]:
    """Environment of a benchmark worker: its own app id, data dir, port and topics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFITSTREAM_")}
    env |= {
        "PROFITSTREAM_BROKER": f"kafka://{stack.bootstrap}",
        "PROFITSTREAM_REDIS_URL": stack.redis_url,
        "PROFITSTREAM_APP_ID": prefix,
        "PROFITSTREAM_DATA_DIR": str(data_dir / prefix),
        "PROFITSTREAM_WEB_PORT": str(port),
        "PROFITSTREAM_TOPIC_PARTITIONS": str(partitions),
        "PROFITSTREAM_LOG_LEVEL": "warning",
    }
    for name in TopicNames.model_fields:
        env[f"PROFITSTREAM_TOPICS__{name.upper()}"] = f"{prefix}-{name}"
    return env


def worker_metric(port: int, name: str) -> float:
    """Sum of a worker's Prometheus metric ``name`` over its labels (0 if it cannot be read)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            body = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    )


def spread_table(title: str, rows: list[tuple[str, list[float], str]]) -> Table:
    """Median, min and max over the runs of each (what, values, format) row."""
    table = Table(title=title)
    for column in ("what", "median", "min", "max"):
        table.add_column(column, justify="right")
    for name, values, fmt in rows:
        table.add_row(name, format(statistics.median(values), fmt), format(min(values), fmt),
                      format(max(values), fmt))  # fmt: skip
    return table
