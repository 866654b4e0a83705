"""The training reference of a model's drift, built when it is trained (pure).

Features are binned at the deciles of their finite values in the training rows; the
model's predictions on the validation rows (out of sample, like the stream's) at their
own deciles; driver shares come from the TreeSHAP contributions of the test rows. Calendar
features (``features.definitions.CALENDAR_FEATURES``) are left out: a week of traffic
always differs from a year of training rows in them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.definitions import CALENDAR_FEATURES
from models_store.registry.drift_reference import BinnedDistribution, DriftReference

DEFAULT_BINS = 10


def binned(values: np.ndarray, bins: int = DEFAULT_BINS) -> BinnedDistribution:
    """``values`` in (at most) ``bins`` bins with edges at their quantiles; ties merge
    bins, and no edge sits at the minimum (its first bin would be empty)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return BinnedDistribution(edges=[], counts=[0], missing=int(values.size))
    # Edges are values of the data ("higher"): a tie at a quantile stays in one bin.
    quantiles = np.quantile(finite, np.arange(1, bins) / bins, method="higher")
    edges = np.unique(quantiles)
    edges = edges[edges > finite.min()]
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    return BinnedDistribution(
        edges=[float(e) for e in edges],
        counts=[int(c) for c in counts],
        missing=int(values.size - finite.size),
    )


def driver_indices(contributions: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of its ``k`` largest |contributions|, largest first (ties keep
    column order, as ``models_store.scoring.scorer.top_drivers`` does)."""
    order: np.ndarray = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]
    return order


def drift_reference(
    train_rows: np.ndarray,
    names: Sequence[str],
    predictions: np.ndarray,
    contributions: np.ndarray,
    k: int,
    *,
    feature_rows: str = "training rows",
    prediction_rows: str = "validation rows",
) -> DriftReference:
    """The card's drift reference: ``train_rows`` and ``contributions`` are in ``names``
    order (contributions without the bias column), ``predictions`` the model's."""
    kept = [i for i, name in enumerate(names) if name not in CALENDAR_FEATURES]
    counts = np.zeros(len(names), dtype=np.int64)
    if contributions.shape[0]:
        np.add.at(counts, driver_indices(contributions, k).ravel(), 1)
    rows = int(contributions.shape[0])
    return DriftReference(
        feature_rows=f"{feature_rows} ({train_rows.shape[0]:,})",
        features={names[i]: binned(train_rows[:, i]) for i in kept},
        prediction_rows=f"{prediction_rows} ({predictions.size:,})",
        prediction=binned(predictions),
        drivers_k=k,
        driver_rows=rows,
        driver_share={names[i]: (float(counts[i]) / rows if rows else 0.0) for i in kept},
    )
