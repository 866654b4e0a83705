"""Labels and the training set (pure): exact labels, point-in-time features, no leakage."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from features.definitions import FEATURE_NAMES
from features.offline import build_features
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.oracle import HORIZON_PERIODS, horizon_margin
from features.simulation.portfolio import PERIOD_S, simulate
from models_store.errors import TrainingDataError
from models_store.labels import margin_ratio
from models_store.training.dataset import (
    AS_OF_BEFORE_CUTOFF_S,
    build_training_set,
    cutoff_schedule,
    load_history,
    parse_duration_days,
)

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
HORIZON_S = HORIZON_PERIODS * PERIOD_S


@pytest.fixture(scope="module")
def portfolio_and_log() -> tuple[object, pd.DataFrame]:
    portfolio = simulate(40, 10, seed=9, start=START)
    messages = simulated_messages(portfolio, malformed=0.02, duplicate=0.03, late=0.03)
    return portfolio, history_frame(messages)


@pytest.fixture(scope="module")
def training_rows(
    portfolio_and_log: tuple[object, pd.DataFrame],
) -> tuple[list[float], pd.DataFrame]:
    """The cutoffs of the default schedule and the training set's rows over them."""
    history = load_history(portfolio_and_log[1])
    cutoffs = cutoff_schedule("30d", history, HORIZON_S)
    return cutoffs, build_training_set(history, cutoffs, HORIZON_S).frame


def test_labels_equal_the_simulators_drawn_margins(
    portfolio_and_log: tuple[object, pd.DataFrame],
    training_rows: tuple[list[float], pd.DataFrame],
) -> None:
    portfolio, _ = portfolio_and_log
    cutoffs, rows = training_rows
    assert len(cutoffs) == 10 - HORIZON_PERIODS  # every period boundary with a whole horizon
    frame = rows.set_index(["client_id", "cutoff"])
    compared = 0
    for client_id, _, draws, _ in portfolio.clients:  # type: ignore[attr-defined]
        for k in range(1, 10 - HORIZON_PERIODS + 1):
            truth = horizon_margin(draws[k : k + HORIZON_PERIODS])
            key = (client_id, START + k * PERIOD_S)
            if key not in frame.index:
                assert math.isnan(truth)
                continue
            label = frame.loc[key, "label"]
            if math.isnan(truth):
                assert math.isnan(label)  # the no-revenue rule, never a division by zero
            else:
                assert label == pytest.approx(truth, rel=1e-9, abs=1e-12)
                compared += 1
    assert compared > 150


def test_features_at_each_cutoff_are_the_offline_builders_with_late_and_duplicate_events(
    portfolio_and_log: tuple[object, pd.DataFrame],
    training_rows: tuple[list[float], pd.DataFrame],
) -> None:
    _, log = portfolio_and_log
    cutoffs, frame = training_rows
    for cutoff in cutoffs:
        mine = frame[frame["cutoff"] == cutoff].set_index("client_id")[list(FEATURE_NAMES)]
        offline = build_features(log, cutoff - AS_OF_BEFORE_CUTOFF_S)
        pd.testing.assert_frame_equal(offline, mine, check_exact=True, check_names=False)


def test_no_feature_uses_an_event_after_its_cutoff(
    portfolio_and_log: tuple[object, pd.DataFrame],
    training_rows: tuple[list[float], pd.DataFrame],
) -> None:
    """Rows of cutoff t are identical when every event after t is removed from the log
    (and when the events after t are shuffled in time), so nothing after t leaks in."""
    _, log = portfolio_and_log
    history = load_history(log)
    cutoffs, full = training_rows
    rng = np.random.default_rng(0)
    for cutoff in (cutoffs[0], cutoffs[len(cutoffs) // 2]):
        as_of = cutoff - AS_OF_BEFORE_CUTOFF_S
        before = log[log["event_time"] <= as_of]
        after = log[log["event_time"] > as_of].copy()
        # A different future: same messages, arrival order scrambled, half of them dropped.
        after = after.sample(frac=0.5, random_state=1)
        after["arrival"] = rng.permutation(after["arrival"].to_numpy()) + len(log)
        changed = pd.concat([before, after], ignore_index=True)
        other = build_training_set(
            load_history(changed, until=history.end), [cutoff], HORIZON_S
        ).frame
        expected = full[full["cutoff"] == cutoff].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            expected[["client_id", *FEATURE_NAMES]], other[["client_id", *FEATURE_NAMES]],
            check_exact=True,
        )  # fmt: skip


def test_margin_ratio_rule() -> None:
    assert margin_ratio(100.0, 30.0) == pytest.approx(0.7)
    assert math.isnan(margin_ratio(0.0, 30.0))
    assert margin_ratio(100.0, 250.0) == pytest.approx(-1.5)


def test_schedules_and_their_errors(portfolio_and_log: tuple[object, pd.DataFrame]) -> None:
    _, log = portfolio_and_log
    history = load_history(log)
    monthly = cutoff_schedule("monthly", history, 90 * 86_400.0)
    assert [datetime.fromtimestamp(t, UTC).day for t in monthly] == [1] * len(monthly)
    assert all(t + 90 * 86_400 <= history.end for t in monthly)
    explicit = cutoff_schedule("2024-03-01, 2024-02-01", history, 90 * 86_400.0)
    assert explicit == sorted(explicit)
    assert len(explicit) == 2
    with pytest.raises(TrainingDataError, match="outside the usable range"):
        cutoff_schedule("2024-09-20", history, 90 * 86_400.0)
    with pytest.raises(TrainingDataError, match="not a YYYY-MM-DD"):
        cutoff_schedule("2024-13-01", history, 90 * 86_400.0)
    with pytest.raises(TrainingDataError, match="shorter --horizon"):
        cutoff_schedule("30d", history, 400 * 86_400.0)
    with pytest.raises(TrainingDataError, match="number of days"):
        parse_duration_days("three months")
    assert parse_duration_days("90d") == 90


def test_an_empty_or_all_invalid_history_is_one_clear_error() -> None:
    empty = pd.DataFrame({"arrival": [], "stream": [], "key": [], "value": []})
    with pytest.raises(TrainingDataError, match="no valid events"):
        load_history(empty)
    garbage = pd.DataFrame(
        {"arrival": [0], "stream": ["billing"], "key": [b"c"], "value": [b"{not json"]}
    )
    with pytest.raises(TrainingDataError, match="no valid events"):
        load_history(garbage)
