"""Transactional clients: buy till you die, zero-inflated, a closed-form truth (pure)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from features.simulation.periods import PERIOD_S
from features.simulation.portfolio import simulate
from features.simulation.transactional import (
    ShopperTraits,
    draw_purchase,
    draw_shopper_traits,
    expected_margin_per_purchase,
    expected_purchases,
    purchase_instants,
)
from features.windows import DAY_SECONDS

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
HORIZON_S = 90 * DAY_SECONDS


def _traits(rate: float, dropout: float) -> ShopperTraits:
    drawn = draw_shopper_traits(np.random.default_rng(0), 12 * PERIOD_S)
    return replace(drawn, purchase_rate=rate, dropout=dropout, return_rate=0.1, ticket_rate=0.2)


@settings(max_examples=8, deadline=None)
@given(rate=st.floats(0.003, 0.3), dropout=st.floats(0.02, 0.9), seed=st.integers(0, 2**31))
def test_expected_purchases_of_a_live_client_are_the_mean_of_redrawn_futures(
    rate: float, dropout: float, seed: int
) -> None:
    traits = _traits(rate, dropout)
    rng = np.random.default_rng(seed)
    counts = np.array([len(purchase_instants(traits, 0, HORIZON_S, rng, first=False)[0])
                       for _ in range(4000)])  # fmt: skip
    expected = expected_purchases(traits, 90)
    error = 5 * counts.std() / math.sqrt(counts.size) + 1e-3
    assert abs(counts.mean() - expected) < error, (counts.mean(), expected)
    # Without the dropout a live client would buy λ·90 times: the mean tells them apart.
    assert expected < rate * 90


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_the_expected_margin_of_a_purchase_is_the_mean_of_drawn_purchases(seed: int) -> None:
    rng = np.random.default_rng(seed)
    traits = _traits(0.05, 0.2)
    margins = []
    for _ in range(20_000):
        purchase = draw_purchase(traits, int(rng.uniform(0, PERIOD_S)), rng)
        returned = purchase.amount if purchase.returned_at_s is not None else 0.0
        margins.append(purchase.amount - purchase.goods_cost - returned
                       - purchase.ticket_hours * traits.cost_rate)  # fmt: skip
        # Whatever follows a purchase happens in its period: the horizons' money is exact.
        for at in (purchase.returned_at_s, purchase.ticket_at_s):
            assert at is None or at // PERIOD_S == purchase.at_s // PERIOD_S
    mean, error = float(np.mean(margins)), 5 * float(np.std(margins)) / math.sqrt(len(margins))
    assert abs(mean - expected_margin_per_purchase(traits)) < error


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_most_clients_buy_nothing_in_a_90_day_horizon(seed: int) -> None:
    portfolio = simulate(800, 9, seed, START, kind="transactional")
    for cutoff in (3, 6):
        at_s = cutoff * PERIOD_S
        known = [s for s in portfolio.shoppers if s.acquired_before(at_s)]
        revenue = np.array([sum(p.revenue for p in s.periods[cutoff : cutoff + 3]) for s in known])
        assert 0.4 < float(np.mean(revenue == 0)) < 0.85
        # Some have left for good, and those buy nothing more.
        gone = [s for s in known if not s.alive_at(at_s)]
        assert 0.05 * len(known) < len(gone) < 0.6 * len(known)
        assert all(p.revenue == 0 for s in gone for p in s.periods[cutoff:])
    # Acquired over the first half of the history, the first on the first day.
    births = [s.traits.birth_s for s in portfolio.shoppers]
    assert births[0] == 0
    assert max(births) < 4.5 * PERIOD_S
