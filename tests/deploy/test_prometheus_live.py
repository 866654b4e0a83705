"""A real Prometheus (Debian's) with the repo's prometheus.yml and alerts.yml scrapes two
live workers of one app scoring a streamed portfolio (live broker and Redis): every alert's
signal, every alert's expression and every dashboard query answer from its HTTP API, with
data; then a stopped worker makes ProfitstreamWorkerDown pending, then firing after its
``for``, for that worker only."""

from __future__ import annotations

import contextlib
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from deploy.grafana.build_dashboard import queries
from streams.errors import ProfitstreamError
from streams.stack.processes import free_port, wait_until
from tests.services.control_plane import V1
from tests.services.event_log import metric, produce_log, simulated_log
from tests.services.kafka_clients import partition_counts
from tests.services.prometheus_server import (
    ALERT_SIGNALS,
    EMPTY_WHEN_HEALTHY,
    PrometheusServer,
    alert_rules,
    recording_rules,
    running_prometheus,
)
from tests.services.worker_process import WorkerProcess, running_worker

# What Grafana puts for $__rate_interval with a 1 s scrape interval and a short range.
RATE_INTERVAL = "1m"
_DURATION = re.compile(r"^(\d+)([smh])$")


def _seconds(duration: str) -> float:
    match = _DURATION.match(duration)
    assert match is not None, duration
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def _missing(prometheus: PrometheusServer, exprs: dict[str, str]) -> list[str]:
    """The names whose expression returns no sample now."""
    return [name for name, expr in exprs.items() if not prometheus.query(expr)]


def _wait_for_data(prometheus: PrometheusServer, exprs: dict[str, str]) -> None:
    def answered() -> bool:
        return not _missing(prometheus, exprs)

    try:
        wait_until(answered, timeout_s=180, what="every expression to return data")
    except ProfitstreamError:
        pytest.fail(f"no data from: {_missing(prometheus, exprs)}")


@pytest.mark.timeout(900)
def test_prometheus_with_the_repos_rules_scrapes_workers_and_alerts_on_a_stopped_one(
    worker_env: dict[str, str],
    kafka_bootstrap: str,
    unique: str,
    control_registry: Path,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    env = {**worker_env, "PROFITSTREAM_MODEL_REGISTRY": str(control_registry),
           "PROFITSTREAM_MODEL": V1}  # fmt: skip
    second = {**env, "PROFITSTREAM_DATA_DIR": env["PROFITSTREAM_DATA_DIR"] + "-b",
              "PROFITSTREAM_WEB_PORT": str(free_port())}  # fmt: skip
    # Malformed messages too: the dead letters' series exist, labelled by reason.
    messages = simulated_log(40, 6, malformed=0.03, duplicate=0.01, late=0.01, seed=15)
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(running_worker(env))
        stoppable = contextlib.ExitStack()
        stack.enter_context(stoppable)  # closed again below, or at the end
        other: WorkerProcess = stoppable.enter_context(running_worker(second))
        targets = [f"127.0.0.1:{w.web_port}" for w in (first, other)]
        prometheus = stack.enter_context(running_prometheus(tmp_path / "prometheus", targets))
        wait_until(lambda: set(prometheus.targets_up().values()) == {"up"}, timeout_s=60,
                   what="prometheus to scrape both workers")  # fmt: skip

        topics = {f"{unique}-activity": 4, f"{unique}-billing": 4}
        wait_until(lambda: partition_counts(kafka_bootstrap, list(topics)) == topics,
                   timeout_s=60, what=f"topics {topics}")  # fmt: skip
        produce_log(kafka_bootstrap, unique, messages)
        wait_until_consumed_by_both(first, other, len(messages))
        healthy_at = time.monotonic()

        signals = {n: s for n, s in ALERT_SIGNALS.items() if n not in EMPTY_WHEN_HEALTHY}
        recorded = {r["record"]: r["record"] for r in recording_rules()}
        panels = {q.expr: q.expr.replace("$__rate_interval", RATE_INTERVAL)
                  for q in queries() if q.empty_when_healthy is None}  # fmt: skip
        _wait_for_data(prometheus, {**signals, **recorded, **panels})
        # The rest answers too (no error), empty or not; no alert fires in a healthy system.
        for name in EMPTY_WHEN_HEALTHY:
            prometheus.query(ALERT_SIGNALS[name])
        for query in queries():
            prometheus.query(query.expr.replace("$__rate_interval", RATE_INTERVAL))
        for rule in alert_rules():
            prometheus.query(rule["expr"])
        firing = [a for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing"]
        assert firing == []
        print(
            f"healthy: {len(signals)} signals, {len(recorded)} recorded series, "
            f"{len(panels)} panel queries with data in {time.monotonic() - healthy_at:.1f}s"
        )

        down = {r["alert"]: r for r in alert_rules()}["ProfitstreamWorkerDown"]
        stoppable.close()  # stops the second worker
        stopped_at = time.monotonic()

        def state() -> set[tuple[str, str]]:
            return {(a["labels"]["instance"], a["state"])
                    for a in prometheus.alerts("ProfitstreamWorkerDown")}  # fmt: skip

        wait_until(lambda: state() == {(targets[1], "pending")}, timeout_s=60,
                   what="ProfitstreamWorkerDown pending for the stopped worker")  # fmt: skip
        pending_after = time.monotonic() - stopped_at
        wait_until(lambda: state() == {(targets[1], "firing")},
                   timeout_s=_seconds(down["for"]) + 60,
                   what=f"ProfitstreamWorkerDown firing after its for: {down['for']}")  # fmt: skip
        firing_after = time.monotonic() - stopped_at
        # Pending since activeAt (the first evaluation that saw the target down): firing only
        # once its `for` has passed since then.
        (alert,) = prometheus.alerts("ProfitstreamWorkerDown")
        active_at = datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00"))
        assert time.time() - active_at.timestamp() >= _seconds(down["for"])
        assert prometheus.targets_up() == {targets[0]: "up", targets[1]: "down"}
    print(
        f"worker stopped: pending after {pending_after:.1f}s, firing after {firing_after:.1f}s;"
        f" test {time.monotonic() - started:.0f}s"
    )


def wait_until_consumed_by_both(first: WorkerProcess, other: WorkerProcess, count: int) -> None:
    """Wait until the two workers together have processed ``count`` messages."""

    def done() -> bool:
        return sum(sum(metric(w, "profitstream_batch_events_sum").values())
                   for w in (first, other)) >= count  # fmt: skip

    wait_until(done, timeout_s=300, what=f"the workers to process {count} messages")
