"""The label-free error estimate tracks the realised MAE on later traffic (offline, over the
simulator, with the stream's own code: the bundle's scorer, the estimate window, the
outcomes' errors in the model's target)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from features.definitions import FEATURE_NAMES
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.portfolio import simulate
from models_store.experiments.records import OutcomeRecord
from models_store.model.profit_model import ProfitModel
from models_store.monitoring.accuracy import (
    EstimateWindow,
    closed_outcome,
    counts_in_estimate,
    summarise,
)
from models_store.registry.card import Target
from models_store.scoring.scorer import Scorer
from models_store.training.dataset import build_training_set, load_history
from models_store.training.train import TrainingRequest, train
from models_store.training.tuning import SearchBudget

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
DAY = 86_400.0
MONTH = 30 * DAY
QUICK = SearchBudget(xgboost_candidates=4, forest_candidates=2, forest_trees=30)
TRAINED_MONTHS = 16  # the model learns from these; later cutoffs are "current traffic"
MONTHS = 26
# Each later cutoff is one window of about 120-150 outcomes (ratio) or 300 (money). The
# realised MAE of such a window is itself noisy (heavy-tailed errors: ±15% at one standard
# error), so each window's estimate must lie within 40% of it, and over the windows pooled
# within 20%.
WINDOW_TOLERANCE = 0.40
POOLED_TOLERANCE = 0.20


def later_windows(target: Target, tmp_path: Path) -> list[tuple[float, float, int]]:
    """(estimated MAE on the window's traffic, realised MAE, outcomes) per monthly cutoff
    after training."""
    portfolio = simulate(300, MONTHS, seed=11, start=START)
    log = history_frame(simulated_messages(portfolio))
    until = START + TRAINED_MONTHS * MONTH
    request = TrainingRequest(name="p", version="1.0.0", target=target, until=until,
                              validation_cutoffs=2, test_cutoffs=2, budget=QUICK)  # fmt: skip
    result = train(log, request, tmp_path)
    scorer = Scorer(result.card, ProfitModel.load(result.bundle, result.card), drivers=0)
    horizon = 90 * DAY
    cutoffs = [
        until + k * MONTH
        for k in range(1, 20)
        if until + k * MONTH + horizon <= START + MONTHS * MONTH
    ]
    frame = build_training_set(load_history(log), cutoffs, horizon, target).frame
    windows = []
    for cutoff in cutoffs:
        rows = frame[frame["cutoff"] == cutoff].reset_index(drop=True)
        scores = scorer.predict(rows[list(FEATURE_NAMES)].to_numpy())
        estimate = EstimateWindow(span_s=DAY, max_clients=100_000)
        closed = []
        persistence = rows["realised_margin_90d"].to_numpy()
        for client, score, revenue, cost, past in zip(
            rows["client_id"],
            scores,
            rows["horizon_revenue"],
            rows["horizon_cost"],
            persistence,
            strict=True,
        ):
            assert score.estimated_error is not None
            if counts_in_estimate(target, past):
                estimate.add(client, cutoff, score.estimated_error)
            record = OutcomeRecord(
                prediction_id=f"{client}@{cutoff}",
                model=scorer.ref,
                experiment_id=None,
                arm=None,
                features_as_of=cutoff,
                horizon_end=cutoff + horizon,
                predicted=score.margin,
                lower=score.lower,
                upper=score.upper,
                persistence=None,
                revenue=float(revenue),
                cost=float(cost),
                realised=None,
                target=target,
                estimated_error=score.estimated_error,
            )
            found = closed_outcome(record, target)
            if found is not None:
                closed.append(found)
        realised = summarise(closed)
        assert realised is not None
        _, estimated = estimate.mean()
        assert estimated is not None
        windows.append((estimated, realised.mae, realised.n))
    return windows


@pytest.mark.parametrize("target", ["margin_ratio", "margin_abs"])
def test_the_estimate_tracks_the_realised_mae_once_outcomes_close(
    target: Target, tmp_path: Path
) -> None:
    windows = later_windows(target, tmp_path)
    ratios = np.array([est / real for est, real, _ in windows])
    weights = np.array([n for _, _, n in windows], dtype=float)
    pooled = float(
        np.average([est for est, _, _ in windows], weights=weights)
        / np.average([real for _, real, _ in windows], weights=weights)
    )
    print(
        f"\n{target}: estimated/realised MAE per window {ratios.round(3).tolist()}, "
        f"pooled {pooled:.3f} over {int(weights.sum())} outcomes"
    )
    assert len(windows) >= 5
    assert np.all(np.abs(ratios - 1) <= WINDOW_TOLERANCE), ratios
    assert abs(pooled - 1) <= POOLED_TOLERANCE, pooled
