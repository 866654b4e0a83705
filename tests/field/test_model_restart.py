"""Scenario 3: a restart with another ``PROFITSTREAM_MODEL`` than the control log deploys.

Worker A starts with ``profitability@1.0.0``; ops deploy 2.0.0 with a signed command;
A is restarted with ``PROFITSTREAM_MODEL=profitability@2.0.0`` and worker B joins with the
old ``profitability@1.0.0``. Intended design: once the control log holds a deployment it
decides, and ``PROFITSTREAM_MODEL`` only seeds an empty log. So both workers become ready,
neither stalls (every event produced after the restart is applied) and every prediction
from then on names 2.0.0, whatever each worker was started with.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.field.harness import (
    PROGRESS_TIMEOUT_S,
    ReadySampler,
    SteadyProducer,
    applied,
    final_checks,
    findings_report,
    fleet,
    http_get,
    predictions_of,
    read_to_end,
    reference_margins,
    wait_for,
)
from tests.services.control_plane import V1, V2, command, control_env
from tests.services.event_log import rebuild, simulated_log

pytestmark = pytest.mark.field

RATE = 300  # events/s


@pytest.mark.timeout(600)
def test_a_restart_with_another_model_follows_the_control_log(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str,
    field_registry: Path, field_keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    env = control_env(worker_env, field_registry, field_keys,
                      PROFITSTREAM_BATCH_MAX_EVENTS="200",
                      PROFITSTREAM_PREDICTION_DELTA="0")  # fmt: skip
    messages = simulated_log(30, 10, malformed=0.0, duplicate=0.0, late=0.0, seed=1303)
    expected = rebuild(messages)
    reference = reference_margins(field_registry, V2, expected, tmp_path / "scorer")
    third = len(messages) // 3
    predictions_topic = env["PROFITSTREAM_TOPICS__PREDICTIONS"]
    findings: list[str] = []
    with fleet(tmp_path) as add:
        a = add("a", env)
        b = add("b", {**env, "PROFITSTREAM_DATA_DIR": env["PROFITSTREAM_DATA_DIR"] + "-b"})
        a.start()
        producer = SteadyProducer(kafka_bootstrap, env["PROFITSTREAM_APP_ID"], messages, RATE,
                                  allowed=third)  # fmt: skip
        with ReadySampler([a, b]) as sampler:
            producer.start()
            try:
                wait_for(lambda: (applied(a) or 0) >= third, PROGRESS_TIMEOUT_S,
                         "A to apply the first third with 1.0.0", [a])  # fmt: skip
                assert command(env, kafka_bootstrap, "register", model=V2)["outcome"] == "accepted"
                deployed = command(env, kafka_bootstrap, "deploy", model=V2)
                assert deployed["outcome"] == "accepted", deployed
                revision = deployed["after"]["deployment_revision"]
                # The second third is scored with 2.0.0 by A: its partitions remember it.
                producer.allow(2 * third)
                wait_for(lambda: (applied(a) or 0) >= 2 * third, PROGRESS_TIMEOUT_S,
                         "A to apply the second third with 2.0.0", [a])  # fmt: skip
                a.stop()
                before_restart = {
                    (r.partition, r.offset) for r in read_to_end(kafka_bootstrap, predictions_topic)
                }
                restarted = time.monotonic()
                lives = [a.spawn(PROFITSTREAM_MODEL=V2), b.spawn(PROFITSTREAM_MODEL=V1)]
                ready_s = [w.wait_ready(life) for w, life in zip((a, b), lives, strict=True)]
                producer.allow_all()
                producer.wait_sent()
                result = final_checks(
                    bootstrap=kafka_bootstrap, redis_url=redis_url, env=env, expected=expected,
                    workers=[a, b], sampler=sampler, input_times=producer.times,
                    # A client whose last event came before the deploy keeps its 1.0.0
                    # prediction (same trees, same margin): the version is checked below, on
                    # the predictions emitted after the restart.
                    reference=reference, version=None,
                )  # fmt: skip
                findings += result.findings
                for worker in (a, b):
                    status, body = http_get(worker.current.web_port, "/models")
                    answer = json.loads(body) if status == 200 else {}
                    deployed_now = (answer.get("deployed") or {}).get("version")
                    if deployed_now != "2.0.0" or answer.get("deployment_revision") != revision:
                        findings.append(f"{worker.name}: /models says {deployed_now} at revision "
                                        f"{answer.get('deployment_revision')}, the control log "
                                        f"2.0.0 at revision {revision}")  # fmt: skip
                    stalls = worker.log_text(since_life=len(worker.lives)).count(
                        "waiting for deployment revision"
                    )
                    if stalls:
                        findings.append(f"{worker.name}: logged 'waiting for deployment "
                                        f"revision' {stalls} times after the restart")  # fmt: skip
            finally:
                producer.halt()
        a.stop()
        b.stop()
    after = [r for r in read_to_end(kafka_bootstrap, predictions_topic)
             if (r.partition, r.offset) not in before_restart]  # fmt: skip
    versions: dict[str, int] = {}
    for prediction in predictions_of(after):
        version = prediction.model.version
        versions[version] = versions.get(version, 0) + 1
    if set(versions) != {"2.0.0"}:
        findings.append(f"predictions after the restart by {versions}, not only 2.0.0")
    with capsys.disabled():
        print(f"\n[field] model restart: A (2.0.0) ready in {ready_s[0]:.1f}s, B (1.0.0) in "
              f"{ready_s[1]:.1f}s; last event applied {result.settled_s:.0f}s after it was "
              f"produced, {time.monotonic() - restarted:.0f}s after the restart; predictions "
              f"after the restart {versions}; /ready samples {sampler.summary()}")  # fmt: skip
    assert not findings, findings_report("restart with another PROFITSTREAM_MODEL", findings)
