"""Realised accuracy, coverage and the estimate window (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from models_store.experiments.records import MonitoringRecord, OutcomeRecord
from models_store.labels import realised_in_target
from models_store.monitoring.accuracy import (
    AccuracyBook,
    Closed,
    EstimateWindow,
    ModelFacts,
    OutcomeWindow,
    accuracy_record,
    closed_outcome,
    coverage_broken,
    summarise,
)

finite = st.floats(-1e6, 1e6, allow_nan=False)


def _outcome(
    pid: str,
    predicted: float,
    revenue: float,
    cost: float,
    *,
    target: str | None = "margin_ratio",
    lower: float = -1.0,
    upper: float = 1.0,
    arm: str | None = None,
    model: str = "p@1.0.0",
    estimate: float | None = None,
) -> OutcomeRecord:
    return OutcomeRecord(prediction_id=pid, model=model, experiment_id=None, arm=arm,  # type: ignore[arg-type]
                         features_as_of=0.0, horizon_end=1.0, predicted=predicted, lower=lower,
                         upper=upper, persistence=None, revenue=revenue, cost=cost,
                         realised=None, target=target, interval_level=0.9,  # type: ignore[arg-type]
                         estimated_error=estimate)  # fmt: skip


def test_the_error_is_in_the_models_own_target() -> None:
    assert realised_in_target("margin_ratio", 100.0, 60.0) == pytest.approx(0.4)
    assert realised_in_target("margin_abs", 100.0, 60.0) == pytest.approx(40.0)
    assert realised_in_target("margin_ratio", 0.0, 60.0) is None  # no revenue: no ratio
    assert realised_in_target("margin_abs", 0.0, 60.0) == pytest.approx(-60.0)
    money = closed_outcome(_outcome("a", 50.0, 100.0, 60.0, target="margin_abs", lower=30,
                                    upper=39), "margin_abs")  # fmt: skip
    assert money == Closed("a", pytest.approx(10.0), False, None)  # type: ignore[arg-type]
    ratio = closed_outcome(_outcome("b", 0.5, 100.0, 60.0, estimate=0.2), "margin_ratio")
    assert ratio == Closed("b", pytest.approx(0.1), True, 0.2)  # type: ignore[arg-type]


@given(st.lists(st.tuples(finite, st.booleans(), st.none() | st.floats(0, 1e6)), min_size=1,
                max_size=60))  # fmt: skip
def test_the_figures_are_those_of_numpy(rows: list[tuple[float, bool, float | None]]) -> None:
    closed = [Closed(str(i), e, inside, est) for i, (e, inside, est) in enumerate(rows)]
    figures = summarise(closed)
    assert figures is not None
    errors = np.array([e for e, _, _ in rows])
    assert figures.n == len(rows)
    assert figures.mae == pytest.approx(np.mean(np.abs(errors)), rel=1e-9, abs=1e-9)
    assert figures.bias == pytest.approx(np.mean(errors), rel=1e-9, abs=1e-6)
    assert figures.rmse == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-9, abs=1e-9)
    assert figures.rmse >= figures.mae - 1e-9
    assert figures.mae >= abs(figures.bias) - 1e-6
    assert figures.coverage == pytest.approx(np.mean([inside for _, inside, _ in rows]))
    estimates = [est for _, _, est in rows if est is not None]
    assert figures.estimated_n == len(estimates)
    if estimates:
        assert figures.estimated_mae == pytest.approx(np.mean(estimates))
    else:
        assert figures.estimated_mae is None
    assert summarise([]) is None


@given(st.integers(1, 1000), st.integers(0, 1000))
def test_coverage_is_broken_outside_the_level_plus_or_minus_five_points(
    window: int, inside: int
) -> None:
    n = max(window, inside)
    coverage = inside / n
    broken = coverage_broken(coverage, n, 0.9, window)
    assert broken is (coverage < 0.85 - 1e-12 or coverage > 0.95 + 1e-12)
    assert coverage_broken(coverage, window - 1, 0.9, window) is None  # window not full


def test_the_band_edges_hold_and_a_point_beyond_breaks() -> None:
    assert coverage_broken(425 / 500, 500, 0.9, 500) is False  # 85.0%
    assert coverage_broken(475 / 500, 500, 0.9, 500) is False  # 95.0%
    assert coverage_broken(424 / 500, 500, 0.9, 500) is True
    assert coverage_broken(476 / 500, 500, 0.9, 500) is True
    assert coverage_broken(0.74, 500, 0.8, 500) is True  # the level is the model's


@given(st.integers(1, 30), st.lists(st.integers(0, 40), max_size=120))
def test_the_window_holds_the_last_n_outcomes_each_prediction_once(
    size: int, ids: list[int]
) -> None:
    window = OutcomeWindow(size)
    kept: list[int] = []
    for pid in ids:
        added = window.add(Closed(str(pid), float(pid), pid % 2 == 0))
        assert added is (pid not in kept)
        if added:
            kept = [*kept, pid][-size:]
    figures = window.summary()
    if not kept:
        assert figures is None
        return
    assert figures is not None
    assert figures.n == len(kept)
    assert figures.mae == pytest.approx(np.mean(kept))
    assert figures.coverage == pytest.approx(np.mean([pid % 2 == 0 for pid in kept]))


def test_the_estimate_counts_each_client_once_within_the_span() -> None:
    window = EstimateWindow(span_s=10.0, max_clients=3)
    assert window.mean() == (0, None)
    window.add("a", 0.0, 1.0)
    window.add("a", 1.0, 3.0)  # a busy client counts once, with its latest estimate
    window.add("b", 2.0, 5.0)
    assert window.mean() == pytest.approx((2, 4.0))
    window.add("c", 11.5, 2.0)  # a's latest (t=1) left the span of 10 s
    assert window.mean() == pytest.approx((2, 3.5))
    window.add("d", 12.0, 2.0)
    window.add("e", 12.0, 2.0)  # at most 3 clients: b leaves
    assert window.mean() == pytest.approx((3, 2.0))


def test_the_book_keeps_arms_apart_drops_the_oldest_model_and_counts_what_it_skips() -> None:
    book = AccuracyBook(window=2, estimate_span_s=100.0, max_models=2)
    book.add_outcomes([
        _outcome("1", 0.5, 100.0, 60.0),
        _outcome("1", 0.5, 100.0, 60.0),  # redelivered
        _outcome("2", 0.1, 0.0, 5.0),  # a ratio without revenue
        _outcome("3", 0.5, 100.0, 50.0, arm="challenger", estimate=0.05),
        _outcome("4", 10.0, 100.0, 50.0, target=None, model="q@1.0.0"),  # target unknown
    ])  # fmt: skip
    assert book.ignored == {"repeated": 1, "undefined_margin": 1, "unknown_target": 1}
    figures = {(f.model, f.arm): f for f in book.figures()}
    assert set(figures) == {("p@1.0.0", "none"), ("p@1.0.0", "challenger")}
    assert figures["p@1.0.0", "none"].realised.mae == pytest.approx(0.1)  # type: ignore[union-attr]
    assert figures["p@1.0.0", "challenger"].realised.estimated_mae == 0.05  # type: ignore[union-attr]
    assert figures["p@1.0.0", "none"].coverage_broken is None  # 1 of 2 outcomes
    book.add_outcomes([_outcome("5", 0.4, 100.0, 60.0, lower=0.5, upper=0.6)])
    figures = {(f.model, f.arm): f for f in book.figures()}
    assert figures["p@1.0.0", "none"].coverage_broken is True  # 1 of 2 inside: 50%
    book.add_estimates("q@1.0.0", None, [("c1", 1.0, 0.2)])
    book.add_estimates("r@1.0.0", "champion", [("c1", 1.0, 0.3)])
    assert {f.model for f in book.figures()} == {"q@1.0.0", "r@1.0.0"}  # p fed longest ago


def test_an_accuracy_record_is_a_monitoring_record() -> None:
    book = AccuracyBook(window=1, estimate_span_s=100.0)
    book.facts["p@1.0.0"] = ModelFacts("margin_ratio", 0.9, 0.04, True)
    book.add_outcomes([_outcome("1", 0.5, 100.0, 60.0)])
    book.add_estimates("p@1.0.0", None, [("c1", 1.0, 0.2), ("c2", 1.0, 0.4)])
    record = accuracy_record(book.figures()[0], "w/1", "2026-01-01T00:00:00+00:00")
    parsed = TypeAdapter(MonitoringRecord).validate_json(record.to_json())
    assert parsed == record
    assert record.kind == "accuracy"
    assert record.arm == "none"
    assert record.reference_mae == 0.04
    assert record.realised is not None
    assert record.realised.mae == pytest.approx(0.1)
    assert record.coverage_broken is True  # a full window of 1 with 100% inside: above 95%
    assert record.estimated is not None
    assert record.estimated.mae == pytest.approx(0.3)
    # A model without the error model (an older bundle) gives no estimate at all.
    book.facts["p@1.0.0"] = ModelFacts("margin_ratio", 0.9, 0.04, False)
    book = AccuracyBook(window=1, estimate_span_s=100.0, facts=book.facts)
    book.add_outcomes([_outcome("1", 0.5, 100.0, 60.0)])
    assert accuracy_record(book.figures()[0], "w/1", "t").estimated is None
    assert not math.isnan(record.realised.rmse)
