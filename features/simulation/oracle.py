"""The hidden-truth oracle of a simulated portfolio.

Ground truth: the margin of the next 90 days (three periods) is noisy given everything
the generator knows. The oracle predicts it as well as anything can, for two targets:

- the margin *ratio* (as ``train``'s default target): each cutoff's horizon is re-drawn
  many times from the client's hidden state; the mean of the ratios of the draws with
  revenue is the prediction, next to the ratio that was actually drawn (pairs without
  revenue are left out, as the label rule says);
- the absolute margin, revenue − cost (``--target margin_abs``), with the expected
  revenue beside it: for contract clients the mean of the same re-draws (exactly 0 once
  cancelled), for transactional clients the closed form of their buy-till-you-die story
  given their traits and whether they are alive (``transactional.expected_horizon``).
  Every client known at the cutoff has a row, those without money in the horizon too.

The oracle's R² against the realised values is the best any model can reach on this data.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from features.simulation.portfolio import PERIOD_DAYS, PERIOD_S, Portfolio, step
from features.simulation.transactional import (
    Shopper,
    ShopperPeriod,
    draw_periods,
    expected_horizon,
    purchase_instants,
)

HORIZON_PERIODS = 3  # 90 days
OracleTarget = Literal["margin_ratio", "margin_abs"]
RATIO_COLUMNS = ["client_id", "cutoff", "prediction", "estimate_variance", "actual"]
ABSOLUTE_COLUMNS = [*RATIO_COLUMNS, "expected_revenue", "actual_revenue"]
LABELS: dict[OracleTarget, str] = {
    "margin_ratio": "gross margin ratio of (t, t+90d]; pairs without revenue left out",
    "margin_abs": "margin (revenue − cost) of (t, t+90d]; every client known at t",
}


class PeriodMoney(Protocol):
    """A drawn period's money: what a horizon's margin is made of."""

    @property
    def revenue(self) -> float: ...

    @property
    def cost(self) -> float: ...


def horizon_margin(periods: Sequence[PeriodMoney]) -> float:
    """Gross margin ratio of some periods (NaN without revenue, as the label rule says)."""
    revenue = sum(p.revenue for p in periods)
    cost = sum(p.cost for p in periods)
    return (revenue - cost) / revenue if revenue > 0 else math.nan


def horizon_money(periods: Sequence[PeriodMoney]) -> tuple[float, float]:
    """(revenue, margin) of some periods."""
    revenue = sum(p.revenue for p in periods)
    return revenue, revenue - sum(p.cost for p in periods)


@dataclass(frozen=True)
class OracleTables:
    """The oracle's rows, per target: one per (client_id, cutoff epoch s)."""

    ratio: pd.DataFrame  # RATIO_COLUMNS
    absolute: pd.DataFrame  # ABSOLUTE_COLUMNS


RatioRow = tuple[str, float, float, float, float]
AbsoluteRow = tuple[str, float, float, float, float, float, float]


def oracle_tables(
    portfolio: Portfolio,
    draws_per_cutoff: int = 16,
    progress: Callable[[int], None] | None = None,
) -> OracleTables:
    """Best-possible predictions of the next 90 days' margin at each period boundary with
    a full horizon ahead: ratio rows where the horizon had revenue and at least two
    re-draws did; absolute rows for every client known at the cutoff (a contract client's
    re-draws need ``draws_per_cutoff`` > 1 for the variance of their mean)."""
    rng = np.random.default_rng(portfolio.seed + 1)
    ratio: list[RatioRow] = []
    absolute: list[AbsoluteRow] = []
    for client_id, traits, draws, states in portfolio.clients:
        if progress is not None:
            progress(1)
        for cutoff in range(1, portfolio.periods - HORIZON_PERIODS + 1):
            horizon = draws[cutoff : cutoff + HORIZON_PERIODS]
            t = portfolio.start + cutoff * PERIOD_S
            actual = horizon_margin(horizon)
            if math.isnan(actual):
                # Cancelled before the cutoff: nothing more happens, exactly. (An active
                # contract invoices every period, so it always has revenue.)
                if not states[cutoff].active:
                    absolute.append((client_id, t, 0.0, 0.0, 0.0, 0.0, 0.0))
                continue
            samples, money = [], []
            for _ in range(draws_per_cutoff):
                dyn = copy.copy(states[cutoff])
                periods = [step(traits, dyn, rng) for _ in range(HORIZON_PERIODS)]
                sample = horizon_margin(periods)
                money.append(horizon_money(periods))
                if not math.isnan(sample):
                    samples.append(sample)
            if len(samples) > 1:
                ratio.append((client_id, t, float(np.mean(samples)),
                              float(np.var(samples, ddof=1)) / len(samples), actual))  # fmt: skip
            if len(money) > 1:
                revenues, margins = np.array(money).T
                revenue, margin = horizon_money(horizon)
                absolute.append((client_id, t, float(np.mean(margins)),
                                 float(np.var(margins, ddof=1)) / len(margins), margin,
                                 float(np.mean(revenues)), revenue))  # fmt: skip
    for shopper in portfolio.shoppers:
        if progress is not None:
            progress(1)
        _shopper_rows(shopper, portfolio, draws_per_cutoff, rng, ratio, absolute)
    return OracleTables(pd.DataFrame(ratio, columns=RATIO_COLUMNS),
                        pd.DataFrame(absolute, columns=ABSOLUTE_COLUMNS))  # fmt: skip


def _shopper_rows(
    shopper: Shopper,
    portfolio: Portfolio,
    draws_per_cutoff: int,
    rng: np.random.Generator,
    ratio: list[RatioRow],
    absolute: list[AbsoluteRow],
) -> None:
    """A transactional client's rows: closed-form money, re-drawn ratios."""
    horizon_s = HORIZON_PERIODS * PERIOD_S
    for cutoff in range(1, portfolio.periods - HORIZON_PERIODS + 1):
        at_s = cutoff * PERIOD_S
        if not shopper.acquired_before(at_s):
            continue  # no event yet: no client to predict at this cutoff
        horizon = shopper.periods[cutoff : cutoff + HORIZON_PERIODS]
        t = portfolio.start + at_s
        alive = shopper.alive_at(at_s)
        expected_revenue, expected_margin = expected_horizon(
            shopper.traits, alive, HORIZON_PERIODS * PERIOD_DAYS
        )
        revenue, margin = horizon_money(horizon)
        client_id = shopper.client_id
        absolute.append((client_id, t, expected_margin, 0.0, margin, expected_revenue, revenue))
        actual = horizon_margin(horizon)
        if math.isnan(actual):
            continue
        samples = []
        for _ in range(draws_per_cutoff):
            instants, _ = purchase_instants(shopper.traits, at_s, at_s + horizon_s, rng,
                                            first=False)  # fmt: skip
            sample = horizon_margin(_periods(shopper, instants, cutoff, rng))
            if not math.isnan(sample):
                samples.append(sample)
        if len(samples) > 1:
            ratio.append((client_id, t, float(np.mean(samples)),
                          float(np.var(samples, ddof=1)) / len(samples), actual))  # fmt: skip


def _periods(
    shopper: Shopper, instants: list[int], cutoff: int, rng: np.random.Generator
) -> list[ShopperPeriod]:
    # Re-drawn purchases of the horizon's periods (instants past the cutoff's periods only).
    periods = draw_periods(shopper.traits, instants, cutoff + HORIZON_PERIODS, rng)
    return periods[cutoff:]


def oracle_rows(
    portfolio: Portfolio,
    draws_per_cutoff: int = 16,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The margin ratio's rows of ``oracle_tables``: client_id, cutoff, prediction,
    estimate_variance (of that mean), actual."""
    return oracle_tables(portfolio, draws_per_cutoff, progress).ratio


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
    """The oracle's figures of the margin ratio over every cutoff (see ``oracle_tables``)."""
    return oracle_summary(oracle_rows(portfolio, draws_per_cutoff, progress), draws_per_cutoff)


def oracle_summary(
    rows: pd.DataFrame, draws_per_cutoff: int, target: OracleTarget = "margin_ratio"
) -> dict[str, Any]:
    """Expected R² and MAE of the oracle over ``rows`` of ``target``; for the absolute
    margin also the totals and the share of rows without revenue in the horizon."""
    y, p = rows["actual"].to_numpy(), rows["prediction"].to_numpy()
    figures: dict[str, Any] = {
        "oracle_expected_r2": oracle_expected_r2(y, p, rows["estimate_variance"].to_numpy()),
        "oracle_mae": float(np.mean(np.abs(y - p))),
        "pairs": len(rows),
        "draws_per_cutoff": draws_per_cutoff,
        "horizon_days": HORIZON_PERIODS * PERIOD_DAYS,
        "label": LABELS[target],
    }
    if target == "margin_abs":
        figures["actual_total"] = float(np.sum(y))
        figures["predicted_total"] = float(np.sum(p))
        figures["no_revenue_share"] = float(np.mean(rows["actual_revenue"].to_numpy() == 0))
    return figures
