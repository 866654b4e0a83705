"""Labels and the training set (pure): exact labels, point-in-time features, no leakage."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from features.as_of import before_day
from features.definitions import FEATURE_NAMES
from features.offline import build_features
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.oracle import HORIZON_PERIODS, horizon_margin
from features.simulation.portfolio import PERIOD_S, simulate
from models_store.errors import TrainingDataError
from models_store.labels import margin_ratio
from models_store.training.cutoffs import parse_duration_days
from models_store.training.dataset import (
    build_training_set,
    cutoff_schedule,
    load_history,
)
from models_store.training.splits import client_group, client_split, row_roles, time_split

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
        offline = build_features(log, before_day(cutoff))
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
        as_of = before_day(cutoff)
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


@pytest.mark.parametrize("kind", ["time", "clients"])
def test_what_fits_does_not_change_when_the_outcomes_it_is_judged_by_are_dropped(
    kind: str,
    portfolio_and_log: tuple[object, pd.DataFrame],
    training_rows: tuple[list[float], pd.DataFrame],
) -> None:
    """Each split's fitting rows (features and labels) are identical when every event a
    judged row's label could hold is removed: after the first validation cutoff for the
    training rows of a time split (after the first test cutoff for its validation rows);
    for a client split, each validation or test client's events after its group's first
    judged cutoff. So no judged outcome reaches what the models learn from."""
    _, log = portfolio_and_log
    history = load_history(log)
    cutoffs, full = training_rows
    plan = (time_split if kind == "time" else client_split)(cutoffs, HORIZON_S, None, None)
    assert plan is not None
    roles = row_roles(plan, full["client_id"], full["cutoff"])
    clients = pd.Series([key.decode() for key in log["key"]], index=log.index)
    groups = clients.map(client_group)
    checks = [("train", plan.validation[0]), ("validation", plan.test[0])]
    for role, judged_from in checks if kind == "time" else checks[:1]:
        if kind == "time":
            future = log["event_time"] > before_day(judged_from)
        else:  # each judged group's own future, from its first judged cutoff on
            after = log["event_time"].to_numpy()
            future = (groups == "validation") & (after > before_day(plan.validation[0]))
            future |= (groups == "test") & (after > before_day(plan.test[0]))
        assert future.any()
        other = build_training_set(load_history(log[~future], until=history.end),
                                   plan.cutoffs, HORIZON_S).frame  # fmt: skip
        columns = ["client_id", "cutoff", *FEATURE_NAMES, "label", "persistence"]
        fitting = full[roles == role][columns].reset_index(drop=True)
        again = other.merge(fitting[["client_id", "cutoff"]], on=["client_id", "cutoff"])
        assert len(fitting) > 20
        pd.testing.assert_frame_equal(fitting, again[columns], check_exact=True)
