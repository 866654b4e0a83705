"""The operations gauges (pure): deployment info labels, the experiment share, the monitor's
verdict as 0/1 per guardrail and action, all from fixed label sets."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from models_store.control.state import Deployment
from models_store.experiments.design import Experiment
from models_store.experiments.verdict import GUARDRAILS, GuardrailCheck, Verdict
from streams.metrics import (
    deployment_labels,
    experiment_share,
    publish_health,
    publish_verdict,
    verdict_values,
)
from streams.worker_health import HELD_REASONS, WorkerHealth

EXPERIMENT = Experiment(
    experiment_id="exp-1", challenger="profitability@2.0.0", mode="ab", share=0.25,
    schedule=(0.05, 0.25, 1.0), salt="s", metric="mae", min_samples=100, alpha=0.05,
    max_duration_days=30, auto_promote=True,
    guardrails={"max_error_rate": 0.01, "max_latency_ms": 500.0, "max_drift_ratio": 2.0},
    started_at=0.0, started_revision=3,
)  # fmt: skip
V1, V2 = "profitability@1.0.0", "profitability@2.0.0"


def test_deployment_labels_name_revision_models_and_experiment() -> None:
    assert deployment_labels(None, {}) == {"revision": "none", "champion": "", "challenger": "",
                                           "experiment": "", "mode": ""}  # fmt: skip
    plain = Deployment(revision=2, champion=V1, experiment=None)
    assert deployment_labels(plain, {"champion": V1}) == {
        "revision": "2",
        "champion": V1,
        "challenger": "",
        "experiment": "",
        "mode": "",
    }
    ab = Deployment(revision=4, champion=V1, experiment=EXPERIMENT)
    labels = deployment_labels(ab, {"champion": V1, "challenger": V2})
    assert labels == {"revision": "4", "champion": V1, "challenger": V2, "experiment": "exp-1",
                      "mode": "ab"}  # fmt: skip


def test_the_share_is_the_challengers_in_ab_only() -> None:
    assert experiment_share(None) == 0.0
    assert experiment_share(Deployment(1, V1, None)) == 0.0
    assert experiment_share(Deployment(4, V1, EXPERIMENT)) == 0.25
    assert experiment_share(Deployment(4, V1, replace(EXPERIMENT, mode="shadow"))) == 0.0


@given(
    values=st.lists(st.one_of(st.none(), st.floats(0, 10)), min_size=3, max_size=3),
    action=st.sampled_from(["continue", "ramp", "promote", "stop"]),
)
def test_a_verdict_is_one_action_and_a_0_or_1_per_guardrail(
    values: list[float | None], action: str
) -> None:
    pairs = zip(GUARDRAILS, values, strict=True)
    checks = tuple(GuardrailCheck(name, value, 1.0) for name, value in pairs)
    guardrails, actions = verdict_values(Verdict(action, "why", checks))  # type: ignore[arg-type]
    assert guardrails == {name: int(v is not None and v > 1.0)
                          for name, v in zip(GUARDRAILS, values, strict=True)}  # fmt: skip
    assert actions == {a: int(a == action) for a in ("continue", "ramp", "promote", "stop")}


def test_no_verdict_is_all_zeros_not_missing() -> None:
    guardrails, actions = verdict_values(None)
    assert set(guardrails) == set(GUARDRAILS)
    assert not any(guardrails.values())
    assert set(actions) == {"continue", "ramp", "promote", "stop"}
    assert not any(actions.values())


def test_published_gauges_keep_bounded_label_sets() -> None:
    health = WorkerHealth(mirror="ok")
    health.assign({("t-activity", 0): 5})
    health.hold("deployment", "the models of deployment revision 9: sha256 mismatch in x")
    publish_health(health, False, Deployment(9, V1, None), {"champion": V1})
    publish_health(health, False, Deployment(10, V2, EXPERIMENT), {"champion": V2})
    publish_verdict(Verdict("stop", "guardrail broken", (GuardrailCheck("error_rate", 0.5, 0.01),)))
    text = generate_latest().decode()
    # The free-text reason stays out of the labels; one deployment series at a time.
    assert "sha256" not in text
    info = [line for line in text.splitlines() if line.startswith("profitstream_deployment_info{")]
    assert info == [f'profitstream_deployment_info{{challenger="",champion="{V2}",'
                    f'experiment="exp-1",mode="ab",revision="10"}} 1.0']  # fmt: skip
    for reason in HELD_REASONS:
        expected = "1.0" if reason == "deployment" else "0.0"
        assert f'profitstream_input_held_reason{{reason="{reason}"}} {expected}' in text
    assert 'profitstream_experiment_guardrail_broken{guardrail="error_rate"} 1.0' in text
    assert 'profitstream_experiment_guardrail_broken{guardrail="drift_ratio"} 0.0' in text
    assert 'profitstream_experiment_verdict{action="stop"} 1.0' in text
    assert "profitstream_experiment_share 0.25" in text
    publish_verdict(None)
