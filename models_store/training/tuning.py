"""Budgeted hyper-parameter search for the two model families (fixed seeds).

Everything is chosen by the metric of the target's loss (``Objective``): absolute error
for the margin ratio — ratios are heavy-tailed (a client with little revenue in the
horizon can sit at −150%), squared error would let a few such clients decide for all, and
the conditional median is what a ratio's reader wants; squared error for money — a
median of zero-inflated money is 0 for most clients and its total is far short of the
portfolio's, while the conditional mean adds up to the expected total.

Successive halving over random candidates (scikit-learn's ``HalvingRandomSearchCV``):
many candidates are tried on a fraction of the training rows and only the best third
goes on to three times the rows. Candidates are judged on the validation cutoffs only
(a predefined split), so tuning never sees the test period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import loguniform, randint, uniform
from sklearn.ensemble import RandomForestRegressor
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingRandomSearchCV, PredefinedSplit
from xgboost import XGBRegressor

from models_store.labels import MONEY_TARGETS

XGBOOST_SPACE: dict[str, Any] = {
    # Depth and tree count also bound the cost of per-prediction TreeSHAP drivers
    # (trees × leaves × depth²): depth <= 5 keeps it near 100 µs per row.
    "n_estimators": randint(150, 600),
    "learning_rate": loguniform(0.02, 0.2),
    "max_depth": randint(3, 6),
    "min_child_weight": loguniform(1.0, 50.0),
    "subsample": uniform(0.6, 0.4),
    "colsample_bytree": uniform(0.4, 0.6),
    "reg_lambda": loguniform(0.1, 20.0),
    "gamma": loguniform(1e-4, 0.05),
}
FOREST_SPACE: dict[str, Any] = {
    "min_samples_leaf": [3, 5, 10, 20, 40],
    "max_features": [0.2, 0.33, 0.5, 0.7],
    "max_depth": [None, 14, 20],
    "max_samples": [0.5, 0.7, None],
}


@dataclass(frozen=True)
class Objective:
    """The loss a target is fitted with and the metric every choice is made on."""

    xgboost: str  # XGBoost's objective
    metric: Literal["mae", "rmse"]
    scoring: str  # scikit-learn's scorer of the metric
    meaning: str  # what the prediction is, for the report


MEDIAN = Objective(
    "reg:absoluteerror", "mae", "neg_mean_absolute_error", "absolute error: the conditional median"
)
MEAN = Objective(
    "reg:squarederror", "rmse", "neg_root_mean_squared_error",
    "squared error: the conditional mean, whose sum is the expected total",
)  # fmt: skip


def objective_for(target: str) -> Objective:
    """The margin ratio's median; money's mean (see the module docstring)."""
    return MEAN if target in MONEY_TARGETS else MEDIAN


@dataclass(frozen=True)
class SearchBudget:
    """How much searching to do: candidates in the first round, rows to start from."""

    xgboost_candidates: int = 24
    forest_candidates: int = 12
    forest_trees: int = 200
    factor: int = 3
    jobs: int = 2


def xgboost_estimator(
    seed: int, jobs: int, objective: Objective = MEDIAN, **params: Any
) -> XGBRegressor:
    """The XGBoost family with its fixed settings (for the ratio, absolute error gave
    better held-out R² and MAE than squared error on the simulator)."""
    settings: dict[str, Any] = {"objective": objective.xgboost, "tree_method": "hist", **params}
    return XGBRegressor(random_state=seed, n_jobs=jobs, **settings)


def forest_estimator(seed: int, jobs: int, trees: int, **params: Any) -> RandomForestRegressor:
    """The Random Forest family with its fixed settings."""
    return RandomForestRegressor(n_estimators=trees, random_state=seed, n_jobs=jobs,
                                 oob_score=True, **params)  # fmt: skip


def search(
    family: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    seed: int,
    budget: SearchBudget,
    progress: Callable[[int], None] | None = None,
    objective: Objective = MEDIAN,
) -> tuple[dict[str, Any], float]:
    """Best parameters of ``family`` ("xgboost" or "random_forest") and their validation
    error in the objective's metric."""
    x = np.vstack([x_train, x_valid])
    y = np.concatenate([y_train, y_valid])
    fold = np.concatenate([np.full(y_train.size, -1), np.zeros(y_valid.size, dtype=int)])
    if family == "xgboost":
        # One thread per fit, two fits at a time: small trees parallelise badly inside.
        estimator: Any = xgboost_estimator(seed, 1, objective)
        space, candidates, jobs = XGBOOST_SPACE, budget.xgboost_candidates, budget.jobs
    else:
        estimator = forest_estimator(seed, 1, budget.forest_trees)
        space, candidates, jobs = FOREST_SPACE, budget.forest_candidates, budget.jobs
    searcher = HalvingRandomSearchCV(
        estimator,
        space,
        n_candidates=candidates,
        factor=budget.factor,
        resource="n_samples",
        # The first round sees a ninth of the rows (at least 500, for small data a third).
        min_resources=max(min(500, y.size // budget.factor), y_train.size // budget.factor**2),
        cv=PredefinedSplit(fold),
        scoring=objective.scoring,
        refit=False,
        random_state=seed,
        n_jobs=jobs,
        error_score="raise",
    )
    searcher.fit(x, y)
    if progress is not None:
        progress(1)
    best = dict(searcher.best_params_)
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in best.items()}, float(
        -searcher.best_score_
    )
