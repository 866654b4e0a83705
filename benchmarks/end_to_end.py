"""End to end: events -> features -> scoring -> predictions topic, beside a plain passthrough.

Once: a model is trained on a simulated portfolio (quick budget) and registered in a
scratch registry. Each run, on fresh topics of the embedded stack:
1. throughput — the stream portfolio is produced as a backlog; a plain aiokafka
   consume + ``json.loads`` + produce passthrough of the same events is timed (baseline),
   then one `profitstream worker` with the model drains it (its rate from its /metrics,
   first to last batch) and the predictions it emitted are counted;
2. latency — a fresh worker is started and the events are produced at a fixed rate
   (default: half the 10,000 ev/s target); an independent consumer reads the predictions
   topic, and each prediction's latency is its arrival there minus the production time
   of the event that triggered it (same clock: one process produces and consumes).
Then the model alone: one-row scoring (prediction, interval, drivers) and per-row cost in
a batch of 10,000. ``--drift-off-too``: each run also drains the backlog, on topics of its
own, with a worker without drift monitoring, the two in alternating order, for the
monitoring's overhead side by side.

Run: `.venv/bin/python -m benchmarks.end_to_end --clients 500 --months 12 --runs 3`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console

from benchmarks.local_stack import (
    LocalStack,
    create_topics,
    running_stack,
    spread_table,
    worker_env,
    worker_metric,
)
from features.definitions import FEATURE_NAMES
from features.simulation.messages import SimulatedMessage, history_frame, simulated_messages
from features.simulation.portfolio import simulate
from models_store.registry import open_registry
from models_store.scoring.scorer import Scorer
from models_store.training.train import TrainingRequest, train
from models_store.training.tuning import SearchBudget
from streams.stack.processes import free_port, spawn, stop_pid, wait_until

PARTITIONS = 4
START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
MODEL = "profitability@1.0.0"


@dataclass(frozen=True)
class RunResult:
    """One run's figures."""

    baseline_eps: float
    worker_eps: float
    predictions_per_s: float
    latencies_ms: list[float]
    latency_rate: float
    worker_eps_without_drift: float | None = None

    @property
    def ratio(self) -> float:
        """Worker rate over passthrough rate."""
        return self.worker_eps / self.baseline_eps


async def _produce(
    bootstrap: str, prefix: str, messages: list[SimulatedMessage], rate: float
) -> dict[str, float]:
    """Produce to ``{prefix}-activity|billing`` at ``rate`` ev/s (0: at once); returns the
    wall time each event_id was handed to the producer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks="all",
                                max_batch_size=256 * 1024)  # fmt: skip
    await producer.start()
    sent: dict[str, float] = {}
    try:
        began = time.time()
        for index, message in enumerate(messages):
            sent[json.loads(message.value)["event_id"]] = time.time()
            await producer.send(f"{prefix}-{message.stream}", message.value, key=message.key)
            if rate > 0 and index % 50 == 49:
                ahead = (index + 1) / rate - (time.time() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _passthrough_eps(bootstrap: str, prefix: str, total: int) -> float:
    """Baseline: consume the inputs, ``json.loads`` each, produce a small JSON per event."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 << 20)  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                                max_batch_size=256 * 1024)  # fmt: skip
    await consumer.start()
    await producer.start()
    try:
        partitions = [TopicPartition(f"{prefix}-{s}", p) for s in ("activity", "billing")
                      for p in range(PARTITIONS)]  # fmt: skip
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, first = 0, 0.0
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                first = first or time.perf_counter()
                for record in records:
                    event = json.loads(record.value or b"")
                    out = json.dumps({"client_id": event["client_id"], "seen": True}).encode()
                    await producer.send(f"{prefix}-passthrough", out, key=record.key)
                seen += len(records)
        await producer.flush()
        return total / (time.perf_counter() - first)
    finally:
        await consumer.stop()
        await producer.stop()


def _start_worker(
    stack: LocalStack, data_dir: Path, prefix: str, registry: Path, *, drift: bool = True
) -> tuple[int, int]:
    port = free_port()
    env = worker_env(stack, data_dir, prefix, port, PARTITIONS)
    env |= {"PROFITSTREAM_MODEL_REGISTRY": str(registry), "PROFITSTREAM_MODEL": MODEL}
    if not drift:
        env["PROFITSTREAM_DRIFT_MONITORING"] = "false"
    process = spawn([sys.executable, "-m", "streams.cli", "worker"], data_dir / f"{prefix}.log",
                    env=env)  # fmt: skip

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                return int(r.status) == 200
        except OSError:
            return False

    wait_until(ready, timeout_s=120, what="the worker", process=process)
    return process.pid, port


def _drain(port: int, total: int) -> tuple[float, float]:
    """(events/s first to last batch, predictions/s over the same span) of a worker."""
    first: tuple[float, float, float] | None = None
    last = (0.0, 0.0, 0.0)
    deadline = time.monotonic() + 900
    while last[1] < total:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker stalled")
        done = worker_metric(port, "profitstream_batch_events_sum")
        emitted = worker_metric(port, "profitstream_predictions_emitted_total")
        now = time.perf_counter()
        if done > 0 and first is None:
            first = (now, done, emitted)
        if done > last[1]:
            last = (now, done, emitted)
        time.sleep(0.05)
    assert first is not None
    span = last[0] - first[0]
    if span <= 0:
        raise SystemExit("the backlog fit in one batch: nothing to time; use more --clients")
    return (last[1] - first[1]) / span, (last[2] - first[2]) / span


async def _latencies(
    stack: LocalStack, prefix: str, messages: list[SimulatedMessage], rate: float
) -> list[float]:
    # A short fetch wait: the measuring consumer must not add the broker's default 500 ms.
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=5)  # fmt: skip
    await consumer.start()
    partitions = [TopicPartition(f"{prefix}-predictions", p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    arrivals: list[tuple[str, float]] = []
    producing = asyncio.create_task(_produce(stack.bootstrap, prefix, messages, rate))
    quiet_since = None
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        now = time.time()
        for records in batches.values():
            arrivals.extend((json.loads(r.value or b"")["event_id"], now) for r in records)
        if producing.done():
            quiet_since = quiet_since or now
            if batches:
                quiet_since = now
            if now - quiet_since > 3:
                break
    await consumer.stop()
    sent = producing.result()
    return [1000 * (arrived - sent[event_id]) for event_id, arrived in arrivals]


def _train_model(registry: Path, scratch: Path) -> None:
    log = history_frame(simulated_messages(simulate(200, 15, seed=21, start=START)))
    request = TrainingRequest(name="profitability", version="1.0.0", validation_cutoffs=2,
                              test_cutoffs=2, budget=SearchBudget(6, 2, 60))  # fmt: skip
    open_registry(str(registry)).register(train(log, request, scratch).bundle)


def _model_times(registry: Path, scratch: Path) -> tuple[float, float, float]:
    """(one row: prediction + interval + drivers, ms; per row in a batch of 10,000 without
    and with drivers, µs): best of several tries."""
    scorer = Scorer.from_registry(open_registry(str(registry)), MODEL, scratch)
    rng = np.random.default_rng(0)
    rows = rng.lognormal(3, 1, size=(10_000, len(FEATURE_NAMES)))
    single = min(_timed(lambda: scorer.score(rows[:1])) for _ in range(200)) * 1e3
    plain = Scorer(scorer.card, scorer.model, drivers=0)
    batch = min(_timed(lambda: plain.score(rows)) for _ in range(5)) / len(rows) * 1e6
    with_drivers = min(_timed(lambda: scorer.score(rows)) for _ in range(3)) / len(rows) * 1e6
    return single, batch, with_drivers


def _timed(call: object) -> float:
    began = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - began


def _drained(
    stack: LocalStack, data_dir: Path, registry: Path, messages: list[SimulatedMessage],
    drift: bool,
) -> tuple[float, float, str]:  # fmt: skip
    """A backlog on fresh topics drained by a fresh worker: (ev/s, predictions/s, prefix)."""
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    topics = [f"{prefix}-{name}" for name in ("activity", "billing", "passthrough")]
    asyncio.run(create_topics(stack.bootstrap, topics, PARTITIONS))
    asyncio.run(_produce(stack.bootstrap, prefix, messages, rate=0))
    pid, port = _start_worker(stack, data_dir, prefix, registry, drift=drift)
    try:
        return (*_drain(port, len(messages)), prefix)
    finally:
        stop_pid(pid, timeout_s=30)


def one_run(
    stack: LocalStack, data_dir: Path, registry: Path, messages: list[SimulatedMessage],
    rate: float, latency_events: int, drift_off_first: bool | None = None,
) -> RunResult:  # fmt: skip
    """Throughput on a backlog, then latency at ``rate``, each on fresh topics;
    ``drift_off_first`` not None: a backlog drained without drift monitoring too, on
    topics of its own, before or after the one with it."""
    without = None
    if drift_off_first:
        without = _drained(stack, data_dir, registry, messages, False)[0]
    worker_eps, predictions, prefix = _drained(stack, data_dir, registry, messages, True)
    if drift_off_first is False:
        without = _drained(stack, data_dir, registry, messages, False)[0]
    baseline = asyncio.run(_passthrough_eps(stack.bootstrap, prefix, len(messages)))
    live = f"e2e-{uuid.uuid4().hex[:8]}"
    topics = [f"{live}-{name}" for name in ("activity", "billing", "predictions")]
    asyncio.run(create_topics(stack.bootstrap, topics, PARTITIONS))
    pid, _ = _start_worker(stack, data_dir, live, registry)
    try:
        latencies = asyncio.run(_latencies(stack, live, messages[:latency_events], rate))
    finally:
        stop_pid(pid, timeout_s=30)
    return RunResult(baseline, worker_eps, predictions, latencies, rate, without)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=5000.0, help="ev/s of the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--drift-off-too",
        action="store_true",
        help="also drain each backlog without drift monitoring (alternating)",
    )
    args = parser.parse_args()
    console = Console(width=max(Console().width, 110))
    results = []
    with tempfile.TemporaryDirectory(prefix="profitstream-e2e-") as tmp:
        data_dir = Path(tmp)
        registry = data_dir / "registry"
        with console.status("training the benchmark's model (quick budget)..."):
            _train_model(registry, data_dir / "bundles")
            single_ms, batch_us, drivers_us = _model_times(registry, data_dir / "cache")
        messages = simulated_messages(simulate(args.clients, args.months, seed=5, start=START))
        console.print(f"{len(messages):,} events, {args.clients} clients x {args.months} months")
        with running_stack(data_dir) as stack:
            for run in range(args.runs):
                latency_events = min(len(messages), int(args.rate * args.latency_seconds))
                order = (run % 2 == 0) if args.drift_off_too else None
                result = one_run(stack, data_dir, registry, messages, args.rate, latency_events,
                                 order)  # fmt: skip
                results.append(result)
                p = np.percentile(result.latencies_ms, [50, 95, 99])
                console.print(
                    f"run {run + 1}: passthrough {result.baseline_eps:,.0f} ev/s, worker "
                    f"{result.worker_eps:,.0f} ev/s (ratio {result.ratio:.3f}), "
                    f"{result.predictions_per_s:,.0f} predictions/s; at {args.rate:,.0f} ev/s: "
                    f"{len(result.latencies_ms):,} predictions, p50 {p[0]:.0f} ms, p95 "
                    f"{p[1]:.0f} ms, p99 {p[2]:.0f} ms"
                )
    percentiles = [np.percentile(r.latencies_ms, [50, 95, 99]) for r in results]
    rows = [
        ("passthrough: aiokafka consume + json + produce (ev/s)",
         [r.baseline_eps for r in results], ",.0f"),
        ("profitstream worker, features + scoring (ev/s)", [r.worker_eps for r in results],
         ",.0f"),
        ("ratio worker / passthrough", [r.ratio for r in results], ".3f"),
        ("predictions emitted per second (backlog)", [r.predictions_per_s for r in results],
         ",.0f"),
        (f"latency p50 at {args.rate:,.0f} ev/s (ms)", [p[0] for p in percentiles], ",.1f"),
        (f"latency p95 at {args.rate:,.0f} ev/s (ms)", [p[1] for p in percentiles], ",.1f"),
        (f"latency p99 at {args.rate:,.0f} ev/s (ms)", [p[2] for p in percentiles], ",.1f"),
    ]  # fmt: skip
    if args.drift_off_too:
        off = [r.worker_eps_without_drift or math.nan for r in results]
        rows += [
            ("worker without drift monitoring (ev/s)", off, ",.0f"),
            ("with / without drift monitoring", [r.worker_eps / o for r, o in zip(results, off,
                                                 strict=True)], ".3f"),
        ]  # fmt: skip
    title = f"end to end, one worker, {len(messages):,} events, {args.runs} runs"
    console.print(spread_table(title, rows))
    console.print(f"model alone: one row (prediction, interval, 5 drivers) {single_ms:.2f} ms; "
                  f"batch of 10,000: {batch_us:.1f} µs/row without drivers, "
                  f"{drivers_us:.1f} µs/row with them")  # fmt: skip


if __name__ == "__main__":
    main()
