"""Joining a prediction to what happened: its realised margin once its horizon closes (pure).

A tracked prediction (``Tracked``) collects the money of every event of its client applied
with an event time in (features_as_of, features_as_of + horizon] (``labels.margin_parts``,
the same rule as the training labels). It is closed when no event of the horizon can
still be applied; the outcome is then the realised margin ratio of the horizon (NaN
without revenue, as for the labels) and its money, next to what was predicted (in the
model's ``target``: the ratio or money, ``models_store.monitoring.accuracy``). Which
predictions of a client are tracked, and when, is ``models_store.experiments.tracking``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from features.definitions import FEATURE_NAMES
from models_store.experiments.records import OutcomeRecord
from models_store.labels import margin_ratio, persistence_feature


def persistence_index(target: str) -> int:
    """Where the naive forecast of ``target`` sits in the feature vector: the client's
    realised margin (ratio or money) of the 90 days before (``labels.persistence_feature``)."""
    return FEATURE_NAMES.index(persistence_feature(target))


@dataclass(frozen=True)
class Tracked:
    """A prediction waiting for its horizon to close, and the money seen so far."""

    as_of: float
    until: float
    prediction_id: str
    model: str
    experiment_id: str | None
    arm: str | None
    predicted: float
    lower: float
    upper: float
    persistence: float  # the realised margin of the 90 days before (NaN: undefined)
    revenue: float = 0.0
    cost: float = 0.0
    # Tracked since accuracy monitoring (None in older rows): the model's target, its
    # interval level, and the label-free estimate of |error| made with the prediction.
    target: str | None = None
    level: float | None = None
    estimated_error: float | None = None


def add_money(tracked: Tracked, event_time: float, revenue: float, cost: float) -> Tracked:
    """``tracked`` with an applied event's money, if the event falls in its horizon."""
    if not tracked.as_of < event_time <= tracked.until or not (revenue or cost):
        return tracked
    return replace(tracked, revenue=tracked.revenue + revenue, cost=tracked.cost + cost)


def is_closed(tracked: Tracked, watermark: float, allowed_lateness_s: float) -> bool:
    """Whether no event of the horizon can still be applied."""
    return watermark > tracked.until + allowed_lateness_s


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def outcome_record(tracked: Tracked) -> OutcomeRecord:
    """The monitoring topic's ``outcome`` record (no client id: the prediction id links it)."""
    return OutcomeRecord(
        prediction_id=tracked.prediction_id,
        model=tracked.model,
        experiment_id=tracked.experiment_id,
        arm=tracked.arm,  # type: ignore[arg-type]  # one of the arms: set by ``track``
        features_as_of=tracked.as_of,
        horizon_end=tracked.until,
        predicted=tracked.predicted,
        lower=tracked.lower,
        upper=tracked.upper,
        persistence=_number(tracked.persistence),
        revenue=tracked.revenue,
        cost=tracked.cost,
        realised=_number(margin_ratio(tracked.revenue, tracked.cost)),
        target=tracked.target,  # type: ignore[arg-type]  # a card's target, set by ``track``
        interval_level=tracked.level,
        estimated_error=tracked.estimated_error,
    )
