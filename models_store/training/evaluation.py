"""Accuracy figures and the baselines every model is compared with (pure functions)."""

from __future__ import annotations

import numpy as np


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R², MAE, RMSE and bias (mean predicted − actual) over rows."""
    error = predicted - actual
    total = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else float("nan"),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "bias": float(np.mean(error)),
        "rows": float(actual.size),
    }


def persistence_baseline(trailing: np.ndarray, fallback: float) -> np.ndarray:
    """Tomorrow looks like yesterday: the trailing realised margin; ``fallback`` (the
    training mean) where it is undefined (no revenue in the trailing window)."""
    return np.where(np.isnan(trailing), fallback, trailing)


def mean_baseline(rows: int, training_mean: float) -> np.ndarray:
    """The portfolio's mean training label, for every row."""
    return np.full(rows, training_mean)


def best_blend_weight(
    actual: np.ndarray, first: np.ndarray, second: np.ndarray, grid: int = 21
) -> float:
    """Weight w in [0, 1] of ``first`` minimising the mean absolute error of
    w·first + (1−w)·second (ties: the larger w)."""
    weights = np.linspace(0.0, 1.0, grid)
    errors = [float(np.mean(np.abs(w * first + (1 - w) * second - actual))) for w in weights]
    return float(weights[len(weights) - 1 - int(np.argmin(errors[::-1]))])
