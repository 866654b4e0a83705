"""The drift window: event-time day buckets that forget, late rows, drivers, pruning (pure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models_store.monitoring.book import DriftBook
from models_store.monitoring.window import DAY_S, DriftLayout, DriftWindow, prune
from models_store.registry.card import CARD_FILE, ModelCard
from models_store.registry.drift_reference import drift_reference
from tests.models_store.bundles import make_bundle

NAMES = ("a", "b", "season_sin")


def _layout(seed: int = 0) -> DriftLayout:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(2_000, 3))
    contributions = np.tile([3.0, 2.0, 1.0], (100, 1))  # a then b are the drivers
    return DriftLayout.of(drift_reference(rows, NAMES, rows[:, 0], contributions, 2), NAMES)


def _rows(n: int, shift: float = 0.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rows = np.random.default_rng(seed).normal(size=(n, 3))
    rows[:, 1] += shift
    return rows, rows[:, 0]


def test_the_window_forgets_days_in_event_time_and_drops_late_rows() -> None:
    window = DriftWindow(_layout(), days=7)
    rows, predictions = _rows(10)
    for day in range(10):
        window.add_scored(np.full(10, day * DAY_S + 3600.0), rows, predictions)
    assert sorted(window.buckets) == list(range(3, 10))
    assert window.summary().rows == 70
    # An older day still inside the window counts; one before it is late.
    window.add_scored(np.array([3 * DAY_S, 2 * DAY_S + 86_399.0]), rows[:2], predictions[:2])
    summary = window.summary()
    assert (summary.rows, summary.late, summary.first_day, summary.last_day) == (71, 1, 3, 9)
    # One batch spanning days moves the window once, to its newest day.
    window.add_scored(np.array([9 * DAY_S, 12 * DAY_S]), rows[:2], predictions[:2])
    assert sorted(window.buckets) == [6, 7, 8, 9, 12]  # days without rows hold nothing
    assert window.summary().rows == 10 * 4 + 2


def test_memory_is_days_times_features_times_bins_whatever_the_traffic() -> None:
    window = DriftWindow(_layout(), days=3)
    rows, predictions = _rows(5_000)
    for day in range(30):
        window.add_scored(np.full(5_000, day * DAY_S), rows, predictions)
    assert len(window.buckets) == 3
    bucket = window.buckets[29]
    assert bucket.features.shape == window.layout.feature_reference.shape
    assert bucket.features.sum() == 5_000 * 2  # two monitored features (calendar left out)


def test_a_shifted_feature_is_named_and_the_others_are_not() -> None:
    window = DriftWindow(_layout(), days=7)
    window.add_scored(np.full(1_000, 0.0), *_rows(1_000, shift=1.0))
    summary = window.summary()
    assert [d.name for d in summary.features] == ["b", "a"]
    assert summary.drifted() == ["b"]
    assert summary.max_psi == summary.features[0].psi > 0.25
    assert summary.features[1].psi < 0.1
    assert summary.prediction is not None
    assert summary.prediction.psi < 0.1  # the prediction is column a: unmoved


def test_driver_shares_are_compared_with_training() -> None:
    window = DriftWindow(_layout(), days=7)
    assert window.summary().driver_shift is None
    for _ in range(10):
        window.add_drivers(0.0, ["a", "b", "season_sin"])
    window.add_drivers(0.0, ["a"])  # fewer than k drivers: not comparable, not counted
    summary = window.summary()
    assert summary.explained == 10
    assert summary.driver_shift == 0.0
    for _ in range(10):
        window.add_drivers(0.0, ["b", "season_sin"])  # b stays, a drops out
    summary = window.summary()
    assert [(d.feature, d.share, d.reference) for d in summary.drivers] == [
        ("b", 1.0, 1.0), ("a", 0.5, 1.0)
    ]  # fmt: skip
    assert summary.driver_shift == pytest.approx(0.5 / (2 * 2))


def test_windows_no_row_reached_for_a_window_are_pruned() -> None:
    layout = _layout()
    windows = {"old": DriftWindow(layout, 7), "new": DriftWindow(layout, 7)}
    rows, predictions = _rows(3)
    windows["old"].add_scored(np.full(3, 0.0), rows, predictions)
    windows["new"].add_scored(np.full(3, 7 * DAY_S), rows, predictions)
    assert prune(windows) == []
    windows["new"].add_scored(np.full(3, 8 * DAY_S), rows, predictions)
    assert prune(windows) == ["old"]
    assert list(windows) == ["new"]


def test_the_book_keeps_a_window_per_model_and_arm_and_none_without_a_reference(
    tmp_path: Path,
) -> None:
    card = ModelCard.from_json((make_bundle(tmp_path, "m", "1.0.0") / CARD_FILE).read_text())
    book = DriftBook(days=7)
    assert card.drift_reference is None  # an older card: no drift
    assert book.window(card, "champion", None) is None
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, len(card.feature_names)))
    reference = drift_reference(rows, card.feature_names, rows[:, 0], rows, 5)
    newer = card.model_copy(update={"drift_reference": reference, "version": "9.9.9"})
    champion = book.window(newer, "champion", None)
    assert champion is not None
    assert book.window(newer, "champion", None) is champion
    assert book.window(newer, "challenger", "e1") is not champion
    assert len(book.windows) == 2
