"""Joining a prediction to what happened: its realised margin once its horizon closes (pure).

When the stream emits a prediction for a client that has none tracked, it starts tracking
it: from then on, every event of the client applied with an event time in
(features_as_of, features_as_of + horizon] adds its money (``labels.margin_parts``, the
same rule as the training labels). The horizon closes when, on each stream the client
has events on, its latest event time passes the horizon's end by more than the allowed
lateness: lateness is judged per stream, so any later event of the horizon would be
refused as late. (A stream the client has had no event on yet does not hold it open.)
The outcome is then the realised margin ratio of the horizon
(NaN without revenue, as for the labels), next to what was predicted.

One prediction per client is tracked at a time, so a client's outcomes cover disjoint
horizons: the sequential test treats them as independent. During a shadow experiment the
shadow challenger's prediction is tracked beside the champion's, in the same way.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, replace

from features.definitions import FEATURE_NAMES
from features.state import ClientState, TrackedMemo
from models_store.experiments.records import OutcomeRecord
from models_store.labels import margin_ratio
from models_store.scoring.prediction import Prediction

# The naive forecast predictions are compared with: the client's realised margin of the
# 90 days before (an outcome's baseline, and the drift guardrail's reference).
PERSISTENCE_INDEX = FEATURE_NAMES.index("realised_margin_90d")


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

    @classmethod
    def of(cls, memo: TrackedMemo) -> Tracked:
        """The tracked prediction a client state's memo holds."""
        return cls(*memo)

    def memo(self) -> TrackedMemo:
        """The plain tuple the client state keeps."""
        return astuple(self)


def track(
    prediction: Prediction, persistence: float, arm_of: tuple[str, str] | None = None
) -> Tracked:
    """Start tracking an emitted prediction (``persistence``: the client's realised margin
    of the 90 days before, the naive forecast it is compared with). ``arm_of`` names the
    experiment arm of a prediction that carries none: the champion's, beside a shadow."""
    as_of = prediction.features_as_of.timestamp()
    experiment = prediction.experiment
    tag = (experiment.id, experiment.arm) if experiment is not None else arm_of
    return Tracked(
        as_of=as_of,
        until=as_of + prediction.horizon_days * 86_400.0,
        prediction_id=prediction.prediction_id,
        model=f"{prediction.model.name}@{prediction.model.version}",
        experiment_id=None if tag is None else tag[0],
        arm=None if tag is None else tag[1],
        predicted=prediction.predicted_margin,
        lower=prediction.interval.lower,
        upper=prediction.interval.upper,
        persistence=persistence,
    )


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
    )


# The client state's memos of tracked predictions: the emitted one, and a shadow's.
_MEMOS = ("tracked", "shadow_tracked")


def add_money_to_state(state: ClientState, event_time: float, revenue: float, cost: float) -> None:
    """Add an applied event's money to the client's tracked predictions (in place)."""
    if not (revenue or cost):
        return
    for name in _MEMOS:
        memo = getattr(state, name)
        if memo is not None:
            setattr(state, name, add_money(Tracked.of(memo), event_time, revenue, cost).memo())


def close_horizons(state: ClientState, allowed_lateness_s: float) -> list[OutcomeRecord]:
    """The outcome records of the client's tracked predictions whose horizon closed; they
    stop being tracked (in place)."""
    if not state.watermarks:
        return []
    # Lateness is judged per stream: an event of the horizon may still come on the stream
    # that is furthest behind, so that one decides.
    watermark = min(state.watermarks.values())
    closed = []
    for name in _MEMOS:
        memo = getattr(state, name)
        tracked = None if memo is None else Tracked.of(memo)
        if tracked is not None and is_closed(tracked, watermark, allowed_lateness_s):
            closed.append(outcome_record(tracked))
            setattr(state, name, None)
    return closed
