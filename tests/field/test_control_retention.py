"""Scenario 4: the control log's retention (Apache Kafka only: Tansu keeps no topic configs).

Every worker folds the control topic from its first offset, so a control topic that
deletes old records would silently undo deployments on the next start. Intended
behaviour: a worker checks the control topic's ``retention.ms`` at start and refuses to
start on a short one with a one-line error naming the topic, the setting and the fix; and
a worker that creates the control topic creates it with ``retention.ms=-1``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, untyped
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from streams.stack.processes import stop_pid
from tests.conftest import KAFKA_CHOICE
from tests.field.harness import (
    READY_TIMEOUT_S,
    ReadySampler,
    SteadyProducer,
    final_checks,
    findings_report,
    fleet,
    http_get,
    wait_for,
)
from tests.services.cli import assert_one_line_error
from tests.services.event_log import rebuild, simulated_log

pytestmark = [
    pytest.mark.field,
    pytest.mark.skipif(KAFKA_CHOICE == "tansu",
                       reason="Tansu keeps no topic configs (retention.ms): Apache Kafka only"),
]  # fmt: skip


def _topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    """The topic's effective configuration (DescribeConfigs)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: str(entry.value) for name, entry in entries.items()}


def test_a_worker_refuses_a_control_topic_that_forgets(
    worker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    control = worker_env["PROFITSTREAM_TOPICS__CONTROL"]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    short = {"segment.ms": "1000", "retention.ms": "2000"}
    created = admin.create_topics([NewTopic(control, num_partitions=1, replication_factor=1,
                                            config=short)])  # fmt: skip
    created[control].result(timeout=60)
    assert _topic_config(kafka_bootstrap, control)["retention.ms"] == "2000"
    port = int(worker_env["PROFITSTREAM_WEB_PORT"])
    argv = [sys.executable, "-m", "streams.cli", "worker"]
    out, err = tmp_path / "worker.out", tmp_path / "worker.err"
    started = time.monotonic()
    # Its own process, stdout and stderr apart: the refusal must be one line on stderr.
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            argv, env=worker_env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )
    try:
        wait_for(lambda: process.poll() is not None or http_get(port, "/ready")[0] == 200,
                 READY_TIMEOUT_S, "the worker to refuse to start (or to start)")  # fmt: skip
        code = process.poll()
    finally:
        if process.poll() is None:
            stop_pid(process.pid, timeout_s=60)
        process.wait(timeout=60)
    result = subprocess.CompletedProcess(argv, process.returncode, out.read_text(errors="replace"),
                                         err.read_text(errors="replace"))  # fmt: skip
    with capsys.disabled():
        shown = result.stderr.strip().splitlines()[-3:]
        print(f"\n[field] short control retention: exit code {code} after "
              f"{time.monotonic() - started:.1f}s; stderr: {shown}")  # fmt: skip
    assert code is not None, f"the worker started on {control} with retention.ms=2000"
    assert_one_line_error(result, control, "retention.ms")
    _, _, fix = result.stderr.strip().partition(";")
    assert fix.strip(), f"no fix named: {result.stderr.strip()}"


def test_a_worker_creates_its_control_topic_to_keep_every_record(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    control = worker_env["PROFITSTREAM_TOPICS__CONTROL"]
    messages = simulated_log(10, 4, malformed=0.0, duplicate=0.0, late=0.0, seed=1304)
    expected = rebuild(messages)
    with fleet(tmp_path) as add:
        worker = add("a", worker_env)
        worker.start()
        producer = SteadyProducer(kafka_bootstrap, worker_env["PROFITSTREAM_APP_ID"], messages,
                                  rate=500)  # fmt: skip
        with ReadySampler([worker]) as sampler:
            producer.start()
            try:
                producer.wait_sent()
                result = final_checks(
                    bootstrap=kafka_bootstrap, redis_url=redis_url, env=worker_env,
                    expected=expected, workers=[worker], sampler=sampler,
                    input_times=producer.times, reference=None, version=None,
                )  # fmt: skip
            finally:
                producer.halt()
        worker.stop()
    config = _topic_config(kafka_bootstrap, control)
    with capsys.disabled():
        print(
            f"\n[field] fresh app: {control} created with retention.ms="
            f"{config.get('retention.ms')}, cleanup.policy={config.get('cleanup.policy')}"
        )
    assert config.get("retention.ms") == "-1", config.get("retention.ms")
    assert not result.findings, findings_report("fresh app id", result.findings)
