"""What a model's training data looked like, kept in its card for drift monitoring.

Per feature (and for the model's predictions) a compact binned distribution: interior bin
edges at the deciles of the finite training values (ties merged, so fewer bins for features
with few distinct values), the count of rows per bin and the count of rows without a finite
value. Plus the share of rows in which each feature is among the top-k SHAP drivers. The
stream compares its recent scored rows with these (``models_store.monitoring``). Built at
training time (``drift_reference``, below: features binned at the deciles of the training
rows, predictions of the validation rows at their own, driver shares from the test rows'
TreeSHAP; calendar features left out, since a week of traffic always differs from a year of
training rows in them); cards written before have none, and no drift is computed for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.definitions import CALENDAR_FEATURES


class BinnedDistribution(BaseModel):
    """Rows per bin: bin i holds ``edges[i-1] <= x < edges[i]`` (the first below
    ``edges[0]``, the last from ``edges[-1]`` up); ``missing``: rows with NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edges: list[float] = Field(description="ascending, distinct interior edges")
    counts: list[int] = Field(description="one more than the edges")
    missing: int = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> BinnedDistribution:
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) + 1} counts")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly ascending")
        if any(count < 0 for count in self.counts):
            raise ValueError("counts must not be negative")
        return self

    @property
    def rows(self) -> int:
        """Every row counted, missing ones included."""
        return sum(self.counts) + self.missing


class DriftReference(BaseModel):
    """The training distribution the stream's drift is measured against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature_rows: str = Field(description="which rows the features were binned on")
    features: dict[str, BinnedDistribution]
    prediction_rows: str = Field(description="which rows the model's predictions come from")
    prediction: BinnedDistribution
    drivers_k: int = Field(ge=1, description="a feature is a driver if among the top k |SHAP|")
    driver_rows: int = Field(ge=0)
    driver_share: dict[str, float] = Field(
        description="share of the explained rows with the feature among their top-k drivers"
    )


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
