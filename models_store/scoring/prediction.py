"""The prediction payload: what `profitability-predictions` carries (schema version 1).

The stream emits it as JSON (key = client_id); `profitstream score` writes the same fields
as columns (``flat``). ``docs/schemas/profitability-predictions.schema.json`` is generated
from ``Prediction``.

``prediction_id`` is a digest of the payload itself (``content_id``), not of what
triggered it: the stream scores a client's state after a whole batch, and a batch cuts the
two input topics at offsets that depend on the worker and its fetches, so the same
(client, triggering event, model) can come with different features after a takeover.
Two records with the same id therefore carry the same prediction; only the fields that
say when a copy was made (``EMISSION_FIELDS``) may differ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from models_store.registry.card import ModelCard
from models_store.scoring.emission import Reason
from models_store.scoring.scorer import Score

# ``Prediction.flat`` keys, in order: the columns of `profitstream score`.
FLAT_COLUMNS = (
    "prediction_id", "client_id", "predicted_margin", "interval_lower", "interval_upper",
    "interval_level", "risk_tier", "drivers", "model_name", "model_version", "experiment_id",
    "experiment_arm", "event_id", "event_time", "features_as_of", "scored_at", "latency_ms",
)  # fmt: skip
# Fields that say when and how fast a copy was produced, not what it predicts: they differ
# between a prediction and its replay, so ``prediction_id`` leaves them out.
EMISSION_FIELDS = frozenset({"prediction_id", "scored_at", "latency_ms"})


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Interval(_Part):
    """The conformal prediction interval of the margin."""

    lower: float
    upper: float
    level: float


class Driver(_Part):
    """A feature's push: its value (null when undefined) and TreeSHAP contribution."""

    feature: str
    value: float | None
    contribution: float


class ModelId(_Part):
    """The model version that produced the prediction."""

    name: str
    version: str


class ExperimentTag(_Part):
    """The experiment and arm a client was scored in, when one runs."""

    id: str
    arm: str


class Prediction(_Part):
    """One client's predicted margin ratio over the horizon, and where it comes from."""

    schema_version: Literal[1] = 1
    prediction_id: str
    client_id: str
    predicted_margin: float
    horizon_days: int
    interval: Interval
    risk_tier: Literal["loss", "at_risk", "healthy", "strong"]
    drivers: list[Driver]
    model: ModelId
    experiment: ExperimentTag | None = None
    event_id: str | None  # the event that triggered it
    event_time: datetime | None
    features_as_of: datetime
    scored_at: datetime
    latency_ms: float | None = None  # event produced -> prediction produced
    # Why the stream emitted it; null from `profitstream score` and POST /predict.
    reason: Reason | None = None

    def to_json(self) -> bytes:
        """Compact JSON bytes for the topic."""
        return self.model_dump_json().encode()

    def flat(self) -> dict[str, Any]:
        """The fields as one row of columns (drivers as a JSON list)."""
        return {
            "prediction_id": self.prediction_id,
            "client_id": self.client_id,
            "predicted_margin": self.predicted_margin,
            "interval_lower": self.interval.lower,
            "interval_upper": self.interval.upper,
            "interval_level": self.interval.level,
            "risk_tier": self.risk_tier,
            "drivers": json.dumps([driver.model_dump() for driver in self.drivers]),
            "model_name": self.model.name,
            "model_version": self.model.version,
            "experiment_id": None if self.experiment is None else self.experiment.id,
            "experiment_arm": None if self.experiment is None else self.experiment.arm,
            "event_id": self.event_id,
            "event_time": None if self.event_time is None else self.event_time.isoformat(),
            "features_as_of": self.features_as_of.isoformat(),
            "scored_at": self.scored_at.isoformat(),
            "latency_ms": self.latency_ms,
        }


def content_id(prediction: Prediction) -> str:
    """The id of a payload: the first 32 hex digits of sha256 of its JSON without
    ``EMISSION_FIELDS``. Equal ids mean equal payloads (apart from those fields), whatever
    worker or batch produced them; a replay that scores the same input re-emits the id."""
    content = prediction.model_dump_json(exclude=set(EMISSION_FIELDS))
    return hashlib.sha256(content.encode()).hexdigest()[:32]


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def build_prediction(
    card: ModelCard,
    client_id: str,
    score: Score,
    *,
    event_id: str | None,
    event_time: float | None,
    features_as_of: float,
    scored_at: datetime,
    latency_ms: float | None = None,
    reason: Reason | None = None,
    experiment: tuple[str, str] | None = None,
) -> Prediction:
    """The payload of ``score`` for one client (``experiment``: its id and the client's arm),
    identified by ``content_id``."""
    tag = None if experiment is None else ExperimentTag(id=experiment[0], arm=experiment[1])
    prediction = Prediction(
        prediction_id="",
        client_id=client_id,
        predicted_margin=score.margin,
        horizon_days=card.horizon_days,
        interval=Interval(lower=score.lower, upper=score.upper, level=score.level),
        risk_tier=score.tier,
        drivers=[Driver(**asdict(driver)) for driver in score.drivers],
        model=ModelId(name=card.name, version=card.version),
        experiment=tag,
        event_id=event_id,
        event_time=_time(event_time),
        features_as_of=datetime.fromtimestamp(features_as_of, UTC),
        scored_at=scored_at,
        latency_ms=latency_ms,
        reason=reason,
    )
    return prediction.model_copy(update={"prediction_id": content_id(prediction)})


def prediction_schema_file() -> tuple[str, str]:
    """(file name, JSON Schema text) of the predictions topic's payload."""
    schema = Prediction.model_json_schema()
    return "profitability-predictions.schema.json", json.dumps(
        schema, indent=2, sort_keys=True
    ) + "\n"
