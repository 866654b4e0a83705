"""A label-free estimate of the model's error: direct loss estimation (DLE).

Labels arrive a horizon (90 days) after a prediction; what the model's error is on
today's traffic must be guessed before that. At training time a small XGBoost model learns
|y − ŷ| from the features and the prediction ŷ, on held-out rows the blend was not fitted
on (the validation rows); the test rows check it (the card's ``error_estimate``). The
stream then estimates each scored client's |error|, and their mean is the estimated MAE of
the current traffic (``models_store.monitoring.accuracy``), in the target's unit. It is
fitted for the conditional mean (squared error), so the mean of the estimates estimates
the MAE. Like NannyML's DLE, it assumes that what makes a client hard to predict stays the
same (no concept shift): it sees covariate shift, not a changed relation.
"""

from __future__ import annotations

import numpy as np
import xgboost

ERROR_MODEL_PARAMS = {
    "objective": "reg:squarederror",
    "tree_method": "hist",
    "n_estimators": 200,
    "learning_rate": 0.05,
    "max_depth": 3,
    "min_child_weight": 20.0,
    "subsample": 0.8,
}


def error_inputs(features: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The error model's input: the feature columns, then the prediction."""
    return np.column_stack([features, np.asarray(predicted, dtype=np.float64)])


def fit_error_model(
    features: np.ndarray, predicted: np.ndarray, actual: np.ndarray, seed: int, jobs: int
) -> xgboost.Booster:
    """Fit |actual − predicted| on held-out rows (never the rows ŷ was fitted on: their
    errors are too small)."""
    target = np.abs(np.asarray(actual, dtype=np.float64) - predicted)
    model = xgboost.XGBRegressor(random_state=seed, n_jobs=jobs, **ERROR_MODEL_PARAMS)
    model.fit(error_inputs(features, predicted), target)
    return model.get_booster()


def estimate_errors(
    model: xgboost.Booster, features: np.ndarray, predicted: np.ndarray
) -> np.ndarray:
    """Estimated |error| per row (never below 0)."""
    raw = model.inplace_predict(error_inputs(features, predicted))
    return np.maximum(np.asarray(raw, dtype=np.float64), 0.0)
