"""Accuracy figures and the baselines every model is compared with (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R², MAE, RMSE, bias (mean predicted − actual), the total predicted against the total
    actual (``total_error``: sum predicted / sum actual − 1) and Spearman's rank correlation
    (how well the model orders clients) over rows. A figure that is undefined for these
    rows (R² and Spearman of constant values, the total of a zero sum) is left out: the
    card is JSON, which has no NaN."""
    error = predicted - actual
    total = float(np.sum((actual - actual.mean()) ** 2))
    actual_sum = float(np.sum(actual))
    figures = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "bias": float(np.mean(error)),
        "rows": float(actual.size),
    }
    if total > 0:
        figures["r2"] = 1.0 - float(np.sum(error**2)) / total
    if actual_sum:
        figures["total_error"] = float(np.sum(predicted)) / actual_sum - 1
    if np.ptp(actual) > 0 and np.ptp(predicted) > 0:
        figures["spearman"] = float(spearmanr(actual, predicted).statistic)
    return figures


def calibration_bins(actual: np.ndarray, predicted: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Rows grouped into ``bins`` equal-count bins of the prediction (deciles by default):
    mean predicted, mean actual and rows per bin. A calibrated model's means agree."""
    frame = pd.DataFrame({"predicted": predicted, "actual": actual})
    ranks = frame["predicted"].rank(method="first")
    frame["bin"] = pd.qcut(ranks, q=min(bins, len(frame)), labels=False)
    grouped = frame.groupby("bin").agg(
        predicted=("predicted", "mean"), actual=("actual", "mean"), rows=("actual", "size")
    )
    return grouped.reset_index(drop=True)


def errors_by_segment(
    actual: np.ndarray, predicted: np.ndarray, segment: pd.Series
) -> pd.DataFrame:
    """MAE, bias and rows per segment (e.g. a client-size quartile, tier or tenure band)."""
    frame = pd.DataFrame({"segment": segment.to_numpy(), "error": predicted - actual})
    frame["absolute"] = frame["error"].abs()
    grouped = frame.groupby("segment", observed=True).agg(
        mae=("absolute", "mean"), bias=("error", "mean"), rows=("error", "size")
    )
    return grouped.reset_index()


def persistence_baseline(trailing: np.ndarray, fallback: float) -> np.ndarray:
    """Tomorrow looks like yesterday: the trailing realised margin; ``fallback`` (the
    training mean) where it is undefined (no revenue in the trailing window)."""
    return np.where(np.isnan(trailing), fallback, trailing)


def mean_baseline(rows: int, training_mean: float) -> np.ndarray:
    """The portfolio's mean training label, for every row."""
    return np.full(rows, training_mean)


def best_blend_weight(
    actual: np.ndarray, first: np.ndarray, second: np.ndarray, grid: int = 21, metric: str = "mae"
) -> float:
    """Weight w in [0, 1] of ``first`` minimising the mean absolute error (``metric`` "mae")
    or the root mean squared error ("rmse") of w·first + (1−w)·second (ties: the larger w)."""
    weights = np.linspace(0.0, 1.0, grid)
    power = 1 if metric == "mae" else 2
    errors = [float(np.mean(np.abs(w * first + (1 - w) * second - actual) ** power))
              for w in weights]  # fmt: skip
    return float(weights[len(weights) - 1 - int(np.argmin(errors[::-1]))])
