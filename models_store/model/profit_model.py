"""The deployable model: XGBoost and Random Forest blended, with its interval and drivers.

Artifacts of a bundle:
- ``xgboost.ubj`` — the XGBoost regressor, in XGBoost's own binary JSON (no code in it);
- ``random_forest.joblib`` — the scikit-learn forest. joblib is pickle: unpickling runs
  code, so it is only ever loaded from a bundle whose every file matched the registry
  card's sha256 (``load`` verifies first);
- ``interval_scale.ubj`` — an XGBoost model of the expected absolute error, the σ(x) of
  the normalised conformal interval;
- ``error_estimate.ubj`` — the label-free error estimate (``models_store.model.error_estimate``),
  fitted on held-out residuals; bundles trained before it have none, and give no estimate.

Drivers are TreeSHAP contributions of the XGBoost component (XGBoost's native
``pred_contribs``, microseconds per row); exact SHAP of the forest would cost
milliseconds per row, too slow for the stream, so drivers explain the XGBoost part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import xgboost
from sklearn.ensemble import RandomForestRegressor

from models_store.model.conformal import interval
from models_store.model.error_estimate import estimate_errors
from models_store.registry.bundle import artifact_entry, verify_bundle
from models_store.registry.card import ArtifactEntry, ModelCard, check_features

XGBOOST_FILE = "xgboost.ubj"
FOREST_FILE = "random_forest.joblib"
SCALE_FILE = "interval_scale.ubj"
ERROR_FILE = "error_estimate.ubj"


@dataclass
class ProfitModel:
    """Blend ``weight``·XGBoost + (1−weight)·forest; interval ŷ ± quantile·σ(x)."""

    xgboost_model: xgboost.Booster
    forest: RandomForestRegressor
    scale_model: xgboost.Booster
    weight: float
    quantile: float
    level: float
    feature_names: tuple[str, ...]
    error_model: xgboost.Booster | None = None  # None: a bundle without the estimate

    def components(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(XGBoost, forest) predictions; the forest is not run when it has no weight."""
        boosted = self.xgboost_model.inplace_predict(x).astype(np.float64)
        forest = self.forest.predict(x) if self.weight < 1.0 else np.zeros_like(boosted)
        return boosted, forest

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Blended point predictions for rows of ``feature_names`` columns."""
        boosted, forest = self.components(x)
        return np.asarray(self.weight * boosted + (1.0 - self.weight) * forest)

    def scale(self, x: np.ndarray) -> np.ndarray:
        """σ(x): the expected absolute error for each row."""
        return np.asarray(self.scale_model.inplace_predict(x), dtype=np.float64)

    def interval(self, x: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated ``level`` interval around ``predicted``."""
        return interval(predicted, self.scale(x), self.quantile)

    def estimated_errors(self, x: np.ndarray, predicted: np.ndarray) -> np.ndarray | None:
        """The label-free estimate of each row's |error| (None: the bundle has no model)."""
        if self.error_model is None:
            return None
        return estimate_errors(self.error_model, x, predicted)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """TreeSHAP of the XGBoost component: one column per feature, then the bias."""
        # No feature names on the DMatrix: validating them costs about a millisecond.
        return np.asarray(self.xgboost_model.predict(xgboost.DMatrix(x), pred_contribs=True))

    def save(self, bundle: Path) -> dict[str, ArtifactEntry]:
        """Write the artifacts into ``bundle``; their card entries."""
        self.xgboost_model.save_model(bundle / XGBOOST_FILE)
        self.scale_model.save_model(bundle / SCALE_FILE)
        joblib.dump(self.forest, bundle / FOREST_FILE, compress=3)
        entries = {
            "xgboost": artifact_entry(bundle, XGBOOST_FILE, "xgboost-ubj"),
            "random_forest": artifact_entry(bundle, FOREST_FILE, "sklearn-joblib"),
            "interval_scale": artifact_entry(bundle, SCALE_FILE, "xgboost-ubj"),
        }
        if self.error_model is not None:
            self.error_model.save_model(bundle / ERROR_FILE)
            entries["error_estimate"] = artifact_entry(bundle, ERROR_FILE, "xgboost-ubj")
        return entries

    @classmethod
    def load(cls, bundle: Path, card: ModelCard) -> ProfitModel:
        """Load a bundle after checking every sha256 against ``card`` (the registry's entry)
        and the card's features against the running feature code."""
        check_features(card)
        verify_bundle(bundle, card)
        booster = xgboost.Booster()
        booster.load_model(bundle / card.artifacts["xgboost"].path)
        scale = xgboost.Booster()
        scale.load_model(bundle / card.artifacts["interval_scale"].path)
        error_model = None
        if "error_estimate" in card.artifacts:
            error_model = xgboost.Booster()
            error_model.load_model(bundle / card.artifacts["error_estimate"].path)
        forest: Any = joblib.load(bundle / card.artifacts["random_forest"].path)
        # One thread: threads add the trees up in any order, which changes the last bit of
        # a prediction; a replay must reproduce predictions exactly.
        forest.n_jobs = 1
        return cls(
            xgboost_model=booster,
            forest=forest,
            scale_model=scale,
            weight=card.blend["xgboost"],
            quantile=card.intervals.quantile,
            level=card.intervals.level,
            feature_names=card.feature_names,
            error_model=error_model,
        )
