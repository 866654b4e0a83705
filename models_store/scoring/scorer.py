"""From feature vectors to scores: margin, interval, risk tier, drivers.

Pure except for the model call: the stream, `profitstream score` and `POST /predict` all
score through ``Scorer.score`` (one model call per batch), so a prediction is the same
wherever it is made: a row's score does not depend on the other rows of its batch (the
forest predicts on one thread; ``models_store.scoring.prediction`` identifies the payload).

Risk tiers come from the model's card (``RiskTiers``): for the margin ratio m of the
horizon ``loss`` m < 0 · ``at_risk`` 0 <= m < 0.25 · ``healthy`` 0.25 <= m < 0.5 ·
``strong`` m >= 0.5; for money targets, bounds drawn from the portfolio at training time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from features.definitions import FEATURE_NAMES
from models_store.model.profit_model import ProfitModel
from models_store.registry.base import ModelRegistry
from models_store.registry.card import ModelCard, TierName

DEFAULT_DRIVERS = 5


@dataclass(frozen=True)
class Contribution:
    """One feature's push on the prediction: its value and its SHAP contribution."""

    feature: str
    value: float | None  # None: the feature is undefined (NaN) for this client
    contribution: float


@dataclass(frozen=True)
class Score:
    """What the model says about one feature vector."""

    margin: float
    lower: float
    upper: float
    level: float
    tier: TierName
    drivers: tuple[Contribution, ...]
    # The label-free estimate of this prediction's |error| (None: the bundle has no model).
    estimated_error: float | None = None


def top_drivers(
    contributions: np.ndarray, values: np.ndarray, names: tuple[str, ...], k: int
) -> tuple[Contribution, ...]:
    """The ``k`` features with the largest absolute contribution (the bias column dropped),
    largest first; ties keep feature order."""
    strengths = np.abs(contributions[: len(names)])
    order = np.argsort(-strengths, kind="stable")[:k]
    return tuple(
        Contribution(
            feature=names[i],
            value=None if math.isnan(values[i]) else float(values[i]),
            contribution=float(contributions[i]),
        )
        for i in order
    )


class Scorer:
    """A loaded, verified model version and how it turns rows into ``Score``s."""

    def __init__(self, card: ModelCard, model: ProfitModel, drivers: int = DEFAULT_DRIVERS):
        self.card = card
        self.model = model
        self.drivers = drivers

    @classmethod
    def from_registry(
        cls, registry: ModelRegistry, ref: str, cache: Path, drivers: int = DEFAULT_DRIVERS
    ) -> Scorer:
        """Fetch ``ref`` (verified against the registry's card) and load it."""
        card, bundle = registry.fetch(ref, cache)
        return cls(card, ProfitModel.load(bundle, card), drivers)

    @property
    def ref(self) -> str:
        """``name@version`` of the model."""
        return self.card.ref

    def score(self, features: np.ndarray) -> list[Score]:
        """Scores of rows of the running feature vector (``FEATURE_NAMES`` order, which
        ``ProfitModel.load`` checked is the model's), with drivers; one model call."""
        return self.explain(features, self.predict(features))

    def predict(self, features: np.ndarray) -> list[Score]:
        """Scores without drivers (the cheap part: prediction and interval)."""
        if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(
                f"expected rows of {len(FEATURE_NAMES)} features, not {features.shape}"
            )
        margin = self.model.predict(features)
        lower, upper = self.model.interval(features, margin)
        level = self.model.level
        tiers = self.card.risk_tiers
        estimated = self.model.estimated_errors(features, margin)
        errors = [None] * len(margin) if estimated is None else [float(e) for e in estimated]
        return [
            Score(float(m), float(lo), float(hi), level, tiers.tier(float(m)), (), error)
            for m, lo, hi, error in zip(margin, lower, upper, errors, strict=True)
        ]

    def explain(self, features: np.ndarray, scores: list[Score]) -> list[Score]:
        """``scores`` of ``features`` with their drivers added (TreeSHAP: the costly part,
        so the stream explains only the predictions it emits)."""
        if not self.drivers or not scores:
            return scores
        contributions = self.model.contributions(features)
        names = self.card.feature_names
        return [
            replace(score, drivers=top_drivers(contributions[i], features[i], names, self.drivers))
            for i, score in enumerate(scores)
        ]
