"""The hidden-truth oracle: what any model can reach on a simulated portfolio (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from features.simulation.oracle import oracle
from features.simulation.portfolio import simulate

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def test_the_oracle_is_better_than_the_mean() -> None:
    portfolio = simulate(80, 8, seed=2, start=START)
    figures = oracle(portfolio, draws_per_cutoff=4)
    assert figures["pairs"] > 100
    assert 0.2 < figures["oracle_expected_r2"] < 1.0
