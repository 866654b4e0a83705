"""Training/serving shift: feature values outside what the model saw in training (pure).

Trees predict flat beyond the range of a feature in their training rows, so a client
whose tenure is three times any tenure seen in training gets the prediction of the
longest tenure seen. The card keeps each feature's training range; scoring counts the
values outside it (the worker as a metric per feature, ``score`` as a warning line).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models_store.registry.card import FeatureSpec


def training_ranges(
    rows: np.ndarray, names: Sequence[str]
) -> dict[str, tuple[float | None, float | None]]:
    """Each feature's (min, max) over the finite values of the training rows (None, None
    when it has none)."""
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for index, name in enumerate(names):
        column = rows[:, index]
        finite = column[np.isfinite(column)]
        ranges[name] = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
    return ranges


def outside_training_range(features: np.ndarray, specs: Sequence[FeatureSpec]) -> np.ndarray:
    """Per row and feature, whether the value is finite and outside the training range
    (features without a stored range, as on older cards, are never outside)."""
    low = np.array([-np.inf if s.training_min is None else s.training_min for s in specs])
    high = np.array([np.inf if s.training_max is None else s.training_max for s in specs])
    with np.errstate(invalid="ignore"):
        outside: np.ndarray = np.isfinite(features) & ((features < low) | (features > high))
    return outside


def shift_summary(outside: np.ndarray, names: Sequence[str], top: int = 3) -> str:
    """One line on the rows with a feature outside its training range, e.g. "812 of 2,000
    rows (41%); most often tenure_days (40%), contract_age_days (12%)"; "" when none."""
    rows_out = int(outside.any(axis=1).sum())
    if rows_out == 0:
        return ""
    total = outside.shape[0]
    share = outside.mean(axis=0)
    order = np.argsort(-share, kind="stable")[:top]
    worst = ", ".join(f"{names[i]} ({share[i]:.0%})" for i in order if share[i] > 0)
    return f"{rows_out:,} of {total:,} rows ({rows_out / total:.0%}); most often {worst}"
