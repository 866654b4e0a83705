"""A client's predictions awaiting their outcome, and when they start and stop (pure).

When the stream emits a prediction for a client that has none tracked, it starts tracking
it; during a shadow experiment the shadow challenger's prediction is tracked beside it, in
the same way. Every applied event of the client then adds its money to both. A horizon
closes when, on each stream the client has events on, its latest event time passes the
horizon's end by more than the allowed lateness: lateness is judged per stream, so any
later event of the horizon would be refused as late (a stream the client has had no event
on yet does not hold it open).

One prediction per client is tracked at a time, so a client's outcomes cover disjoint
horizons: the sequential test treats them as independent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from models_store.experiments.outcomes import Tracked, add_money, is_closed, outcome_record
from models_store.experiments.records import OutcomeRecord
from models_store.scoring.prediction import Prediction


@dataclass(frozen=True, slots=True)
class TrackedPredictions:
    """The emitted prediction awaiting its outcome, and the shadow challenger's beside it."""

    emitted: Tracked | None = None
    shadow: Tracked | None = None

    def __bool__(self) -> bool:
        return self.emitted is not None or self.shadow is not None


NOTHING_TRACKED = TrackedPredictions()


@dataclass(frozen=True, slots=True)
class PredictionNote:
    """What the scorer knew of a prediction that its payload does not carry: the model's
    target and the label-free estimate of its |error|."""

    target: str | None = None
    estimated_error: float | None = None


def track(
    prediction: Prediction,
    persistence: float,
    arm_of: tuple[str, str] | None = None,
    note: PredictionNote | None = None,
) -> Tracked:
    """Start tracking an emitted prediction (``persistence``: the client's realised margin
    of the 90 days before, the naive forecast it is compared with). ``arm_of`` names the
    experiment arm of a prediction that carries none: the champion's, beside a shadow."""
    note = note or PredictionNote()
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
        target=note.target,
        level=prediction.interval.level,
        estimated_error=note.estimated_error,
    )


def add_money_to_tracked(
    tracked: TrackedPredictions, event_time: float, revenue: float, cost: float
) -> TrackedPredictions:
    """``tracked`` with an applied event's money added to each prediction whose horizon
    holds the event."""
    if not (revenue or cost) or not tracked:
        return tracked
    return TrackedPredictions(
        None if tracked.emitted is None else add_money(tracked.emitted, event_time, revenue, cost),
        None if tracked.shadow is None else add_money(tracked.shadow, event_time, revenue, cost),
    )


def close_horizons(
    tracked: TrackedPredictions, watermarks: Mapping[str, float], allowed_lateness_s: float
) -> tuple[TrackedPredictions, list[OutcomeRecord]]:
    """The predictions still open and the outcome records of those whose horizon closed
    (``watermarks``: the client's latest event time per input stream)."""
    if not tracked or not watermarks:
        return tracked, []
    # The stream that is furthest behind may still bring an event of the horizon.
    watermark = min(watermarks.values())
    closed = []
    still_open: list[Tracked | None] = []
    for prediction in (tracked.emitted, tracked.shadow):
        if prediction is not None and is_closed(prediction, watermark, allowed_lateness_s):
            closed.append(outcome_record(prediction))
            prediction = None
        still_open.append(prediction)
    return TrackedPredictions(*still_open), closed


def start_tracking(
    tracked: TrackedPredictions,
    emitted: Prediction | None,
    shadow: Prediction | None,
    persistence: float,
    beside_shadow: tuple[str, str] | None = None,
    notes: Mapping[str, PredictionNote] | None = None,
) -> TrackedPredictions:
    """Track the client's new predictions where none is tracked yet (``beside_shadow``: the
    experiment and arm the champion's prediction counts for beside a shadow challenger;
    ``notes``: by prediction id)."""
    notes = notes or {}
    champion = tracked.emitted
    if champion is None and emitted is not None:
        champion = track(emitted, persistence, beside_shadow, notes.get(emitted.prediction_id))
    challenger = tracked.shadow
    if challenger is None and shadow is not None:
        challenger = track(shadow, persistence, None, notes.get(shadow.prediction_id))
    return TrackedPredictions(champion, challenger)
