"""The hidden-truth oracle of a simulated portfolio.

Ground truth: the margin of the next 90 days (three periods) is noisy given everything
the generator knows. ``oracle_rows`` re-draws those periods from each cutoff's state many
times: its mean is the best possible prediction, and its R² against the realised
margins is the best accuracy any model can reach on this data.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from features.simulation.portfolio import PERIOD_DAYS, PERIOD_S, PeriodDraws, Portfolio, step

HORIZON_PERIODS = 3  # 90 days


def horizon_margin(periods: list[PeriodDraws]) -> float:
    """Gross margin ratio of some periods (NaN without revenue, as the label rule says)."""
    revenue = sum(p.revenue for p in periods)
    cost = sum(p.cost for p in periods)
    return (revenue - cost) / revenue if revenue > 0 else math.nan


def oracle_rows(
    portfolio: Portfolio,
    draws_per_cutoff: int = 16,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Best-possible predictions of the next 90 days' margin at each period boundary.

    For every client and cutoff with a full horizon ahead (and revenue in it), the
    horizon is re-drawn ``draws_per_cutoff`` times from the cutoff's state; the mean is
    the oracle's prediction, next to the margin that was actually drawn. One row per
    (client_id, cutoff epoch s): prediction, estimate_variance (of that mean), actual.
    """
    rng = np.random.default_rng(portfolio.seed + 1)
    rows: list[tuple[str, float, float, float, float]] = []
    for client_id, traits, draws, states in portfolio.clients:
        if progress is not None:
            progress(1)
        for cutoff in range(1, portfolio.periods - HORIZON_PERIODS + 1):
            actual = horizon_margin(draws[cutoff : cutoff + HORIZON_PERIODS])
            if math.isnan(actual):
                continue
            samples = []
            for _ in range(draws_per_cutoff):
                dyn = copy.copy(states[cutoff])
                sample = horizon_margin([step(traits, dyn, rng) for _ in range(HORIZON_PERIODS)])
                if not math.isnan(sample):
                    samples.append(sample)
            if len(samples) > 1:
                rows.append((client_id, portfolio.start + cutoff * PERIOD_S,
                             float(np.mean(samples)),
                             float(np.var(samples, ddof=1)) / len(samples), actual))  # fmt: skip
    columns = ["client_id", "cutoff", "prediction", "estimate_variance", "actual"]
    return pd.DataFrame(rows, columns=columns)


def oracle_expected_r2(
    actual: np.ndarray, prediction: np.ndarray, estimate_variance: np.ndarray
) -> float:
    """R² of the oracle's exact mean: the mean of K draws is itself noisy (variance s²/K),
    which would understate the oracle, so that part is taken out of the squared error."""
    residual = float(np.mean((actual - prediction) ** 2)) - float(np.mean(estimate_variance))
    return 1.0 - residual / float(np.var(actual))


def oracle(
    portfolio: Portfolio,
    draws_per_cutoff: int = 16,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The oracle's figures over every cutoff (see ``oracle_rows``)."""
    return oracle_summary(oracle_rows(portfolio, draws_per_cutoff, progress), draws_per_cutoff)


def oracle_summary(rows: pd.DataFrame, draws_per_cutoff: int) -> dict[str, Any]:
    """Expected R² and MAE of the oracle over ``rows``."""
    y, p = rows["actual"].to_numpy(), rows["prediction"].to_numpy()
    return {
        "oracle_expected_r2": oracle_expected_r2(y, p, rows["estimate_variance"].to_numpy()),
        "oracle_mae": float(np.mean(np.abs(y - p))),
        "pairs": len(rows),
        "draws_per_cutoff": draws_per_cutoff,
        "horizon_days": HORIZON_PERIODS * PERIOD_DAYS,
        "label": "gross margin ratio of (t, t+90d]; pairs without revenue left out",
    }
