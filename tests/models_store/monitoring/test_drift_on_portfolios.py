"""The drift code on simulated portfolios, offline: windows of an unshifted portfolio's rows
raise (almost) no feature over the alert threshold, and windows after a price change name
the price features (pure: the offline feature builder, no broker).

The reference is half of a portfolio's clients at the training cutoffs; the windows are
the other half's rows at the same cutoffs, shuffled into batches of the size the worker
needs before it gives figures, unshifted and with every price doubled from day 60.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from features.definitions import FEATURE_NAMES
from features.simulation.messages import SimulatedMessage, history_frame, simulated_messages
from features.simulation.portfolio import simulate
from models_store.monitoring.window import DriftLayout, DriftSummary, DriftWindow
from models_store.registry.drift_reference import drift_reference
from models_store.training.dataset import build_training_set, load_history
from tests.services.event_log import repriced

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
DAY = 86_400.0
CUTOFFS = [START + day * DAY for day in range(120, 210, 5)]  # 18 cutoffs
CLIENTS = 1_200  # half the reference, half the windows
WINDOW_ROWS = 500  # PROFITSTREAM_DRIFT_MIN_ROWS' default
ALERT_PSI = 0.2  # ProfitstreamFeatureDrift's threshold
# Doubled prices move the margin's ratios most; revenue itself spreads over decades of
# client size, so doubling it moves it about a decile (PSI ~0.3); contract values change
# only at renewals, none of which fall after the change here.
PRICE_FEATURES = {"cost_to_revenue_30d", "realised_margin_90d", "effective_hourly_rate_90d"}


def _rows(messages: list[SimulatedMessage]) -> np.ndarray:
    frame = build_training_set(load_history(history_frame(messages)), CUTOFFS, 90 * DAY).frame
    return frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)


def _windows(layout: DriftLayout, rows: np.ndarray, seed: int) -> list[DriftSummary]:
    order = np.random.default_rng(seed).permutation(len(rows))
    summaries = []
    for start in range(0, len(rows) - WINDOW_ROWS + 1, WINDOW_ROWS):
        window = DriftWindow(layout, days=7)
        batch = rows[order[start : start + WINDOW_ROWS]]
        window.add_scored(np.full(len(batch), CUTOFFS[-1]), batch, batch[:, 0])
        summaries.append(window.summary())
    return summaries


@pytest.fixture(scope="module")
def halves() -> tuple[DriftLayout, list[SimulatedMessage]]:
    messages = simulated_messages(simulate(CLIENTS, 7, seed=31, start=START))
    half = CLIENTS // 2
    reference_half = [m for m in messages if int(m.key.decode().split("-")[1]) < half]
    other_half = [m for m in messages if int(m.key.decode().split("-")[1]) >= half]
    rows = _rows(reference_half)
    reference = drift_reference(rows, FEATURE_NAMES, rows[:, 0], np.zeros_like(rows), 5)
    return DriftLayout.of(reference, FEATURE_NAMES), other_half


def test_an_unshifted_portfolio_seldom_raises_a_feature_over_the_threshold(
    halves: tuple[DriftLayout, list[SimulatedMessage]],
) -> None:
    layout, messages = halves
    summaries = _windows(layout, _rows(messages), seed=1)
    alarms = [s for s in summaries if s.max_psi > ALERT_PSI]
    worst = sorted(((round(s.max_psi, 3), s.features[0].name) for s in summaries), reverse=True)
    median = np.median([s.max_psi for s in summaries])
    print(f"unshifted: {len(alarms)} of {len(summaries)} windows over PSI {ALERT_PSI}; "
          f"median max PSI {median:.3f}; worst {worst[:3]}")  # fmt: skip
    assert len(summaries) >= 20
    assert len(alarms) / len(summaries) <= 0.05


def test_every_window_after_a_price_change_names_the_price_features(
    halves: tuple[DriftLayout, list[SimulatedMessage]],
) -> None:
    layout, messages = halves
    summaries = _windows(layout, _rows(repriced(messages, 2.0, START + 60 * DAY)), seed=2)
    assert len(summaries) >= 20
    for summary in summaries:
        assert summary.max_psi > ALERT_PSI
        assert set(summary.drifted()) >= PRICE_FEATURES, summary.drifted()
    print(
        f"shifted: every one of {len(summaries)} windows names {sorted(PRICE_FEATURES)}; "
        f"e.g. {summaries[0].drifted()[:8]}"
    )
