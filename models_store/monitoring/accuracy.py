"""Realised accuracy and its label-free estimate, per model version and arm (pure).

Realised: each closed outcome (``models_store.experiments.outcomes``) is an error in the
model's own target: the margin ratio, or money for ``margin_abs`` (revenue − cost of the
horizon); an outcome without revenue has no ratio and is left out of a ratio model's
figures. Over the last N outcomes of a (model, arm) (``OutcomeWindow``): MAE, bias (mean
predicted − realised), RMSE, interval coverage (share of realised values inside [lower,
upper]) and the mean of the estimates made with those same predictions. Coverage is
``coverage_broken`` when the window holds N outcomes and lies more than ``tolerance``
(5 points) from the interval's level.

Estimated: each scored client's estimated |error| (``models_store.model.error_estimate``);
``EstimateWindow`` keeps each client's latest within a sliding span of event time, so the
estimated MAE weighs every client once, like the card's test MAE and the outcomes (a busy
client is scored far more often than a quiet one). A ratio model's estimate counts only
the clients with revenue in the last 90 days (``counts_in_estimate``): the others mostly
have none in the horizon either, so no ratio and no outcome, and the error model, fitted
on rows with a ratio, knows nothing of them (on the simulator they would triple it).

``AccuracyBook`` holds both per (model, arm) for one worker, for at most ``max_models``
models (the least recently fed is dropped: bounded label sets, bounded memory).
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from models_store.experiments.records import (
    AccuracyRecord,
    EstimatedAccuracy,
    OutcomeRecord,
    RealisedAccuracy,
)
from models_store.labels import MONEY_TARGETS, realised_in_target
from models_store.registry.card import ModelCard

NO_ARM = "none"  # the arm of a prediction made outside any experiment
COVERAGE_TOLERANCE = 0.05  # coverage may sit this far from the interval's level


def counts_in_estimate(target: str, persistence: float) -> bool:
    """Whether a scored client's estimate counts in the estimated MAE (``persistence``: its
    realised margin ratio of the last 90 days, NaN without revenue)."""
    return target in MONEY_TARGETS or not math.isnan(persistence)


@dataclass(frozen=True, slots=True)
class Closed:
    """One closed outcome in its model's target: error, whether the interval held it, and
    the estimate of |error| made with the prediction (None: none made)."""

    prediction_id: str
    error: float  # predicted - realised
    inside: bool
    estimated: float | None = None


def closed_outcome(record: OutcomeRecord, target: str) -> Closed | None:
    """The outcome's error in ``target`` (None: undefined, a ratio without revenue)."""
    realised = realised_in_target(target, record.revenue, record.cost)
    if realised is None:
        return None
    return Closed(
        prediction_id=record.prediction_id,
        error=record.predicted - realised,
        inside=record.lower <= realised <= record.upper,
        estimated=record.estimated_error,
    )


@dataclass(frozen=True)
class Realised:
    """Figures of a set of closed outcomes."""

    n: int
    mae: float
    bias: float
    rmse: float
    coverage: float
    estimated_mae: float | None  # mean estimate of the same predictions (None: none made)
    estimated_n: int


def summarise(closed: Sequence[Closed]) -> Realised | None:
    """MAE, bias, RMSE, coverage and the mean estimate of ``closed`` (None: empty)."""
    if not closed:
        return None
    n = len(closed)
    errors = [c.error for c in closed]
    estimates = [c.estimated for c in closed if c.estimated is not None]
    return Realised(
        n=n,
        mae=math.fsum(abs(e) for e in errors) / n,
        bias=math.fsum(errors) / n,
        rmse=math.sqrt(math.fsum(e * e for e in errors) / n),
        coverage=sum(c.inside for c in closed) / n,
        estimated_mae=math.fsum(estimates) / len(estimates) if estimates else None,
        estimated_n=len(estimates),
    )


def coverage_broken(
    coverage: float, n: int, level: float, window: int, tolerance: float = COVERAGE_TOLERANCE
) -> bool | None:
    """Whether coverage over a full window of ``window`` outcomes lies outside ``level`` ±
    ``tolerance`` (None: fewer outcomes than the window yet)."""
    if n < window:
        return None
    # The rounding of a share such as 425/500 must not decide: a hair inside the band holds.
    return abs(coverage - level) > tolerance + 1e-9


class OutcomeWindow:
    """The last ``size`` closed outcomes of one (model, arm), each prediction once."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"an outcome window of {size} outcomes holds nothing")
        self.size = size
        self._items: deque[Closed] = deque()
        self._ids: set[str] = set()
        self.seen = 0  # outcomes added, ever

    def add(self, closed: Closed) -> bool:
        """Add an outcome; False for a prediction already in the window (a redelivery)."""
        if closed.prediction_id in self._ids:
            return False
        self._items.append(closed)
        self._ids.add(closed.prediction_id)
        self.seen += 1
        if len(self._items) > self.size:
            self._ids.discard(self._items.popleft().prediction_id)
        return True

    def summary(self) -> Realised | None:
        """The window's figures."""
        return summarise(list(self._items))


class EstimateWindow:
    """Each client's latest estimated |error| over the last ``span_s`` of event time, for
    at most ``max_clients`` clients (the least recently scored leave first)."""

    def __init__(self, span_s: float, max_clients: int) -> None:
        self.span_s = span_s
        self.max_clients = max_clients
        self._latest: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._newest = -math.inf

    def add(self, client_id: str, as_of: float, estimate: float) -> None:
        """A client's new estimate, made with features as of ``as_of`` (event time)."""
        self._latest[client_id] = (as_of, estimate)
        self._latest.move_to_end(client_id)
        self._newest = max(self._newest, as_of)
        self._evict()

    def _evict(self) -> None:
        oldest = self._newest - self.span_s
        # In scoring order: the front is the client scored longest ago.
        while self._latest and (
            len(self._latest) > self.max_clients or next(iter(self._latest.values()))[0] < oldest
        ):
            self._latest.popitem(last=False)

    def mean(self) -> tuple[int, float | None]:
        """(clients, their mean estimate; None without any)."""
        if not self._latest:
            return 0, None
        values = [estimate for _, estimate in self._latest.values()]
        return len(values), math.fsum(values) / len(values)


@dataclass(frozen=True)
class ModelFacts:
    """What a model's card says that its accuracy is judged with."""

    target: str
    level: float
    reference_mae: float | None  # the card's test MAE of the blend
    has_estimate: bool

    @classmethod
    def of(cls, card: ModelCard) -> ModelFacts:
        """The facts of a card."""
        reference = card.metrics.get("blend", {}).get("mae")
        return cls(card.target, card.intervals.level, reference, card.error_estimate is not None)


@dataclass
class ArmAccuracy:
    """One (model, arm)'s outcome window and estimate window."""

    outcomes: OutcomeWindow
    estimates: EstimateWindow


@dataclass(frozen=True)
class AccuracyFigures:
    """A (model, arm)'s figures at one look."""

    model: str
    arm: str
    facts: ModelFacts | None
    window: int
    outcomes_seen: int
    realised: Realised | None
    coverage_broken: bool | None
    estimate_span_s: float
    estimated_clients: int
    estimated_mae: float | None


@dataclass
class AccuracyBook:
    """A worker's accuracy per (model, arm): outcomes it closed, estimates it made."""

    window: int
    estimate_span_s: float
    max_clients: int = 100_000
    max_models: int = 4
    facts: dict[str, ModelFacts] = field(default_factory=dict)
    arms: OrderedDict[tuple[str, str], ArmAccuracy] = field(default_factory=OrderedDict)
    ignored: Counter[str] = field(default_factory=Counter)
    # Bumped on every change: a reporter publishes only what changed.
    version: int = 0

    def know(self, card: ModelCard) -> None:
        """Remember a loaded model's facts (its target, level, test MAE)."""
        if card.ref not in self.facts:
            self.facts[card.ref] = ModelFacts.of(card)

    def _arm(self, model: str, arm: str) -> ArmAccuracy:
        key = (model, arm)
        found = self.arms.get(key)
        if found is None:
            found = ArmAccuracy(OutcomeWindow(self.window),
                                EstimateWindow(self.estimate_span_s, self.max_clients))  # fmt: skip
            self.arms[key] = found
        self.arms.move_to_end(key)
        models = list(dict.fromkeys(m for m, _ in reversed(self.arms)))
        for stale in models[self.max_models :]:
            for gone in [k for k in self.arms if k[0] == stale]:
                del self.arms[gone]
        self.version += 1
        return found

    def add_outcomes(self, records: Iterable[OutcomeRecord]) -> None:
        """Fold closed outcomes (a ratio without revenue, or of a model whose target is
        unknown, is counted in ``ignored`` and left out)."""
        for record in records:
            facts = self.facts.get(record.model)
            target = record.target or (facts.target if facts else None)
            if target is None:
                self.ignored["unknown_target"] += 1
                continue
            closed = closed_outcome(record, target)
            if closed is None:
                self.ignored["undefined_margin"] += 1
                continue
            if record.model not in self.facts and record.interval_level is not None:
                self.facts[record.model] = ModelFacts(target, record.interval_level, None, False)
            if not self._arm(record.model, record.arm or NO_ARM).outcomes.add(closed):
                self.ignored["repeated"] += 1

    def add_estimates(
        self, model: str, arm: str | None, estimates: Iterable[tuple[str, float, float]]
    ) -> None:
        """Fold scored clients' estimates: (client id, features as of, estimated |error|)."""
        window = None
        for client_id, as_of, estimate in estimates:
            window = window or self._arm(model, arm or NO_ARM).estimates
            window.add(client_id, as_of, estimate)

    def figures(self) -> list[AccuracyFigures]:
        """Every (model, arm)'s figures now."""
        result = []
        for (model, arm), held in self.arms.items():
            facts = self.facts.get(model)
            realised = held.outcomes.summary()
            broken = None
            if realised is not None and facts is not None:
                broken = coverage_broken(realised.coverage, realised.n, facts.level, self.window)
            clients, estimated = held.estimates.mean()
            result.append(AccuracyFigures(model, arm, facts, self.window, held.outcomes.seen,
                                          realised, broken, self.estimate_span_s, clients,
                                          estimated))  # fmt: skip
        return result


def accuracy_record(figures: AccuracyFigures, worker: str, at: str) -> AccuracyRecord:
    """The monitoring topic's ``accuracy`` record of one (model, arm)'s figures."""
    facts = figures.facts
    realised = figures.realised
    estimated = None
    if facts is None or facts.has_estimate or figures.estimated_clients:
        estimated = EstimatedAccuracy(clients=figures.estimated_clients,
                                      mae=figures.estimated_mae,
                                      span_s=figures.estimate_span_s)  # fmt: skip
    return AccuracyRecord(
        worker=worker,
        at=at,
        model=figures.model,
        arm=figures.arm,  # type: ignore[arg-type]  # an outcome's or a scoring group's arm
        target=None if facts is None else facts.target,  # type: ignore[arg-type]
        interval_level=None if facts is None else facts.level,
        reference_mae=None if facts is None else facts.reference_mae,
        window=figures.window,
        outcomes_seen=figures.outcomes_seen,
        realised=None if realised is None else RealisedAccuracy(**asdict(realised)),
        coverage_broken=figures.coverage_broken,
        estimated=estimated,
    )
