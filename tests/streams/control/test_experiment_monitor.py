"""The experiment monitor on a live broker (Tansu, and Apache Kafka in CI) with a real worker.

- A challenger that is truly better (its closed outcomes have half the champion's error)
  reaches significance and the monitor promotes it with a signed command, while the
  worker's real scoring reports both arms' health.
- A ramp schedule advances while the guardrails hold, and a broken guardrail stops the
  experiment; `profitstream experiment status` prints what the monitor published.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models_store.experiments.arm_health import ArmHealth, HealthKey, observe_call
from models_store.experiments.outcomes import Tracked, outcome_record
from streams.cli.control_client import experiment_results, read_key_partition
from streams.control.health_reports import health_record
from streams.stack.processes import free_port, wait_until
from tests.services.cli import assert_one_line_error, run_cli
from tests.services.control_plane import (
    V1,
    V2,
    audit,
    command,
    control_env,
)
from tests.services.event_log import metric, produce_log, simulated_log
from tests.services.kafka_clients import produce
from tests.services.record_schemas import checked
from tests.services.worker_process import running_worker


def _env(worker_env: dict[str, str], registry: Path, keys: Path) -> dict[str, str]:
    return control_env(worker_env, registry, keys, PROFITSTREAM_PREDICTION_DELTA="0",
                       PROFITSTREAM_CONTROL_MONITOR_PRINCIPAL="monitor",
                       PROFITSTREAM_MONITOR_INTERVAL_S="0.5")  # fmt: skip


def _monitoring(env: dict[str, str], bootstrap: str, experiment_id: str) -> list[dict[str, Any]]:
    raw = asyncio.run(read_key_partition(
        [bootstrap], {}, env["PROFITSTREAM_TOPICS__MONITORING"], experiment_id, 0))  # fmt: skip
    return [checked("profitability-monitoring", json.loads(value)) for _, _, value in raw]


def _inject(env: dict[str, str], bootstrap: str, experiment_id: str, values: list[bytes]) -> None:
    """Records on the experiment's partition of the monitoring topic, as workers key them."""
    produce(bootstrap, env["PROFITSTREAM_TOPICS__MONITORING"],
            [(experiment_id.encode(), value) for value in values],
            partitioner="murmur2_random")  # fmt: skip


def _accepted(env: dict[str, str], bootstrap: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in audit(env, bootstrap) if r["kind"] == "command"
            and r["type"] == kind and r["outcome"] == "accepted"]  # fmt: skip


def _closed_outcomes(experiment_id: str, arm: str, model: str, mae: float, n: int) -> list[bytes]:
    """``n`` closed predictions of an arm whose absolute errors average ``mae``."""
    rng = np.random.default_rng(17 if arm == "champion" else 18)
    records = []
    for i, error in enumerate(rng.normal(0.0, mae * np.sqrt(np.pi / 2), n)):
        realised = 0.3
        tracked = Tracked(
            as_of=1.7e9, until=1.7e9 + 90 * 86_400, prediction_id=f"{arm}-{i}", model=model,
            experiment_id=experiment_id, arm=arm, predicted=realised + float(error),
            lower=realised - 0.2, upper=realised + 0.2, persistence=0.25,
            revenue=1_000.0, cost=1_000.0 * (1 - realised),
        )  # fmt: skip
        records.append(outcome_record(tracked).to_json())
    return records


def test_the_monitor_promotes_a_truly_better_challenger(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str,
    control_registry: Path, control_keys: Path,
) -> None:  # fmt: skip
    env = _env(worker_env, control_registry, control_keys)
    second = {**env, "PROFITSTREAM_DATA_DIR": env["PROFITSTREAM_DATA_DIR"] + "-b",
              "PROFITSTREAM_WEB_PORT": str(free_port())}  # fmt: skip
    experiment_id = f"{unique}-better"
    messages = simulated_log(40, 6, malformed=0, duplicate=0, late=0, seed=3)
    with running_worker(env), running_worker(second):
        assert command(env, kafka_bootstrap, "register", model=V2)["outcome"] == "accepted"
        started = command(env, kafka_bootstrap, "experiment_start", experiment_id=experiment_id,
                          challenger=V2, salt="s", share=0.5, min_samples=150)  # fmt: skip
        assert started["outcome"] == "accepted", started
        produce_log(kafka_bootstrap, unique, messages)

        def reported() -> set[tuple[str, str]]:
            records = _monitoring(env, kafka_bootstrap, experiment_id)
            return {(r["worker"].split("/")[0], r["arm"]) for r in records
                    if r["kind"] == "arm_health" and r["scored"] > 0}  # fmt: skip

        # Both workers' own scoring reports both arms while the experiment runs.
        wait_until(lambda: len(reported()) == 4, timeout_s=90,
                   what="arm health of both arms from both workers")  # fmt: skip
        _inject(env, kafka_bootstrap, experiment_id,
                _closed_outcomes(experiment_id, "champion", V1, 0.10, 400)
                + _closed_outcomes(experiment_id, "challenger", V2, 0.05, 400))  # fmt: skip
        wait_until(lambda: bool(_accepted(env, kafka_bootstrap, "experiment_promote")),
                   timeout_s=90, what="the monitor to promote the challenger")  # fmt: skip
        time.sleep(2)  # a few more looks: a second monitor would act by now
        promoted = _accepted(env, kafka_bootstrap, "experiment_promote")
        by_monitor = [r for r in audit(env, kafka_bootstrap)
                      if r["kind"] == "command" and r["issued_by"] == "monitor"]  # fmt: skip
        records = _monitoring(env, kafka_bootstrap, experiment_id)
    # Two workers, one monitor: one command, nothing refused as a replay.
    assert [r["outcome"] for r in by_monitor] == ["accepted"]
    assert len({r["monitor"] for r in records if r["kind"] == "experiment_result"}) == 1
    assert len(promoted) == 1
    assert promoted[0]["issued_by"] == "monitor"
    assert promoted[0]["args"]["reason"].startswith("monitor: the challenger is better")
    assert promoted[0]["after"]["champion"] == V2
    assert promoted[0]["after"]["experiment"] is None
    results = experiment_results([(0, 0, json.dumps(r).encode()) for r in records], experiment_id)
    deciding = [r for r in results if r["verdict"]["action"] == "promote"]
    assert deciding, results[-1]
    test = deciding[0]["test"]
    assert test["decision"] == "challenger_better"
    assert test["p_value"] <= 0.05
    assert test["effect"] - test["half_width"] > 0  # the confidence sequence excludes 0
    assert min(test["n_champion"], test["n_challenger"]) >= 150
    assert deciding[0]["actions"].startswith("experiment_promote sent at control offset")


def test_the_schedule_advances_while_guardrails_hold_and_a_broken_one_stops_it(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str,
    control_registry: Path, control_keys: Path,
) -> None:  # fmt: skip
    env = _env(worker_env, control_registry, control_keys)
    experiment_id = f"{unique}-ramp"
    now = datetime.now(UTC)

    def health(revision: int, arm: str, scored: int, failures: int = 0) -> bytes:
        counts = ArmHealth()
        for _ in range(scored // 5):  # calls of 5 clients: enough calls for the latency
            counts = observe_call(counts, latency_ms=4.0, predicted=[0.3] * 5,
                                  persistence=[0.25] * 5, failures=0)  # fmt: skip
        counts = ArmHealth(counts.scored, failures, counts.latency_counts, counts.drift_sum,
                           counts.drift_n)  # fmt: skip
        model = V2 if arm == "challenger" else V1
        return health_record("injected/1", HealthKey(experiment_id, revision, arm, model),
                             counts, now).to_json()  # fmt: skip

    with running_worker(env):
        assert command(env, kafka_bootstrap, "register", model=V2)["outcome"] == "accepted"
        started = command(env, kafka_bootstrap, "experiment_start", experiment_id=experiment_id,
                          challenger=V2, salt="s", schedule=[0.1, 0.5, 1.0], min_samples=60,
                          guardrails={"max_error_rate": 0.05})  # fmt: skip
        assert started["outcome"] == "accepted", started
        first = started["after"]["deployment_revision"]
        _inject(env, kafka_bootstrap, experiment_id,
                [health(first, "champion", 500), health(first, "challenger", 100)])  # fmt: skip
        wait_until(lambda: bool(_accepted(env, kafka_bootstrap, "experiment_ramp")), timeout_s=60,
                   what="the monitor to ramp")  # fmt: skip
        ramped = _accepted(env, kafka_bootstrap, "experiment_ramp")[0]
        assert ramped["issued_by"] == "monitor"
        assert ramped["after"]["experiment"]["share"] == 0.5
        second = ramped["after"]["deployment_revision"]
        # At 50%: 40 failures in 100 more attempts; 40 / 240 > 5% over the experiment.
        _inject(env, kafka_bootstrap, experiment_id, [health(second, "challenger", 100, 40)])
        wait_until(lambda: bool(_accepted(env, kafka_bootstrap, "experiment_stop")), timeout_s=60,
                   what="the monitor to stop the experiment")  # fmt: skip
        stopped = _accepted(env, kafka_bootstrap, "experiment_stop")[0]
        wait_until(lambda: any(r.get("verdict", {}).get("action") == "stop"
                               for r in _monitoring(env, kafka_bootstrap, experiment_id)),
                   timeout_s=30, what="the stopping result")  # fmt: skip
        status = run_cli("experiment", "status", experiment_id, env=env)
    assert stopped["issued_by"] == "monitor"
    assert "guardrail broken: error_rate" in stopped["args"]["reason"]
    assert stopped["after"]["experiment"] is None
    assert stopped["after"]["champion"] == V1  # the challenger is rolled back
    assert len(_accepted(env, kafka_bootstrap, "experiment_ramp")) == 1  # no ramp when broken
    assert status.returncode == 0, status.stderr
    assert "(ended)" in status.stdout
    assert "guardrail broken: error_rate" in status.stdout
    assert "broken" in status.stdout.split("guardrails (challenger)")[1]


def test_a_shadow_challengers_outcomes_are_joined_from_the_stream_beside_the_champions(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str,
    control_registry: Path, control_keys: Path,
) -> None:  # fmt: skip
    # Small batches: predictions at many points of the log, so early horizons close.
    env = {**_env(worker_env, control_registry, control_keys),
           "PROFITSTREAM_BATCH_MAX_EVENTS": "300"}  # fmt: skip
    experiment_id = f"{unique}-shadow"
    # Nine months: horizons of predictions made early close (90 days + 7 of lateness).
    messages = simulated_log(30, 9, malformed=0, duplicate=0, late=0, seed=5)
    with running_worker(env) as worker:
        assert command(env, kafka_bootstrap, "register", model=V2)["outcome"] == "accepted"
        started = command(env, kafka_bootstrap, "experiment_start", experiment_id=experiment_id,
                          challenger=V2, mode="shadow", salt="s", min_samples=10,
                          auto_promote=False)  # fmt: skip
        assert started["outcome"] == "accepted", started
        for start in range(0, len(messages), len(messages) // 12 + 1):  # streams interleaved
            produce_log(kafka_bootstrap, unique, messages[start : start + len(messages) // 12 + 1])

        def outcomes() -> list[dict[str, Any]]:
            return [r for r in _monitoring(env, kafka_bootstrap, experiment_id)
                    if r["kind"] == "outcome"]  # fmt: skip

        wait_until(lambda: len({r["arm"] for r in outcomes()}) == 2, timeout_s=120,
                   what="outcomes of both arms")  # fmt: skip

        def counted() -> dict[str, Any]:
            results = [r for r in _monitoring(env, kafka_bootstrap, experiment_id)
                       if r["kind"] == "experiment_result"]  # fmt: skip
            return results[-1]["outcomes"] if results else {}

        wait_until(lambda: min((arm["n"] for arm in counted().values()), default=0) >= 10,
                   timeout_s=60, what="the monitor to count them")  # fmt: skip
        # Read once the whole log is processed: no batch is half sent.
        wait_until(lambda: sum(metric(worker, "profitstream_batch_events_sum").values())
                   >= len(messages), timeout_s=60, what="the whole log")  # fmt: skip
        joined = outcomes()
    by_arm: dict[str, list[tuple[float, float, float]]] = {"champion": [], "shadow": []}
    for record in joined:
        assert record["experiment_id"] == experiment_id
        by_arm[record["arm"]].append((record["features_as_of"], record["revenue"], record["cost"]))
    # Each shadow prediction was tracked with the champion's it shadows: same horizon, same
    # money (both close with the same event, in the same batch).
    assert sorted(by_arm["shadow"]) == sorted(by_arm["champion"])
    assert any(r["realised"] is not None for r in joined)  # billing money reached them
    assert all(r["model"] == V2 for r in joined if r["arm"] == "shadow")
    assert all(r["model"] == V1 for r in joined if r["arm"] == "champion")


def test_without_a_monitor_principal_results_are_published_and_a_manual_ramp_waits_for_guardrails(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str,
    control_registry: Path, control_keys: Path,
) -> None:  # fmt: skip
    env = {k: v for k, v in _env(worker_env, control_registry, control_keys).items()
           if k != "PROFITSTREAM_CONTROL_MONITOR_PRINCIPAL"}  # fmt: skip
    experiment_id = f"{unique}-manual"
    broken = ArmHealth()
    for _ in range(30):  # 30 calls of 5 clients, 2 of each 5 failed
        broken = observe_call(broken, latency_ms=4.0, predicted=[0.3] * 3,
                              persistence=[0.25] * 3, failures=2)  # fmt: skip
    with running_worker(env):
        assert command(env, kafka_bootstrap, "register", model=V2)["outcome"] == "accepted"
        started = command(env, kafka_bootstrap, "experiment_start", experiment_id=experiment_id,
                          challenger=V2, salt="s", schedule=[0.1, 0.5])  # fmt: skip
        revision = started["after"]["deployment_revision"]
        key = HealthKey(experiment_id, revision, "challenger", V2)
        record = health_record("injected/1", key, broken, datetime.now(UTC))
        _inject(env, kafka_bootstrap, experiment_id, [record.to_json()])

        def verdicts() -> list[dict[str, Any]]:
            results = [r for r in _monitoring(env, kafka_bootstrap, experiment_id)
                       if r["kind"] == "experiment_result"]  # fmt: skip
            return [r for r in results if r["verdict"]["action"] == "stop"]

        wait_until(lambda: bool(verdicts()), timeout_s=60, what="a stop verdict")
        refused = run_cli("experiment", "ramp", experiment_id, env=env)
        forced = run_cli("experiment", "ramp", experiment_id, "--force", env=env)
        records = audit(env, kafka_bootstrap)
    assert verdicts()[-1]["actions"] == "off: PROFITSTREAM_CONTROL_MONITOR_PRINCIPAL is unset"
    assert_one_line_error(refused, "error_rate broken", "--force")
    assert forced.returncode == 0, forced.stderr
    commands = [r for r in records if r["kind"] == "command"]
    assert [r["type"] for r in commands] == [
        "seed",
        "register",
        "experiment_start",
        "experiment_ramp",
    ]
    assert commands[-1]["issued_by"] == "alice"
    assert commands[-1]["after"]["experiment"]["share"] == 0.5
