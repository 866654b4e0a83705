"""How far a binned distribution has moved from its reference (pure).

Counts come as vectors over the same categories: the bins of the reference's edges, then
(for PSI) the rows without a finite value. PSI smooths each category with half a row, so
an empty bin on either side is finite and PSI of equal counts is 0. KS and Wasserstein
compare the finite values only, on the reference's bins: KS is the largest gap between
the two cumulative shares at an edge, Wasserstein the mean gap over the edges (the
1-Wasserstein distance with adjacent bins one unit apart, over the number of units), both
in [0, 1]. With decile bins a Wasserstein of 0.1 means values moved a decile on average.
"""

from __future__ import annotations

import math

import numpy as np

SMOOTHING = 0.5  # rows added to every category before PSI takes logarithms
# Conventional PSI bands: below MODERATE no drift, up to MAJOR moderate, above major.
MODERATE_PSI = 0.1
MAJOR_PSI = 0.25


def _shares(counts: np.ndarray) -> np.ndarray:
    smoothed = counts.astype(np.float64) + SMOOTHING
    shares: np.ndarray = smoothed / smoothed.sum()
    return shares


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of ``current`` against ``reference`` (counts per
    category): sum of (current - reference) * ln(current / reference) over the shares."""
    if reference.shape != current.shape or reference.ndim != 1:
        raise ValueError(f"counts of one shape expected, not {reference.shape}/{current.shape}")
    expected, observed = _shares(reference), _shares(current)
    return float(np.sum((observed - expected) * np.log(observed / expected)))


def _cdf_gaps(reference: np.ndarray, current: np.ndarray) -> np.ndarray | None:
    """|cumulative share difference| at each interior edge (None: a side has no rows)."""
    if reference.sum() == 0 or current.sum() == 0:
        return None
    gaps: np.ndarray = np.abs(
        np.cumsum(reference)[:-1] / reference.sum() - np.cumsum(current)[:-1] / current.sum()
    )
    return gaps


def binned_ks(reference: np.ndarray, current: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic on the bins (NaN when a side has no finite value)."""
    gaps = _cdf_gaps(reference, current)
    if gaps is None:
        return math.nan
    return float(gaps.max()) if gaps.size else 0.0


def binned_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """1-Wasserstein distance on the bins, in units of the bin count (NaN: a side empty)."""
    gaps = _cdf_gaps(reference, current)
    if gaps is None:
        return math.nan
    return float(gaps.mean()) if gaps.size else 0.0
