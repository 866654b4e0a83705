"""Feature pipeline throughput: one worker draining a backlog, beside a plain aiokafka consumer.

A simulated portfolio is produced once per run to fresh topics on the embedded stack.
Then, on the same topics: (1) a plain aiokafka consumer reads everything and decodes each
value with ``json.loads`` (the baseline); (2) a bare Faust agent only takes
``take_events`` batches (Faust's own per-event ceiling, for reference); (3) a
`profitstream worker` process (validation, state, table + changelog, progress rows, Redis
mirror) drains the same backlog, its rate taken from its own /metrics between the first
processed batch and the last, so start-up and group join are left out. Prints the rates,
the worker / baseline ratio and the medians over the runs.

Run: `.venv/bin/python -m benchmarks.feature_pipeline --clients 500 --months 12 --runs 5`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console

from benchmarks.local_stack import (
    LocalStack,
    create_topics,
    running_stack,
    spread_table,
    worker_env,
    worker_metric,
)
from features.offline import LoggedMessage
from features.simulation.messages import simulated_messages
from features.simulation.portfolio import simulate
from streams.kafka.replay import replay_to_kafka
from streams.settings import Settings, TopicNames
from streams.stack.processes import free_port, spawn, stop_pid

PARTITIONS = 4


@dataclass(frozen=True)
class RunResult:
    """One run's figures."""

    baseline_eps: float
    faust_eps: float
    pipeline_eps: float
    mean_batch: float

    @property
    def ratio(self) -> float:
        """Pipeline rate over baseline rate."""
        return self.pipeline_eps / self.baseline_eps


async def _baseline_eps(bootstrap: str, topics: list[str], total: int) -> float:
    """A plain consumer: fetch every record of ``topics`` and ``json.loads`` its value."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        first: float | None = None
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if first is None:
                    first = time.perf_counter()
                for record in records:
                    json.loads(record.value or b"")
                seen += len(records)
        assert first is not None
        return total / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def _pipeline(stack: LocalStack, data_dir: Path, prefix: str, total: int) -> tuple[float, float]:
    """(events/s between the first and the last batch, mean batch size) of one worker."""
    port = free_port()
    env = worker_env(stack, data_dir, prefix, port, PARTITIONS)
    log = data_dir / f"{prefix}.log"
    process = spawn([sys.executable, "-m", "streams.cli", "worker"], log, env=env)
    try:
        first: tuple[float, float] | None = None
        last: tuple[float, float] = (0.0, 0.0)
        deadline = time.monotonic() + 600
        while last[1] < total:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker stopped or stalled; see {log}")
            done = worker_metric(port, "profitstream_batch_events_sum")
            now = time.perf_counter()
            if done > 0 and first is None:
                first = (now, done)
            if done > last[1]:
                last = (now, done)
            time.sleep(0.05)
        assert first is not None
        if last[0] <= first[0]:
            raise SystemExit("the backlog fit in one batch: nothing to time; use more --clients")
        batches = worker_metric(port, "profitstream_batch_events_count")
        return (last[1] - first[1]) / (last[0] - first[0]), total / batches
    finally:
        stop_pid(process.pid, timeout_s=30)
        process.wait()


def _faust_take_eps(stack: LocalStack, data_dir: Path, topics: list[str], total: int) -> float:
    """Events/s of a bare Faust agent that only takes batches of the same topics."""
    scratch = data_dir / f"take-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    result = scratch / "events_per_s"
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.faust_take", stack.bootstrap, ",".join(topics),
         str(total), str(Settings.model_fields["batch_max_events"].default), str(scratch),
         str(result)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if not result.exists():
        raise RuntimeError(f"the bare Faust agent failed: {process.stderr[-2000:]}")
    return float(result.read_text())


def one_run(stack: LocalStack, data_dir: Path, messages: list[LoggedMessage]) -> RunResult:
    """Produce the log to fresh topics, then time the baseline and the worker on them."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topics = [f"{prefix}-activity", f"{prefix}-billing"]
    asyncio.run(create_topics(stack.bootstrap, topics, PARTITIONS))
    settings = Settings(
        broker=f"kafka://{stack.bootstrap}",
        redis_url=stack.redis_url,
        topics=TopicNames(activity=topics[0], billing=topics[1]),
    )
    asyncio.run(replay_to_kafka(messages, settings, [stack.bootstrap], rate=0))
    baseline = asyncio.run(_baseline_eps(stack.bootstrap, topics, len(messages)))
    faust_eps = _faust_take_eps(stack, data_dir, topics, len(messages))
    pipeline, mean_batch = _pipeline(stack, data_dir, prefix, len(messages))
    return RunResult(baseline, faust_eps, pipeline, mean_batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    console = Console(width=max(Console().width, 110))
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    with console.status("simulating the portfolio..."):
        portfolio = simulate(args.clients, args.months, seed=5, start=start)
        simulated = simulated_messages(portfolio)
        messages = [LoggedMessage(m.stream, m.key, m.value) for m in simulated]  # type: ignore[arg-type]
    console.print(f"{len(messages):,} events, {args.clients} clients x {args.months} months")
    results = []
    with tempfile.TemporaryDirectory(prefix="profitstream-bench-") as tmp:
        data_dir = Path(tmp)
        with running_stack(data_dir) as stack:
            for run in range(args.runs):
                results.append(one_run(stack, data_dir, messages))
                latest = results[-1]
                console.print(
                    f"run {run + 1}: baseline {latest.baseline_eps:,.0f} ev/s, "
                    f"bare Faust {latest.faust_eps:,.0f} ev/s, "
                    f"pipeline {latest.pipeline_eps:,.0f} ev/s, ratio {latest.ratio:.3f}, "
                    f"mean batch {latest.mean_batch:,.0f} events"
                )
    rows = [
        ("baseline: aiokafka + json.loads (ev/s)", [r.baseline_eps for r in results], ",.0f"),
        ("bare Faust agent, take_events only (ev/s)", [r.faust_eps for r in results], ",.0f"),
        ("profitstream worker (ev/s)", [r.pipeline_eps for r in results], ",.0f"),
        ("ratio worker / baseline", [r.ratio for r in results], ".3f"),
        ("mean batch (events)", [r.mean_batch for r in results], ",.0f"),
    ]
    title = f"feature pipeline, one worker, {len(messages):,} events, {args.runs} runs"
    console.print(spread_table(title, rows))


if __name__ == "__main__":
    main()
