"""A real Prometheus (Debian's binary) on the repo's own deploy/prometheus files, for tests.

The config directory is copied as it is, with the one substitution prometheus.yml's header
documents: the scrape and evaluation intervals (15s there) become ``interval``, and
targets/ and alertmanagers/ hold the test's workers and no Alertmanager.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streams.stack.processes import free_port, last_log_line, spawn, stop_pid, wait_until

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
INTERVAL_LINES = ("  scrape_interval: 15s\n", "  evaluation_interval: 15s\n")
# Each alert's signal: its expression before the threshold (the test checks it is part of
# the expression). Live workers must give each one data, but for those in EMPTY_WHEN_HEALTHY.
ALERT_SIGNALS = {
    "ProfitstreamWorkerDown": 'up{job="profitstream"}',
    "ProfitstreamWorkerNotReady": "profitstream_ready",
    "ProfitstreamConsumerLagGrowing": "profitstream:consumer_lag:sum",
    "ProfitstreamInputHeld": "max by (job, instance, reason) (profitstream_input_held_reason)",
    "ProfitstreamDeadLetters": "profitstream:dead_letters:rate5m",
    "ProfitstreamScoringFailures": "profitstream:scoring_failures:rate5m",
    "ProfitstreamPredictionLatencySLO": "profitstream:prediction_latency_seconds:p99_5m",
    "ProfitstreamExperimentGuardrailBroken":
        "max by (job, guardrail) (profitstream_experiment_guardrail_broken)",
    "ProfitstreamFeatureValuesOutsideTraining":
        "sum by (job, feature) (rate(profitstream_feature_values_outside_training_total[15m]))",
    "ProfitstreamCoverageBroken":
        "max by (job, model, arm) (profitstream_accuracy_coverage_broken)",
    "ProfitstreamEstimatedErrorUp":
        "avg by (job, model, arm) (profitstream_accuracy_estimated_mae)",
    "ProfitstreamFeatureDrift": "max by (job, model, arm) (profitstream_drift_max_psi)",
}  # fmt: skip
EMPTY_WHEN_HEALTHY = {
    # Labelled by feature: a series appears with the first value outside the training range.
    "ProfitstreamFeatureValuesOutsideTraining",
    # Labelled by model and arm: series appear once a model scores (the live test runs none).
    "ProfitstreamCoverageBroken",
    "ProfitstreamEstimatedErrorUp",
}


def binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; a clear failure when it is missing."""
    found = shutil.which(name)
    assert found is not None, (
        f"{name} not found: apt-get install --no-install-recommends prometheus (.ci/run does)"
    )
    return found


def with_interval(config: str, interval: str) -> str:
    """prometheus.yml with its scrape and evaluation intervals set to ``interval``."""
    for line in INTERVAL_LINES:
        assert config.count(line) == 1, f"prometheus.yml no longer holds {line.strip()!r} once"
        config = config.replace(line, line.replace("15s", interval))
    return config


def config_dir(dest: Path, targets: list[str], interval: str) -> Path:
    """A copy of deploy/prometheus under ``dest`` scraping ``targets`` (host:port)."""
    shutil.copytree(PROMETHEUS_DIR, dest)
    config = dest / "prometheus.yml"
    config.write_text(with_interval(config.read_text(), interval))
    for sub in ("targets", "alertmanagers"):
        for old in (dest / sub).glob("*.yml"):
            old.unlink()
    (dest / "targets" / "test.yml").write_text(yaml.safe_dump([{"targets": targets}]))
    return config


def alert_rules() -> list[dict[str, Any]]:
    """The alerting rules of alerts.yml."""
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    """The recording rules of alerts.yml."""
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "record" in rule]


@dataclass(frozen=True)
class PrometheusServer:
    """A running Prometheus and its HTTP API."""

    port: int
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``: its ``data``; fails on an error answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}{query}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector (a scalar result is one sample without labels)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "vector":
            return list(data["result"])
        assert data["resultType"] == "scalar", data
        return [{"metric": {}, "value": data["result"]}]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """The pending or firing alerts named ``name``."""
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]

    def targets_up(self) -> dict[str, str]:
        """Scrape target -> health (up, down, unknown)."""
        active = self.api("targets", state="active")["activeTargets"]
        return {t["labels"]["instance"]: t["health"] for t in active}


@contextmanager
def running_prometheus(
    workdir: Path, targets: list[str], interval: str = "1s"
) -> Iterator[PrometheusServer]:
    """A Prometheus on a free port with the repo's config and rules, scraping ``targets``."""
    config = config_dir(workdir / "config", targets, interval)
    port = free_port()
    log_path = workdir / "prometheus.log"
    argv = [binary("prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]  # fmt: skip
    process = spawn(argv, log_path, die_with_parent=True)
    server = PrometheusServer(port, log_path)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                return int(r.status) == 200
        except OSError:
            return False

    try:
        wait_until(ready, timeout_s=60, what="prometheus", process=process, log_path=log_path)
        yield server
    finally:
        stop_pid(process.pid, timeout_s=30)
        process.wait()
        print(f"--- prometheus log {log_path} (last line: {last_log_line(log_path)})")
        print(log_path.read_text(errors="replace")[-4000:])
