"""Risk tiers and the emission scale per target (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models_store.registry.card import RiskTiers
from models_store.training.tiers import prediction_scale_for, risk_tiers_for


def test_the_margin_ratio_keeps_its_documented_thresholds() -> None:
    tiers = risk_tiers_for("margin_ratio", np.array([0.1, 0.9]))
    assert tiers == RiskTiers()
    assert tiers.bounds == (0.0, 0.25, 0.5)
    assert prediction_scale_for("margin_ratio", np.array([0.0, 1e6])) == 1.0


def test_money_tiers_are_portfolio_quantiles_so_not_everyone_is_strong() -> None:
    rng = np.random.default_rng(1)
    predicted = rng.gamma(0.5, 400.0, 5_000)  # zero-inflated-looking revenue, all >= 0
    tiers = risk_tiers_for("margin_abs", predicted)
    assert tiers.basis == "portfolio_quantiles"
    counts = {name: 0 for name in ("loss", "at_risk", "healthy", "strong")}
    for value in predicted:
        counts[tiers.tier(float(value))] += 1
    assert counts["loss"] == 0
    assert counts["at_risk"] == pytest.approx(1_250, abs=60)
    assert counts["healthy"] == pytest.approx(2_500, abs=60)
    assert counts["strong"] == pytest.approx(1_250, abs=60)
    q1, q3 = np.quantile(predicted, [0.25, 0.75])
    assert prediction_scale_for("margin_abs", predicted) == pytest.approx(q3 - q1)


def test_explicit_bounds_win_and_must_ascend() -> None:
    assert risk_tiers_for("margin_abs", np.zeros(3), (-10.0, 0.0, 500.0)).tier(250.0) == "healthy"
    with pytest.raises(ValueError, match="not ascending"):
        RiskTiers(bounds=(0.0, 0.5, 0.25))


@given(st.lists(st.floats(-1e6, 1e6), min_size=4, max_size=200))
def test_money_tier_bounds_ascend_for_any_portfolio(values: list[float]) -> None:
    tiers = risk_tiers_for("margin_abs", np.array(values))
    assert tiers.bounds[0] == 0.0
    assert tiers.bounds[0] <= tiers.bounds[1] <= tiers.bounds[2]
    assert all(tiers.tier(v) == "loss" for v in values if v < 0)
    assert prediction_scale_for("margin_abs", np.array(values)) >= 1.0
