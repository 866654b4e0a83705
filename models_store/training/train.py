"""Train, evaluate and package a model from an event history (the `train` command's core).

Steps: the span, read cheaply (too short a history is refused here) → parse the log →
cutoffs and a split (by time, or by client group: ``training.splits``) → features and
labels per (client, cutoff) → tune XGBoost and Random Forest on the validation rows → fit
both on the training rows → blend weight and interval calibration on validation → every
figure on the test rows, next to the baselines (and an oracle's figures on the
same rows when the caller can compute them) → a bundle: artifacts + model card.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost
from scipy.stats import spearmanr

from features.definitions import FEATURE_NAMES
from features.state import DEFAULT_ALLOWED_LATENESS_S
from models_store.errors import TrainingDataError
from models_store.labels import MONEY_TARGETS
from models_store.model.conformal import conformal_quantile, coverage, scores
from models_store.model.error_estimate import fit_error_model
from models_store.model.profit_model import ProfitModel
from models_store.registry.card import (
    CARD_FILE,
    ErrorEstimate,
    IntervalCalibration,
    ModelCard,
    Target,
    TrainingData,
    current_feature_specs,
)
from models_store.registry.drift_reference import drift_reference
from models_store.scoring.scorer import DEFAULT_DRIVERS
from models_store.scoring.shift import training_ranges
from models_store.training.btyd_baseline import baseline_for_rows
from models_store.training.dataset import (
    Progress,
    TrainingSet,
    build_training_set,
    load_history,
    log_span,
)
from models_store.training.evaluation import (
    best_blend_weight,
    calibration_bins,
    errors_by_segment,
    mean_baseline,
    persistence_baseline,
    regression_metrics,
)
from models_store.training.splits import SplitChoice, SplitRequest, plan_split, row_roles
from models_store.training.tiers import prediction_scale_for, risk_tiers_for
from models_store.training.tuning import (
    MEDIAN,
    SearchBudget,
    forest_estimator,
    objective_for,
    search,
    xgboost_estimator,
)

MIN_TRAINING_ROWS = 50
# Features the report's errors by segment are cut on: client size and tenure.
SEGMENT_FEATURES = ("revenue_180d", "tenure_days")

# The best achievable figures on the held-out rows (the test frame of ``TrainingResult``):
# expected_r2, mae and rows at least, or None when it predicted none of them. The caller
# supplies it (the CLI, from the simulator's oracle): the training core knows no generator.
OracleComparison = Callable[[pd.DataFrame], dict[str, float] | None]


@dataclass(frozen=True)
class TrainingRequest:
    """Everything `profitstream train` was asked for."""

    name: str
    version: str
    horizon_days: int = 90
    cutoffs: str = "30d"
    target: Target = "margin_ratio"
    level: float = 0.9
    split: SplitChoice = "auto"
    validation_cutoffs: int | None = None  # None: chosen (``training.splits``)
    test_cutoffs: int | None = None
    seed: int = 7
    budget: SearchBudget = field(default_factory=SearchBudget)
    allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S
    until: float | None = None
    description: str = ""
    # Risk-tier bounds in the target's unit; None: per target (``models_store.training.tiers``).
    tier_bounds: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class TrainingResult:
    """The packaged model and what the report shows about it."""

    card: ModelCard
    bundle: Path
    test: pd.DataFrame  # per test row: actual, each model's and baseline's prediction, interval
    importance: pd.Series  # mean |SHAP| per feature on the test rows, largest first
    oracle: dict[str, float] | None  # the OracleComparison's figures, when one was given
    timings: dict[str, float]
    excluded: int  # rows without a label to learn (see ``TrainingSet.labelled``)
    test_features: np.ndarray  # the test rows' features (FEATURE_NAMES order)
    shap_values: np.ndarray  # their TreeSHAP values (XGBoost component), same shape
    baseline_note: str | None = None  # why the BG/NBD baseline is absent, for money targets
    # Other models scored on the same test rows by the caller (e.g. the champion):
    # label -> metrics, shown beside the models in the report.
    comparisons: dict[str, dict[str, float]] = field(default_factory=dict)


def _matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)


def _libraries() -> dict[str, str]:
    import joblib
    import sklearn
    import xgboost

    versions = {"python": platform.python_version(), "xgboost": xgboost.__version__,
                "scikit-learn": sklearn.__version__, "numpy": np.__version__,
                "pandas": pd.__version__, "joblib": joblib.__version__}  # fmt: skip
    with contextlib.suppress(metadata.PackageNotFoundError):
        versions["profitstream"] = metadata.version("profitstream")
    return versions


def _iso(times: list[float]) -> list[datetime]:
    return [datetime.fromtimestamp(t, UTC) for t in times]


def train(
    events: pd.DataFrame,
    request: TrainingRequest,
    out_dir: Path,
    progress: Progress | None = None,
    *,
    oracle: OracleComparison | None = None,
) -> TrainingResult:
    """Train from an event-log frame; write the bundle into a new directory under ``out_dir``.

    ``oracle``, when given, is compared on the test rows and shown beside the models.
    """
    timings: dict[str, float] = {}
    began = time.perf_counter()

    def step(name: str, done: int = 0, total: int = 1) -> None:
        if progress is not None:
            progress(name, done, total)

    horizon_s = request.horizon_days * 86_400.0
    wanted = SplitRequest(request.cutoffs, horizon_s, request.split, request.validation_cutoffs,
                          request.test_cutoffs)  # fmt: skip
    # The span needs only the first and last event times: a history too short for any
    # split is refused before the parse, which costs far more.
    bounds = log_span(events, request.until)
    if bounds is not None:
        plan_split(wanted, *bounds)
    history = load_history(events, until=request.until, progress=progress)
    split = plan_split(wanted, history.start, history.end)
    used = split.cutoffs
    dataset: TrainingSet = build_training_set(history, used, horizon_s, request.target,
                                              request.allowed_lateness_s, progress)  # fmt: skip
    timings["features_s"] = time.perf_counter() - began
    labelled = dataset.labelled
    excluded = len(dataset.frame) - len(labelled)
    roles = row_roles(split, labelled["client_id"], labelled["cutoff"])
    train_rows = labelled[roles == "train"]
    valid_rows = labelled[roles == "validation"]
    test_rows = labelled[roles == "test"]
    for role, rows in (("training", train_rows), ("validation", valid_rows), ("test", test_rows)):
        if len(rows) < MIN_TRAINING_ROWS:
            raise TrainingDataError(
                f"only {len(rows)} labelled {role} rows (need {MIN_TRAINING_ROWS}) in the "
                f"{split.kind} split: the history has too few clients with revenue in the "
                "horizon; pass more --validation-cutoffs/--test-cutoffs or a denser --cutoffs"
            )
    x_train, y_train = _matrix(train_rows), train_rows["label"].to_numpy()
    x_valid, y_valid = _matrix(valid_rows), valid_rows["label"].to_numpy()
    x_test, y_test = _matrix(test_rows), test_rows["label"].to_numpy()
    budget = request.budget

    objective = objective_for(request.target)
    metric = objective.metric
    mark = time.perf_counter()
    step("tuning XGBoost (successive halving)")
    xgb_params, xgb_valid = search("xgboost", x_train, y_train, x_valid, y_valid,
                                   request.seed, budget, objective=objective)  # fmt: skip
    step("tuning XGBoost (successive halving)", 1)
    step("tuning Random Forest (successive halving)")
    rf_params, rf_valid = search("random_forest", x_train, y_train, x_valid, y_valid,
                                 request.seed, budget, objective=objective)  # fmt: skip
    step("tuning Random Forest (successive halving)", 1)
    timings["tuning_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    step("fitting the models", 0, 3)
    boosted = xgboost_estimator(request.seed, budget.jobs, objective, **xgb_params)
    boosted.fit(x_train, y_train)
    step("fitting the models", 1, 3)
    forest = forest_estimator(request.seed, budget.jobs, budget.forest_trees, **rf_params)
    forest.fit(x_train, y_train)
    step("fitting the models", 2, 3)
    valid_boosted = boosted.predict(x_valid).astype(np.float64)
    valid_forest = forest.predict(x_valid)
    weight = best_blend_weight(y_valid, valid_boosted, valid_forest, metric=metric)
    # σ(x) learns how far off an honest prediction is: the forest's out-of-bag errors.
    oob_error = np.abs(y_train - forest.oob_prediction_)
    scale = xgboost_estimator(request.seed, budget.jobs, MEDIAN, n_estimators=300,
                              learning_rate=0.05, max_depth=4,
                              min_child_weight=20.0).fit(x_train, oob_error)  # fmt: skip
    step("fitting the models", 3, 3)
    timings["fitting_s"] = time.perf_counter() - mark
    model = ProfitModel(
        xgboost_model=boosted.get_booster(),
        forest=forest,
        scale_model=scale.get_booster(),
        weight=weight,
        quantile=0.0,
        level=request.level,
        feature_names=tuple(FEATURE_NAMES),
    )
    valid_blend = weight * valid_boosted + (1 - weight) * valid_forest
    model.quantile = conformal_quantile(
        scores(y_valid, valid_blend, model.scale(x_valid)), request.level
    )
    tiers = risk_tiers_for(request.target, valid_blend, request.tier_bounds)
    # The label-free error estimate learns on the validation rows (held out from the
    # blend's fit) and is checked on the test rows below.
    model.error_model = fit_error_model(x_valid, valid_blend, y_valid, request.seed, budget.jobs)

    step("evaluating on the test cutoffs")
    test_boosted, test_forest = model.components(x_test)
    if weight >= 1.0:
        test_forest = forest.predict(x_test)  # for the report, even when the blend skips it
    test_blend = weight * test_boosted + (1 - weight) * test_forest
    lower, upper = model.interval(x_test, test_blend)
    error_check = check_error_estimate(model, x_test, test_blend, y_test, len(valid_rows))
    train_mean = float(y_train.mean())
    persistence = persistence_baseline(test_rows["persistence"].to_numpy(), train_mean)
    predictions = {
        "blend": test_blend,
        "xgboost": test_boosted,
        "random_forest": test_forest,
        "persistence": persistence,
        "portfolio_mean": mean_baseline(y_test.size, train_mean),
    }
    baseline_note = None
    if request.target in MONEY_TARGETS:
        step("fitting the BG/NBD + Gamma-Gamma baseline")
        try:
            predictions["bg_nbd"] = baseline_for_rows(history.events, test_rows,
                                                      horizon_s, request.target)  # fmt: skip
        except TrainingDataError as exc:
            baseline_note = f"not fitted: {exc}"
    metrics = {name: regression_metrics(y_test, p) for name, p in predictions.items()}
    test_coverage = coverage(y_test, lower, upper)
    validation = {
        f"xgboost_{metric}": xgb_valid,
        f"random_forest_{metric}": rf_valid,
        "blend_mae": float(np.mean(np.abs(valid_blend - y_valid))),
        "blend_rmse": float(np.sqrt(np.mean((valid_blend - y_valid) ** 2))),
    }
    test = test_rows[["client_id", "cutoff", *SEGMENT_FEATURES]].reset_index(drop=True)
    test["actual"] = y_test
    for name, values in predictions.items():
        test[name] = values
    test["lower"], test["upper"] = lower, upper
    test["tier"] = [tiers.tier(float(value)) for value in test_blend]

    figures = oracle(test) if oracle is not None else None
    if figures is not None:
        metrics["oracle"] = {"r2": figures["expected_r2"], "mae": figures["mae"],
                             "rows": figures["rows"]}  # fmt: skip

    step("evaluating on the test cutoffs", 1)
    step("explaining (TreeSHAP)")
    contributions = model.contributions(x_test)
    importance = pd.Series(
        np.mean(np.abs(contributions[:, :-1]), axis=0), index=list(FEATURE_NAMES)
    ).sort_values(ascending=False)
    explanations = {
        "method": "xgboost native TreeSHAP (pred_contribs) of the XGBoost component",
        **shap_cost(model, x_test),
        "global_importance_top10": {k: float(v) for k, v in importance.head(10).items()},
    }
    step("explaining (TreeSHAP)", 1)
    reference = drift_reference(x_train, FEATURE_NAMES, valid_blend, contributions[:, :-1],
                                DEFAULT_DRIVERS, prediction_rows="validation rows, the blend",
                                feature_rows="training rows")  # fmt: skip

    described = {"events": history.fingerprint, "cutoffs": used, "horizon_s": horizon_s,
                 "target": request.target, "until": history.end}  # fmt: skip
    if split.kind != "time":  # a time split's fingerprint is what it was before splits had kinds
        described["split"] = split.kind
    fingerprint = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    timings["total_s"] = time.perf_counter() - began
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = Path(tempfile.mkdtemp(prefix=f"{request.name}-{request.version}-", dir=out_dir))
    artifacts = model.save(bundle)
    card = ModelCard(
        name=request.name,
        version=request.version,
        created_at=datetime.now(UTC),
        description=request.description,
        target=request.target,
        horizon_days=request.horizon_days,
        features=current_feature_specs(training_ranges(x_train, FEATURE_NAMES)),
        training_data=TrainingData(
            fingerprint=fingerprint,
            events=history.messages,
            clients=int(dataset.frame["client_id"].nunique()),
            history_start=datetime.fromtimestamp(history.start, UTC),
            history_end=datetime.fromtimestamp(history.end, UTC),
            train_cutoffs=_iso(split.train),
            validation_cutoffs=_iso(split.validation),
            test_cutoffs=_iso(split.test),
            rows={
                "train": len(train_rows),
                "validation": len(valid_rows),
                "test": len(test_rows),
                "excluded": excluded,
                "purged": int(np.sum(pd.isna(roles))),
            },
            split=split.kind,
            split_reason=split.reason,
        ),
        hyperparameters={
            "xgboost": xgb_params,
            "random_forest": {**rf_params, "n_estimators": budget.forest_trees},
            "seed": {"seed": request.seed},
        },
        blend={"xgboost": weight, "random_forest": 1.0 - weight},
        metrics=metrics,
        validation=validation,
        risk_tiers=tiers,
        prediction_scale=prediction_scale_for(request.target, valid_blend),
        objective=objective.xgboost,
        selection_metric=metric,
        intervals=IntervalCalibration(
            method="split conformal, normalised by an XGBoost model of the forest's OOB error",
            level=request.level,
            quantile=model.quantile,
            calibration_rows=len(valid_rows),
            test_coverage=test_coverage,
            test_mean_width=float(np.mean(upper - lower)),
        ),
        error_estimate=error_check,
        explanations=explanations,
        libraries=_libraries(),
        artifacts=artifacts,
        drift_reference=reference,
    )
    (bundle / CARD_FILE).write_text(card.to_json())
    return TrainingResult(card, bundle, test, importance, figures, timings, excluded,
                          x_test, contributions[:, :-1], baseline_note)  # fmt: skip


def check_error_estimate(
    model: ProfitModel,
    x_test: np.ndarray,
    test_blend: np.ndarray,
    y_test: np.ndarray,
    fitted_rows: int,
) -> ErrorEstimate:
    """The error model's estimate against the blend's realised errors on the test rows."""
    estimated = model.estimated_errors(x_test, test_blend)
    assert estimated is not None  # fitted just before
    realised = np.abs(y_test - test_blend)
    correlation = float(spearmanr(estimated, realised).statistic) if y_test.size > 2 else None
    return ErrorEstimate(
        method="direct loss estimation: XGBoost of |error| on the features and the "
        "prediction, fitted on the validation rows",
        fitted_rows=fitted_rows,
        test_rows=int(y_test.size),
        test_estimated_mae=float(np.mean(estimated)),
        test_mae=float(np.mean(realised)),
        test_correlation=None if correlation is None or np.isnan(correlation) else correlation,
    )


def shap_cost(model: ProfitModel, x: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """Measured cost of per-prediction drivers, best of ``repeats``: exact TreeSHAP per row
    in a batch of 1,000 and for a single row, and XGBoost's approximate (Saabas) path
    attribution per row in a batch, the cheaper alternative."""
    batch = x[: min(1000, len(x))]
    matrix = xgboost.DMatrix(batch)

    def best(call: Callable[[], object], rows: int) -> float:
        times = []
        for _ in range(repeats):
            mark = time.perf_counter()
            call()
            times.append((time.perf_counter() - mark) / rows)
        return min(times) * 1e6

    booster = model.xgboost_model
    return {
        "cost_us_per_row_batch": best(lambda: model.contributions(batch), len(batch)),
        "cost_us_single_row": best(lambda: model.contributions(batch[:1]), 1),
        "approx_cost_us_per_row_batch": best(
            lambda: booster.predict(matrix, pred_contribs=True, approx_contribs=True), len(batch)
        ),
    }


def coverage_by_cutoff(test: pd.DataFrame) -> dict[str, float]:
    """Interval coverage of each test cutoff (a drifting portfolio shows here first)."""
    result = {}
    for cutoff in sorted(test["cutoff"].unique()):
        rows = test[test["cutoff"] == cutoff]
        day = datetime.fromtimestamp(float(cutoff), UTC).date().isoformat()
        result[day] = coverage(rows["actual"].to_numpy(), rows["lower"].to_numpy(),
                               rows["upper"].to_numpy())  # fmt: skip
    return result


def describe(result: TrainingResult) -> dict[str, Any]:
    """The JSON report."""
    return {
        "model": result.card.ref,
        "bundle": str(result.bundle),
        "metrics": result.card.metrics,
        "oracle": result.oracle,
        "intervals": result.card.intervals.model_dump(mode="json"),
        "blend": result.card.blend,
        "hyperparameters": result.card.hyperparameters,
        "rows": result.card.training_data.rows,
        "split": {
            "kind": result.card.training_data.split,
            "reason": result.card.training_data.split_reason,
        },
        "explanations": result.card.explanations,
        "timings_s": result.timings,
        "coverage_by_cutoff": coverage_by_cutoff(result.test),
        "objective": {
            "xgboost": result.card.objective,
            "selection_metric": result.card.selection_metric,
        },
        "risk_tiers": result.card.risk_tiers.model_dump(mode="json"),
        "prediction_scale": result.card.prediction_scale,
        "baseline_note": result.baseline_note,
        "comparisons": result.comparisons,
        "calibration_deciles": calibration_bins(
            result.test["actual"].to_numpy(), result.test["blend"].to_numpy()
        ).to_dict(orient="records"),
        "errors_by_segment": {
            name: table.to_dict(orient="records") for name, table in segment_tables(result).items()
        },
    }


def segment_tables(result: TrainingResult) -> dict[str, pd.DataFrame]:
    """The blend's MAE and bias on the test rows by client size (quartiles of revenue in
    the 180 days before), tenure and predicted risk tier."""
    test = result.test
    actual, predicted = test["actual"].to_numpy(), test["blend"].to_numpy()
    # Test splits hold at least MIN_TRAINING_ROWS rows: four quarters always exist.
    size = pd.qcut(test["revenue_180d"].rank(method="first"), q=4,
                   labels=["smallest quarter", "second", "third", "largest quarter"])  # fmt: skip
    tenure = pd.cut(test["tenure_days"], [-np.inf, 90, 365, 730, np.inf],
                    labels=["< 90 days", "90 days - 1 year", "1-2 years", "> 2 years"])  # fmt: skip
    return {
        "size": errors_by_segment(actual, predicted, pd.Series(size)),
        "tenure": errors_by_segment(actual, predicted, pd.Series(tenure)),
        "tier": errors_by_segment(actual, predicted, test["tier"]),
    }
