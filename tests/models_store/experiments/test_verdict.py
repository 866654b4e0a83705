"""The experiment verdict: tallying monitoring records, guardrails, promotion, ramp, stop."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from models_store.experiments.arm_health import ArmHealth, observe_call
from models_store.experiments.design import Experiment
from models_store.experiments.verdict import (
    MIN_ATTEMPTS,
    ExperimentTally,
    design_of,
    judge,
    result_record,
)

STARTED = 1_790_000_000.0
REVISION = 7
EXPERIMENT = Experiment(
    experiment_id="exp-1", challenger="profitability@2.0.0", mode="ab", share=0.05,
    schedule=(0.05, 0.25, 1.0), salt="s", metric="mae", min_samples=100, alpha=0.05,
    max_duration_days=30, auto_promote=True,
    guardrails={"max_error_rate": 0.01, "max_latency_ms": 500.0, "max_drift_ratio": 2.0},
    started_at=STARTED, started_revision=REVISION,
)  # fmt: skip
NOW = STARTED + 86_400


def outcome(arm: str, prediction_id: str, error: float, **extra: Any) -> dict[str, Any]:
    return {"kind": "outcome", "experiment_id": "exp-1", "arm": arm,
            "prediction_id": prediction_id, "predicted": 0.3 + error, "realised": 0.3,
            "lower": 0.1, "upper": 0.5, **extra}  # fmt: skip


def health(
    arm: str, counts: ArmHealth, worker: str = "w1", revision: int = REVISION
) -> dict[str, Any]:
    return {"kind": "arm_health", "experiment_id": "exp-1", "worker": worker,
            "deployment_revision": revision, "arm": arm, **counts.to_dict()}  # fmt: skip


def counts(
    clients: int, failures: int = 0, latency_ms: float = 5.0, drift: float = 0.1
) -> ArmHealth:
    health = ArmHealth()
    for _ in range(clients // 10):
        health = observe_call(health, latency_ms=latency_ms, predicted=[0.3 + drift] * 10,
                              persistence=[0.3] * 10, failures=0)  # fmt: skip
    return replace(health, failures=failures)


def tally(experiment: Experiment = EXPERIMENT) -> ExperimentTally:
    return ExperimentTally(experiment.experiment_id, design_of(experiment))


def healthy(t: ExperimentTally, clients: int = 200, revision: int = REVISION) -> None:
    t.add(health("champion", counts(clients), revision=revision))
    t.add(health("challenger", counts(clients), revision=revision))


def feed_outcomes(t: ExperimentTally, champion_mae: float, challenger_mae: float, n: int) -> None:
    rng = np.random.default_rng(5)
    for i in range(n):
        t.add(outcome("champion", f"a{i}", float(rng.normal(0, champion_mae * 1.25))))
        t.add(outcome("challenger", f"b{i}", float(rng.normal(0, challenger_mae * 1.25))))


def test_a_clearly_better_challenger_is_promoted() -> None:
    t = tally()
    healthy(t)
    feed_outcomes(t, 0.12, 0.06, 400)
    assert t.result is not None
    assert t.result.decision == "challenger_better"
    verdict = judge(EXPERIMENT, REVISION, t, NOW)
    assert verdict.action == "promote", verdict
    assert "challenger is better" in verdict.reason
    result = result_record(EXPERIMENT, "profitability@1.0.0", REVISION, t, verdict, NOW, "on", "w1")
    record = json.loads(result.to_json())
    json.dumps(record, allow_nan=False)
    assert record["outcomes"]["challenger"]["n"] == 400
    assert record["verdict"]["action"] == "promote"


def test_without_auto_promotion_a_winner_is_only_reported() -> None:
    experiment = replace(EXPERIMENT, auto_promote=False)
    t = tally(experiment)
    feed_outcomes(t, 0.12, 0.06, 400)
    verdict = judge(experiment, REVISION, t, NOW)
    assert verdict.action == "continue"
    assert "by hand" in verdict.reason


def test_a_shadow_challengers_outcomes_count_as_the_challengers() -> None:
    shadow = replace(EXPERIMENT, mode="shadow", share=0.0)
    t = tally(shadow)
    rng = np.random.default_rng(6)
    for i in range(400):
        t.add(outcome("champion", f"a{i}", float(rng.normal(0, 0.15))))
        t.add(outcome("shadow", f"s{i}", float(rng.normal(0, 0.075))))
    assert t.outcomes["challenger"].n == 400
    assert judge(shadow, REVISION, t, NOW).action == "promote"


def test_a_worse_challenger_is_stopped() -> None:
    t = tally()
    feed_outcomes(t, 0.06, 0.12, 400)
    verdict = judge(EXPERIMENT, REVISION, t, NOW)
    assert (verdict.action, verdict.reason.split(" (")[0]) == ("stop", "the champion is better")


def test_nothing_is_decided_below_min_samples_and_each_prediction_counts_once() -> None:
    t = tally()
    for _ in range(3):  # delivered three times
        feed_outcomes(t, 0.12, 0.01, 99)
    t.add(outcome("challenger", "x", 0.0, experiment_id="other"))
    t.add(outcome("challenger", "y", 0.0, realised=None))
    t.add({"kind": "outcome", "experiment_id": "exp-1", "arm": "champion"})
    assert t.outcomes["challenger"].n == 99
    assert t.ignored == {"repeated": 2 * 2 * 99, "undefined_margin": 1, "malformed": 1}
    assert judge(EXPERIMENT, REVISION, t, NOW).action == "continue"


def test_a_money_models_outcomes_are_judged_in_money() -> None:
    t = tally()
    # The ratio of 100 revenue and 60 cost is 0.4; the money is 40, which was predicted.
    t.add(outcome("champion", "m", 0.0, target="margin_abs", predicted=40.0, realised=0.4,
                  revenue=100.0, cost=60.0))  # fmt: skip
    assert t.outcomes["champion"].n == 1
    assert t.outcomes["champion"].mae == 0.0


@pytest.mark.parametrize(
    ("challenger", "broken"),
    [
        (counts(200, failures=10), "error_rate"),
        (counts(200, latency_ms=900), "latency_p95_ms"),
        (counts(200, drift=0.5), "drift_ratio"),
    ],
)
def test_a_broken_guardrail_stops_even_a_winning_challenger(
    challenger: ArmHealth, broken: str
) -> None:
    t = tally()
    t.add(health("champion", counts(200)))
    t.add(health("challenger", challenger))
    feed_outcomes(t, 0.12, 0.06, 400)
    verdict = judge(EXPERIMENT, REVISION, t, NOW)
    assert verdict.action == "stop"
    assert verdict.reason.startswith(f"guardrail broken: {broken} ")
    assert [c.name for c in verdict.guardrails if c.breached] == [broken]


def test_guardrails_wait_for_enough_evidence() -> None:
    t = tally()
    t.add(health("challenger", counts(10, failures=9, latency_ms=10_000, drift=5)))
    verdict = judge(EXPERIMENT, REVISION, t, NOW)
    assert verdict.action == "continue"
    assert all(check.breached is None for check in verdict.guardrails)
    assert MIN_ATTEMPTS > 19


def test_counts_are_summed_over_workers_and_the_latest_of_each_incarnation_wins() -> None:
    t = tally()
    t.add(health("challenger", counts(100), worker="w1"))
    t.add(health("challenger", counts(40), worker="w1"))  # an older record, delivered late
    t.add(health("challenger", counts(60), worker="w2"))
    assert t.arm_health("challenger").scored == 160


def test_the_schedule_advances_only_while_guardrails_hold_at_the_current_share() -> None:
    t = tally()
    healthy(t, clients=500, revision=REVISION - 1)  # an earlier share: not this step
    t.add(health("challenger", counts(60)))
    assert judge(EXPERIMENT, REVISION, t, NOW).action == "continue"
    t.add(health("challenger", counts(120)))
    verdict = judge(EXPERIMENT, REVISION, t, NOW)
    assert (verdict.action, verdict.share) == ("ramp", 0.25)
    # Guardrails count the whole experiment: 10 failures in 500 + 210 attempts > 1%.
    t.add(health("challenger", counts(200, failures=10)))
    assert judge(EXPERIMENT, REVISION, t, NOW).action == "stop"
    last_step = replace(EXPERIMENT, share=1.0)
    assert judge(last_step, REVISION, tally(), NOW).action == "continue"


def test_an_experiment_without_a_winner_stops_at_its_max_duration() -> None:
    t = tally()
    healthy(t)
    late = STARTED + 30 * 86_400
    verdict = judge(replace(EXPERIMENT, schedule=()), REVISION, t, late)
    assert verdict.action == "stop"
    assert "without a significant difference" in verdict.reason
