"""The records of `profitability-monitoring`: what experiments are judged on (schema version 1).

Three kinds share the topic, told apart by ``kind``:
- ``outcome``: a prediction whose horizon closed, next to the realised margin (written by
  the worker that owned the client; keyed by experiment id, else by model);
- ``arm_health``: one worker incarnation's cumulative counts of one arm's model calls
  (keyed by experiment id);
- ``experiment_result``: the monitor's look at an experiment: the test, the guardrails and
  the verdict (keyed by experiment id, written when it changes);
- ``accuracy``: one worker incarnation's realised and estimated accuracy of one model
  version and arm (keyed by model NAME@VERSION, written when it changes).
- ``drift``: how far one worker's recently scored rows of a model version and arm are from
  the model's training data (keyed by model; ``models_store.monitoring``).

Readers fold these records leniently (``experiment_verdict.ExperimentTally``): an unknown
kind or field is skipped, never fatal. ``docs/schemas/profitability-monitoring.schema.json``
is generated from the classes here.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from models_store.experiments.sequential_test import SequentialResult


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> bytes:
        """Compact JSON bytes for the topic (NaN and infinities are written as null)."""
        return self.model_dump_json().encode()


class OutcomeRecord(_Record):
    """A tracked prediction whose horizon closed: what was predicted and what happened.

    Carries no client id: ``prediction_id`` links it to the prediction."""

    schema_version: Literal[1] = 1
    kind: Literal["outcome"] = "outcome"
    prediction_id: str
    model: str = Field(description="NAME@VERSION of the model that predicted")
    experiment_id: str | None
    arm: Literal["champion", "challenger", "shadow"] | None
    features_as_of: float = Field(description="epoch seconds: the prediction's features_as_of")
    horizon_end: float = Field(description="epoch seconds: features_as_of + the horizon")
    predicted: float
    lower: float
    upper: float
    persistence: float | None = Field(
        description="the client's realised margin of the 90 days before (null: undefined)"
    )
    revenue: float = Field(description="money in of the horizon")
    cost: float = Field(description="money out of the horizon")
    realised: float | None = Field(description="realised margin ratio (null: no revenue)")
    target: Literal["margin_ratio", "margin_abs"] | None = Field(
        default=None,
        description="the model's target: what predicted, lower and upper are in (null: a "
        "prediction tracked before outcomes said; the model's card tells)",
    )
    interval_level: float | None = Field(default=None, description="the interval's level")
    estimated_error: float | None = Field(
        default=None,
        description="the label-free estimate of |predicted - realised| made with the "
        "prediction (null: the model has no error estimate)",
    )


class ArmHealthRecord(_Record):
    """One worker incarnation's cumulative counts of one arm's model since it started."""

    schema_version: Literal[1] = 1
    kind: Literal["arm_health"] = "arm_health"
    worker: str = Field(description="WORKER_ID/INCARNATION: a restart reports anew")
    at: str = Field(description="ISO-8601 time the counts were published")
    experiment_id: str
    deployment_revision: int
    arm: Literal["champion", "challenger", "shadow"]
    model: str
    latency_buckets_ms: list[float] = Field(description="upper bounds; one more bucket is open")
    scored: int
    failures: int
    latency_counts: list[int] = Field(description="model calls per latency bucket")
    drift_sum: float = Field(description="sum of |predicted - persistence|")
    drift_n: int


class ArmOutcomes(_Record):
    """An arm's closed outcomes so far."""

    n: int
    mae: float
    bias: float = Field(description="mean of predicted - realised")
    coverage: float = Field(description="share of realised margins inside the interval")


class ArmCalls(_Record):
    """An arm's model calls so far, over every worker."""

    scored: int
    failures: int
    error_rate: float
    latency_p95_ms: float | None
    drift: float | None


class GuardrailState(_Record):
    """One guardrail at this look (``value``/``breached`` null: not enough evidence)."""

    name: str
    value: float | None
    limit: float
    breached: bool | None


class VerdictPart(_Record):
    """The action the evidence calls for and why (``share``: the next share of a ramp)."""

    action: Literal["continue", "ramp", "promote", "stop"]
    reason: str
    share: float | None


class ExperimentResultRecord(_Record):
    """The monitor's look at a running experiment, published when it changes."""

    schema_version: Literal[1] = 1
    kind: Literal["experiment_result"] = "experiment_result"
    experiment_id: str
    at: str = Field(description="ISO-8601 time of the look")
    deployment_revision: int
    champion: str | None
    challenger: str
    mode: Literal["ab", "shadow"]
    share: float
    outcomes: dict[str, ArmOutcomes] = Field(description="by arm: champion, challenger")
    test: SequentialResult | None = Field(description="the always-valid test; null: no look yet")
    health: dict[str, ArmCalls] = Field(description="by arm: champion, challenger")
    guardrails: list[GuardrailState]
    verdict: VerdictPart
    actions: str = Field(description="what the monitor did about the verdict")
    ignored: dict[str, int] = Field(description="records skipped, by why")
    monitor: str = Field(description="the worker whose monitor looked")


class RealisedAccuracy(_Record):
    """Figures of a (model, arm)'s last closed outcomes, in the model's target."""

    n: int
    mae: float
    bias: float = Field(description="mean of predicted - realised")
    rmse: float
    coverage: float = Field(description="share of realised values inside [lower, upper]")
    estimated_mae: float | None = Field(
        description="mean label-free estimate made with the same predictions (null: none)"
    )
    estimated_n: int


class EstimatedAccuracy(_Record):
    """The label-free estimate of a (model, arm)'s MAE on current traffic."""

    clients: int = Field(description="clients scored within the span (each counted once)")
    mae: float | None = Field(description="their mean estimated |error| (null: none yet)")
    span_s: float = Field(description="the sliding window of event time, in seconds")


class AccuracyRecord(_Record):
    """One worker incarnation's accuracy of one (model, arm): realised over its last closed
    outcomes, estimated on its current traffic (``models_store.monitoring.accuracy``)."""

    schema_version: Literal[1] = 1
    kind: Literal["accuracy"] = "accuracy"
    worker: str = Field(description="WORKER_ID/INCARNATION: a restart reports anew")
    at: str = Field(description="ISO-8601 time the figures were published")
    model: str = Field(description="NAME@VERSION")
    arm: Literal["champion", "challenger", "shadow", "none"] = Field(
        description="none: predictions made outside any experiment"
    )
    target: Literal["margin_ratio", "margin_abs"] | None = Field(
        description="the unit of every figure (null: not known to this worker)"
    )
    interval_level: float | None
    reference_mae: float | None = Field(description="the card's test MAE of the model")
    window: int = Field(description="N: realised figures are over the last N outcomes")
    outcomes_seen: int = Field(description="outcomes folded by this incarnation")
    realised: RealisedAccuracy | None = Field(description="null: no outcome closed yet")
    coverage_broken: bool | None = Field(
        description="coverage over N outcomes outside the level ± 5 points (null: < N)"
    )
    estimated: EstimatedAccuracy | None = Field(
        description="null: the model has no error estimate (trained before it existed)"
    )


class DistanceFigures(_Record):
    """How far one feature (or the prediction) is from its training distribution."""

    name: str = Field(description="the feature, or `prediction`")
    psi: float = Field(description="population stability index over the bins and missing")
    ks: float | None = Field(description="largest gap of the binned CDFs (null: no finite value)")
    wasserstein: float | None = Field(
        description="mean gap of the binned CDFs: 1-Wasserstein in bins over their count, 0-1"
    )
    missing_share: float | None
    reference_missing_share: float | None


class DriverShareFigures(_Record):
    """How often a feature was among the top drivers, in the window and in training."""

    feature: str
    share: float
    reference: float


class DriftRecord(_Record):
    """One worker incarnation's drift of a model version and arm over its event-time window."""

    schema_version: Literal[1] = 1
    kind: Literal["drift"] = "drift"
    worker: str = Field(description="WORKER_ID/INCARNATION")
    at: str = Field(description="ISO-8601 time the figures were published")
    model: str = Field(description="NAME@VERSION")
    arm: Literal["champion", "challenger", "shadow"]
    experiment_id: str | None
    window_days: int
    window_start: float | None = Field(description="epoch s: the first day's start")
    window_end: float | None = Field(description="epoch s: the last day's end")
    rows: int = Field(description="scored rows in the window")
    late_rows: int = Field(description="rows older than the window, not counted")
    min_rows: int = Field(description="rows needed before figures are given")
    max_psi: float | None = Field(description="largest PSI of a feature (null: too few rows)")
    drifted: list[str] = Field(description="features whose PSI is above 0.25, largest first")
    features: list[DistanceFigures] = Field(description="the top features by PSI")
    prediction: DistanceFigures | None
    drivers_k: int
    explained: int = Field(description="emitted predictions whose drivers were counted")
    driver_shift: float | None = Field(
        description="half the summed |share change| of the top-k drivers over k: 0 same, 1 none"
    )
    drivers: list[DriverShareFigures] = Field(description="the top features by current share")


MonitoringRecord = Annotated[
    OutcomeRecord | ArmHealthRecord | ExperimentResultRecord | AccuracyRecord | DriftRecord,
    Field(discriminator="kind"),
]


def monitoring_schema_file() -> tuple[str, str]:
    """(file name, JSON Schema text) of the monitoring topic's records."""
    schema = TypeAdapter(MonitoringRecord).json_schema()
    schema["title"] = "profitability-monitoring record"
    schema["description"] = "One record of the monitoring topic; `kind` names its schema."
    return "profitability-monitoring.schema.json", json.dumps(schema, indent=2,
                                                             sort_keys=True) + "\n"  # fmt: skip
