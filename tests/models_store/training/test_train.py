"""Training end to end on a small simulated portfolio (pure: no broker, no Redis)."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.definitions import FEATURE_NAMES
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.oracle import oracle_rows
from features.simulation.portfolio import simulate
from models_store.errors import ArtifactIntegrityError, FeatureMismatchError, TrainingDataError
from models_store.model.profit_model import ProfitModel
from models_store.registry.bundle import verify_bundle
from models_store.registry.card import FeatureSpec
from models_store.training.report import write_report
from models_store.training.train import TrainingRequest, TrainingResult, train
from models_store.training.tuning import SearchBudget
from streams.cli.train import oracle_comparison

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
QUICK = SearchBudget(xgboost_candidates=4, forest_candidates=2, forest_trees=30)


def _request(**changes: object) -> TrainingRequest:
    base = TrainingRequest(name="profitability", version="1.0.0", validation_cutoffs=2,
                           test_cutoffs=2, budget=QUICK)  # fmt: skip
    return TrainingRequest(**{**base.__dict__, **changes})


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, pd.DataFrame]:
    portfolio = simulate(150, 16, seed=3, start=START)
    log = history_frame(simulated_messages(portfolio, malformed=0.01, duplicate=0.01, late=0.01))
    return log, oracle_rows(portfolio, draws_per_cutoff=4)


@pytest.fixture(scope="module")
def trained(
    simulated: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> TrainingResult:
    log, oracle = simulated
    return train(log, _request(), tmp_path_factory.mktemp("bundles"),
                 oracle=oracle_comparison(oracle))  # fmt: skip


def _test_matrix(result: TrainingResult, log: pd.DataFrame) -> np.ndarray:
    from models_store.training.dataset import build_training_set, load_history

    history = load_history(log)
    cutoffs = sorted(result.test["cutoff"].unique())
    frame = build_training_set(history, cutoffs, 90 * 86_400.0).frame
    frame = frame[frame["label"].notna()].reset_index(drop=True)
    assert list(frame["client_id"]) == list(result.test["client_id"])
    return frame[list(FEATURE_NAMES)].to_numpy()


def test_the_bundle_is_complete_and_loads_to_the_same_predictions(
    trained: TrainingResult, simulated: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    card = verify_bundle(trained.bundle)
    assert card.feature_names == FEATURE_NAMES
    assert card.target == "margin_ratio"
    assert card.horizon_days == 90
    assert set(card.artifacts) == {"xgboost", "random_forest", "interval_scale", "error_estimate"}
    assert card.artifacts["xgboost"].format == "xgboost-ubj"
    assert card.blend["xgboost"] + card.blend["random_forest"] == pytest.approx(1.0)
    assert len(card.training_data.fingerprint) == 64
    assert card.training_data.test_cutoffs[-1] > card.training_data.validation_cutoffs[-1]
    assert {"xgboost", "scikit-learn", "python"} <= set(card.libraries)
    assert {"blend", "xgboost", "random_forest", "persistence", "portfolio_mean"} <= set(
        card.metrics
    )
    model = ProfitModel.load(trained.bundle, card)
    x = _test_matrix(trained, simulated[0])
    predicted = model.predict(x)
    np.testing.assert_allclose(predicted, trained.test["blend"], rtol=1e-12, atol=1e-12)
    lower, upper = model.interval(x, predicted)
    np.testing.assert_allclose(lower, trained.test["lower"], rtol=1e-12, atol=1e-12)
    covered = np.mean((trained.test["actual"] >= lower) & (trained.test["actual"] <= upper))
    assert covered == pytest.approx(card.intervals.test_coverage)
    # The label-free error estimate loads with the bundle and says what the card checked.
    estimated = model.estimated_errors(x, predicted)
    assert estimated is not None
    assert card.error_estimate is not None
    assert (estimated >= 0).all()
    assert float(np.mean(estimated)) == pytest.approx(card.error_estimate.test_estimated_mae)
    realised = np.abs(trained.test["actual"] - predicted)
    assert float(np.mean(realised)) == pytest.approx(card.error_estimate.test_mae)
    assert card.error_estimate.test_mae == pytest.approx(card.metrics["blend"]["mae"])
    assert card.error_estimate.fitted_rows == card.training_data.rows["validation"]
    contributions = model.contributions(x[:5])
    # TreeSHAP is exact: contributions plus the bias add up to the XGBoost prediction.
    boosted, _ = model.components(x[:5])
    np.testing.assert_allclose(contributions.sum(axis=1), boosted, rtol=1e-4, atol=1e-4)


def test_the_model_learns_and_the_labels_match_the_oracles(trained: TrainingResult) -> None:
    metrics = trained.card.metrics
    assert metrics["blend"]["r2"] > metrics["portfolio_mean"]["r2"] + 0.1
    assert metrics["blend"]["mae"] < metrics["persistence"]["mae"]
    assert trained.oracle is not None
    assert trained.oracle["label_max_abs_difference"] < 1e-9
    assert 0.5 < trained.card.intervals.test_coverage <= 1.0  # type: ignore[operator]


def test_the_same_seed_trains_the_same_model(
    trained: TrainingResult,
    simulated: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
) -> None:
    again = train(simulated[0], _request(), tmp_path)
    assert again.card.training_data.fingerprint == trained.card.training_data.fingerprint
    assert again.card.hyperparameters == trained.card.hyperparameters
    # Equal up to the last bit or two: threads may sum a forest's trees in another order.
    np.testing.assert_allclose(again.test["blend"], trained.test["blend"], rtol=1e-9, atol=1e-12)


def test_a_tampered_forest_is_refused_before_it_is_unpickled(
    trained: TrainingResult, tmp_path: Path
) -> None:
    card = verify_bundle(trained.bundle)
    bundle = tmp_path / "bundle"
    shutil.copytree(trained.bundle, bundle)
    marker = tmp_path / "unpickled"
    # A pickle that runs code when loaded: it would create the marker file.
    payload = pickle.dumps(_Touch(str(marker)))
    (bundle / card.artifacts["random_forest"].path).write_bytes(payload)
    with pytest.raises(ArtifactIntegrityError, match="changed or corrupted"):
        ProfitModel.load(bundle, card)
    assert not marker.exists()
    shutil.copy(trained.bundle / card.artifacts["random_forest"].path, bundle)
    (bundle / card.artifacts["xgboost"].path).unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        ProfitModel.load(bundle, card)


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_features_that_differ_from_the_running_code_are_refused(trained: TrainingResult) -> None:
    card = verify_bundle(trained.bundle)
    renamed = [FeatureSpec(name="revenue_45d"), *card.features[1:]]
    with pytest.raises(FeatureMismatchError, match="revenue_30d"):
        ProfitModel.load(trained.bundle, card.model_copy(update={"features": renamed}))
    swapped = [card.features[1], card.features[0], *card.features[2:]]
    with pytest.raises(FeatureMismatchError, match="another order"):
        ProfitModel.load(trained.bundle, card.model_copy(update={"features": swapped}))


def test_the_report_has_json_html_and_plots(trained: TrainingResult, tmp_path: Path) -> None:
    files = write_report(trained, tmp_path / "report")
    for key in ("json", "html", "predicted_vs_actual", "residuals", "importance", "calibration",
                "beeswarm"):  # fmt: skip
        assert files[key].stat().st_size > 500, key
    page = files["html"].read_text()
    assert page.count("data:image/png;base64,") == 5
    assert "persistence" in page
    assert "Errors by tenure" in page
    report = json.loads(files["json"].read_text())
    assert len(report["calibration_deciles"]) == 10
    assert {"size", "tenure", "tier"} == set(report["errors_by_segment"])
    assert report["risk_tiers"]["bounds"] == [0.0, 0.25, 0.5]
    blend = report["metrics"]["blend"]
    assert -1.0 < blend["spearman"] <= 1.0
    assert "total_error" in blend


def test_too_short_a_history_is_refused_before_it_is_parsed_with_an_option_that_fits(
    simulated: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    log = simulated[0]
    short = log[log["event_time"] < START + 200 * 86_400]
    steps: list[str] = []
    with pytest.raises(TrainingDataError) as refused:
        train(short, _request(split="time"), tmp_path,
              lambda step, done, total: steps.append(step))  # fmt: skip
    message = str(refused.value)
    assert message.startswith("the history spans 200 days (2024-01-01 to 2024-07-19), too "
                              "short for a 90-day horizon")  # fmt: skip
    assert "a time split needs" in message
    assert "parsing events" not in steps  # the span alone decided: no event was parsed
    with pytest.raises(TrainingDataError, match="900-day horizon"):
        train(log, _request(horizon_days=900), tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written
    horizon = re.search(r"--horizon ([0-9]+)d", message)
    assert horizon is not None
    result = train(short, _request(split="time", horizon_days=int(horizon.group(1))), tmp_path)
    assert result.card.training_data.split == "time"
    assert result.card.horizon_days == int(horizon.group(1))


def test_the_absolute_margin_keeps_every_row_and_is_fitted_for_its_mean(
    simulated: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    result = train(simulated[0], _request(target="margin_abs"), tmp_path)
    card = result.card
    assert card.target == "margin_abs"
    # No row is chosen by what happened in its horizon: gone clients stay, at 0.
    assert card.training_data.rows["excluded"] == 0
    assert (result.test["actual"] == 0).any()
    # Money is fitted for its mean and judged by RMSE; tiers are portfolio quantiles.
    assert (card.objective, card.selection_metric) == ("reg:squarederror", "rmse")
    assert "blend_rmse" in card.validation
    assert card.risk_tiers.basis == "portfolio_quantiles"
    assert card.prediction_scale > 1.0
    tiers = result.test["tier"].value_counts(normalize=True)
    assert tiers.max() < 0.9  # not everyone "strong", as ratio thresholds on money made it
    blend = card.metrics["blend"]
    assert blend["r2"] > card.metrics["portfolio_mean"]["r2"]
    # The mean adds up: the total is near the actual one (loosely on this small portfolio;
    # benchmarks/portfolio_kinds.py measures it on 1,000 contract clients: within 3%).
    assert abs(blend["total_error"]) < 0.25
    assert "bg_nbd" in card.metrics or result.baseline_note is not None
    # Every feature's training range is in the card.
    assert all(spec.training_min is not None for spec in card.features if spec.name ==
               "tenure_days")  # fmt: skip
