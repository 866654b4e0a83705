"""Drift of a model's scored rows over a sliding event-time window (pure, bounded memory).

Per (model, arm) the stream keeps a ``DriftWindow``: for each day of ``features_as_of`` in
the window, the count of scored rows per bin of each feature (the bins of the model's
training reference, ``DriftReference``), of its predictions, and how often each feature was
among the top drivers of an emitted prediction. Memory is days x features x bins integers,
whatever the traffic. The window ends at the latest day seen: a row of an older day than the
window's first is counted as late and dropped, and days that fall out are forgotten. Every
scored row counts, so a client rescored twice in a week weighs twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from models_store.monitoring.distances import MAJOR_PSI, binned_ks, binned_wasserstein, psi
from models_store.registry.drift_reference import BinnedDistribution, DriftReference

DAY_S = 86_400.0
_K = TypeVar("_K")


@dataclass(frozen=True)
class Binner:
    """Counts rows into the bins of some columns at once: slot ``bins[c]`` of a column's
    row of counts holds its missing values; slots past it stay 0 (columns differ in bins).
    A value's bin is the number of its column's edges it is not below, for every value in
    one comparison (cheaper than a ``searchsorted`` per column at stream batch sizes)."""

    edges: np.ndarray  # (columns, most edges), padded with +inf
    bins: np.ndarray  # (columns,) finite bins of each column
    slots: int

    @classmethod
    def of(cls, distributions: Sequence[BinnedDistribution]) -> Binner:
        """The binner of these reference distributions, in their order."""
        widest = max((len(d.edges) for d in distributions), default=0)
        edges = np.full((len(distributions), widest), np.inf)
        for index, distribution in enumerate(distributions):
            edges[index, : len(distribution.edges)] = distribution.edges
        bins = np.array([len(d.edges) + 1 for d in distributions], dtype=np.int64)
        return cls(edges, bins, widest + 2)

    def count(self, values: np.ndarray) -> np.ndarray:
        """(columns, slots) counts of ``values`` (rows x columns)."""
        columns = self.edges.shape[0]
        with np.errstate(invalid="ignore"):
            index = (values[:, :, np.newaxis] >= self.edges[np.newaxis]).sum(axis=2)
        index = np.where(np.isfinite(values), index, self.bins[np.newaxis, :])
        flat = index + np.arange(columns, dtype=np.int64)[np.newaxis, :] * self.slots
        counts: np.ndarray = np.bincount(flat.ravel(), minlength=columns * self.slots)
        return counts.reshape(columns, self.slots)

    def reference(self, distributions: Sequence[BinnedDistribution]) -> np.ndarray:
        """The reference counts in this binner's layout."""
        counts = np.zeros((len(distributions), self.slots), dtype=np.int64)
        for index, distribution in enumerate(distributions):
            counts[index, : len(distribution.counts)] = distribution.counts
            counts[index, len(distribution.counts)] = distribution.missing
        return counts


@dataclass(frozen=True)
class DriftLayout:
    """A model's reference, laid out for counting: which columns of the scored rows are
    monitored, their binners and reference counts."""

    names: tuple[str, ...]  # monitored features, in reference order
    columns: np.ndarray  # their index in the scored rows
    features: Binner
    feature_reference: np.ndarray
    prediction: Binner
    prediction_reference: np.ndarray
    drivers_k: int
    driver_reference: np.ndarray  # share per monitored feature

    @classmethod
    def of(cls, reference: DriftReference, row_names: Sequence[str]) -> DriftLayout:
        """The layout of ``reference`` for rows of ``row_names`` (the model's input order)."""
        position = {name: i for i, name in enumerate(row_names)}
        unknown = [name for name in reference.features if name not in position]
        if unknown:
            raise ValueError(f"the drift reference names features the rows lack: {unknown[:5]}")
        names = tuple(reference.features)
        distributions = [reference.features[name] for name in names]
        features = Binner.of(distributions)
        prediction = Binner.of([reference.prediction])
        return cls(
            names=names,
            columns=np.array([position[name] for name in names], dtype=np.int64),
            features=features,
            feature_reference=features.reference(distributions),
            prediction=prediction,
            prediction_reference=prediction.reference([reference.prediction]),
            drivers_k=reference.drivers_k,
            driver_reference=np.array([reference.driver_share.get(n, 0.0) for n in names]),
        )


@dataclass
class DayCounts:
    """One day's counts of a window."""

    features: np.ndarray
    prediction: np.ndarray
    drivers: np.ndarray  # times each feature was among an emitted prediction's top drivers
    rows: int = 0
    explained: int = 0  # emitted predictions whose drivers were counted

    @classmethod
    def empty(cls, layout: DriftLayout) -> DayCounts:
        """A day with nothing counted yet."""
        return cls(
            np.zeros_like(layout.feature_reference),
            np.zeros_like(layout.prediction_reference),
            np.zeros(len(layout.names), dtype=np.int64),
        )


@dataclass(frozen=True)
class Distance:
    """How far one monitored quantity is from its training reference."""

    name: str
    psi: float
    ks: float
    wasserstein: float
    missing_share: float
    reference_missing_share: float


@dataclass(frozen=True)
class DriverShare:
    """How often a feature was a top driver, now and in training."""

    feature: str
    share: float
    reference: float


@dataclass(frozen=True)
class DriftSummary:
    """A window's drift: every monitored feature (largest PSI first), the prediction, and
    the drivers (None: no emitted prediction explained in the window)."""

    rows: int
    first_day: int | None
    last_day: int | None
    late: int
    features: tuple[Distance, ...]
    prediction: Distance | None
    drivers_k: int
    explained: int
    driver_shift: float | None  # half the total |share change| over k: 0 same, 1 disjoint
    drivers: tuple[DriverShare, ...]  # largest current share first

    @property
    def max_psi(self) -> float:
        """The largest PSI of a feature (0.0 without any)."""
        return max((d.psi for d in self.features), default=0.0)

    def drifted(self, threshold: float = MAJOR_PSI) -> list[str]:
        """Features whose PSI is above ``threshold``, largest first."""
        return [d.name for d in self.features if d.psi > threshold]


def _distance(name: str, reference: np.ndarray, current: np.ndarray, bins: int) -> Distance:
    """Distance of one column's counts (its ``bins`` finite bins, then missing)."""
    used = slice(0, bins + 1)
    ref_rows, rows = int(reference[used].sum()), int(current[used].sum())
    return Distance(
        name=name,
        psi=psi(reference[used], current[used]),
        ks=binned_ks(reference[:bins], current[:bins]),
        wasserstein=binned_wasserstein(reference[:bins], current[:bins]),
        missing_share=current[bins] / rows if rows else math.nan,
        reference_missing_share=reference[bins] / ref_rows if ref_rows else math.nan,
    )


@dataclass
class DriftWindow:
    """The last ``days`` days of event time of one model's scored rows, in daily counts."""

    layout: DriftLayout
    days: int
    buckets: dict[int, DayCounts] = field(default_factory=dict)
    last_day: int | None = None
    late: int = 0
    changes: int = 0  # rows and drivers counted since the window was made

    def _bucket(self, day: int) -> DayCounts | None:
        """The bucket of ``day``, made if new; None when the day is before the window."""
        if self.last_day is None or day > self.last_day:
            self.last_day = day
            first = day - self.days + 1
            for old in [d for d in self.buckets if d < first]:
                del self.buckets[old]
        if day < self.last_day - self.days + 1:
            return None
        bucket = self.buckets.get(day)
        if bucket is None:
            bucket = self.buckets[day] = DayCounts.empty(self.layout)
        return bucket

    def add_scored(self, as_of: np.ndarray, rows: np.ndarray, predictions: np.ndarray) -> None:
        """Count scored rows (model input order) and their predictions, by the day of
        their ``features_as_of`` (epoch seconds)."""
        if not as_of.size:
            return
        days = np.floor(as_of / DAY_S).astype(np.int64)
        monitored = rows[:, self.layout.columns]
        for day in np.unique(days)[::-1]:  # newest first: the window moves once
            bucket = self._bucket(int(day))
            mask = days == day
            if bucket is None:
                self.late += int(mask.sum())
                continue
            bucket.features += self.layout.features.count(monitored[mask])
            bucket.prediction += self.layout.prediction.count(predictions[mask, np.newaxis])
            bucket.rows += int(mask.sum())
        self.changes += int(as_of.size)

    def add_drivers(self, as_of: float, features: Sequence[str]) -> None:
        """Count one emitted prediction's drivers (names, largest first): its first
        ``drivers_k`` are its top drivers (fewer: not counted, not comparable)."""
        if len(features) < self.layout.drivers_k:
            return
        bucket = self._bucket(math.floor(as_of / DAY_S))
        if bucket is None:
            return
        index = {name: i for i, name in enumerate(self.layout.names)}
        for name in features[: self.layout.drivers_k]:
            if name in index:
                bucket.drivers[index[name]] += 1
        bucket.explained += 1
        self.changes += 1

    def summary(self) -> DriftSummary:
        """Every distance of the window as it stands."""
        layout = self.layout
        total = DayCounts.empty(layout)
        for bucket in self.buckets.values():
            total.features += bucket.features
            total.prediction += bucket.prediction
            total.drivers += bucket.drivers
            total.rows += bucket.rows
            total.explained += bucket.explained
        features: tuple[Distance, ...] = ()
        prediction = None
        if total.rows:
            features = tuple(sorted(
                (_distance(name, layout.feature_reference[i], total.features[i],
                           int(layout.features.bins[i]))
                 for i, name in enumerate(layout.names)),
                key=lambda d: -d.psi,
            ))  # fmt: skip
            prediction = _distance("prediction", layout.prediction_reference[0],
                                   total.prediction[0], int(layout.prediction.bins[0]))  # fmt: skip
        shift: float | None = None
        drivers: tuple[DriverShare, ...] = ()
        if total.explained:
            shares = total.drivers / total.explained
            reference = layout.driver_reference
            shift = float(np.abs(shares - reference).sum() / (2 * layout.drivers_k))
            order = np.argsort(-shares, kind="stable")
            drivers = tuple(
                DriverShare(layout.names[i], float(shares[i]), float(reference[i]))
                for i in order
                if shares[i] > 0 or reference[i] > 0
            )
        return DriftSummary(
            rows=total.rows,
            first_day=min(self.buckets, default=None),
            last_day=self.last_day,
            late=self.late,
            features=features,
            prediction=prediction,
            drivers_k=layout.drivers_k,
            explained=total.explained,
            driver_shift=shift,
            drivers=drivers,
        )


def prune(windows: dict[_K, DriftWindow]) -> list[_K]:
    """Drop the windows no row reached for a whole window of the latest event time any
    window saw (a replaced model's, an ended experiment's arm); returns their keys."""
    latest = max((w.last_day for w in windows.values() if w.last_day is not None), default=None)
    if latest is None:
        return []
    stale = [key for key, w in windows.items()
             if w.last_day is not None and w.last_day < latest - w.days]  # fmt: skip
    for key in stale:
        del windows[key]
    return stale
