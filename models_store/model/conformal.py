"""Split-conformal prediction intervals, normalised by a model of the expected error.

Scores on held-out calibration rows are |y − ŷ| / σ(x), where σ(x) > 0 is a model of
how wrong ŷ tends to be for such a client. The interval is ŷ ± q·σ(x) with q the
⌈(n+1)·level⌉-th smallest score: under exchangeability of calibration and new rows it
covers with probability >= level, whatever σ is; a good σ makes it narrow where the
model is sure and wide where it is not.
"""

from __future__ import annotations

import math

import numpy as np

SCALE_FLOOR = 1e-3  # σ never below this: a zero would make the score infinite


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The finite-sample-corrected ``level`` quantile of calibration ``scores``."""
    if not 0 < level < 1:
        raise ValueError(f"interval level {level} is not in (0, 1)")
    n = scores.size
    if n == 0:
        raise ValueError("no calibration rows")
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return float("inf")
    return float(np.sort(scores)[rank - 1])


def scores(actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Normalised absolute residuals."""
    return np.asarray(np.abs(actual - predicted) / np.maximum(scale, SCALE_FLOOR))


def interval(
    predicted: np.ndarray, scale: np.ndarray, quantile: float
) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) bounds."""
    half = quantile * np.maximum(scale, SCALE_FLOOR)
    return predicted - half, predicted + half


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of rows whose actual value lies within [lower, upper]."""
    return float(np.mean((actual >= lower) & (actual <= upper)))
