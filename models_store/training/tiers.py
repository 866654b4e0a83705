"""Risk tiers and the emission scale a model is trained with, per target (pure).

The margin ratio has natural bounds (a loss below 0, 25% and 50% margin); money has none
that suit every business: an amount is large or small only against the rest of the
portfolio. So for money targets the tiers are 0 (a loss) and quantiles of the model's
own predictions on the validation rows, and the emission delta is a fraction of their
interquartile range.
"""

from __future__ import annotations

import numpy as np

from models_store.labels import MONEY_TARGETS
from models_store.registry.card import RiskTiers

DEFAULT_QUANTILES = (0.25, 0.75)


def risk_tiers_for(
    target: str,
    predictions: np.ndarray,
    bounds: tuple[float, float, float] | None = None,
    quantiles: tuple[float, float] = DEFAULT_QUANTILES,
) -> RiskTiers:
    """The tiers of a model: explicit ``bounds`` when given, else the margin-ratio
    thresholds for the ratio, else 0 and the ``quantiles`` of ``predictions``."""
    if bounds is not None:
        return RiskTiers(basis="thresholds", bounds=bounds)
    if target not in MONEY_TARGETS:
        return RiskTiers()
    low, high = (float(np.quantile(predictions, q)) for q in quantiles)
    # A portfolio whose lower quantile is a loss: the loss tier takes it, the next starts at 0.
    return RiskTiers(basis="portfolio_quantiles", quantiles=quantiles,
                     bounds=(0.0, max(low, 0.0), max(high, low, 0.0)))  # fmt: skip


def prediction_scale_for(target: str, predictions: np.ndarray) -> float:
    """What the emission delta is a fraction of: 1 for the ratio, for money the
    interquartile range of the validation predictions (at least 1 currency unit)."""
    if target not in MONEY_TARGETS:
        return 1.0
    q1, q3 = np.quantile(predictions, [0.25, 0.75])
    return max(float(q3 - q1), 1.0)
