"""Start-up figures: `stack up`, and a worker's time to /ready beside a plain aiokafka consumer.

Both the worker and the baseline join a fresh consumer group on the same embedded broker
with the same session timeout, so the ratio shows what Faust (tables, recovery, web
server) adds to a bare group join. Run: `.venv/bin/python -m benchmarks.startup --runs 5`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from benchmarks.local_stack import cli
from streams.stack.processes import free_port, read_record, spawn, stop_pid, wait_until

SESSION_TIMEOUT_S = 10.0


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def worker_ready_s(data_dir: Path) -> float:
    """Seconds from spawning `profitstream worker` to its first 200 on /ready."""
    port = free_port()
    env = dict(
        os.environ,
        PROFITSTREAM_DATA_DIR=str(data_dir),
        PROFITSTREAM_APP_ID=f"bench-{uuid.uuid4().hex[:8]}",
        PROFITSTREAM_WEB_PORT=str(port),
        PROFITSTREAM_BROKER_SESSION_TIMEOUT_S=str(SESSION_TIMEOUT_S),
    )
    started = time.monotonic()
    process = spawn(
        [sys.executable, "-m", "streams.cli", "worker"], data_dir / "bench-worker.log", env=env
    )
    try:
        wait_until(lambda: _ready(port), timeout_s=120, what="worker", process=process)
        return time.monotonic() - started
    finally:
        stop_pid(process.pid, timeout_s=30)
        process.wait()


async def _consumer_assigned_s(bootstrap: str) -> float:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=topic,
        session_timeout_ms=int(SESSION_TIMEOUT_S * 1000),
        heartbeat_interval_ms=3000,
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=50)
        return time.monotonic() - started
    finally:
        await consumer.stop()


def baseline_assigned_s(bootstrap: str) -> float:
    """Seconds for a plain aiokafka consumer to join a group and get its partitions."""
    return asyncio.run(_consumer_assigned_s(bootstrap))


def _row(name: str, values: list[float]) -> list[str]:
    return [
        name,
        f"{statistics.median(values):.2f}",
        f"{min(values):.2f}",
        f"{max(values):.2f}",
        " ".join(f"{v:.2f}" for v in values),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    console = Console(width=max(Console().width, 110))
    with tempfile.TemporaryDirectory(prefix="profitstream-bench-") as tmp:
        data_dir = Path(tmp)
        stack_up = []
        for _ in track(range(runs), description="stack up/down", console=console):
            started = time.monotonic()
            cli(data_dir, "stack", "up")
            stack_up.append(time.monotonic() - started)
            cli(data_dir, "stack", "down")
        cli(data_dir, "stack", "up")
        try:
            record = read_record(data_dir / "stack", "kafka")
            assert record is not None
            bootstrap = f"127.0.0.1:{record.port}"
            worker, baseline = [], []
            # Interleaved, so both see the same broker state and machine noise.
            for _ in track(range(runs), description="worker vs consumer", console=console):
                worker.append(worker_ready_s(data_dir))
                baseline.append(baseline_assigned_s(bootstrap))
        finally:
            cli(data_dir, "stack", "down")
    table = Table(
        title=f"start-up, seconds ({runs} runs, session timeout {SESSION_TIMEOUT_S:.0f} s)"
    )
    for column in ("what", "median", "min", "max", "runs"):
        table.add_column(column)
    table.add_row(*_row("profitstream stack up (Tansu + valkey)", stack_up))
    table.add_row(*_row("worker: spawn -> /ready 200", worker))
    table.add_row(*_row("baseline: aiokafka consumer -> assigned", baseline))
    console.print(table)
    ratio = statistics.median(worker) / statistics.median(baseline)
    console.print(f"worker / baseline (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
