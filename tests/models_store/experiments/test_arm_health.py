"""Arm health counts: latency buckets, drift, merging across workers, record round trip."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models_store.experiments.arm_health import (
    LATENCY_BUCKETS_MS,
    ArmHealth,
    merge_health,
    observe_call,
)

finite = st.floats(-5, 5, allow_nan=False)
calls = st.lists(
    st.tuples(
        st.floats(0, 60_000, allow_nan=False),
        st.lists(st.tuples(finite, finite | st.just(math.nan)), max_size=8),
        st.integers(0, 3),
    ),
    max_size=12,
)


def _observe(health: ArmHealth, call: tuple[float, list[tuple[float, float]], int]) -> ArmHealth:
    latency, rows, failures = call
    return observe_call(health, latency_ms=latency, predicted=[p for p, _ in rows],
                        persistence=[n for _, n in rows], failures=failures)  # fmt: skip


@given(calls, calls)
def test_merging_two_workers_equals_one_worker_seeing_every_call(
    first: list[tuple[float, list[tuple[float, float]], int]],
    second: list[tuple[float, list[tuple[float, float]], int]],
) -> None:
    a = b = both = ArmHealth()
    for call in first:
        a = _observe(a, call)
        both = _observe(both, call)
    for call in second:
        b = _observe(b, call)
        both = _observe(both, call)
    merged = merge_health([a, b])
    assert (merged.scored, merged.failures, merged.latency_counts, merged.drift_n) == (
        both.scored, both.failures, both.latency_counts, both.drift_n,
    )  # fmt: skip
    assert merged.drift_sum == pytest.approx(both.drift_sum)
    assert merged.calls == len(first) + len(second)
    assert ArmHealth.from_dict(merged.to_dict()) == merged


def test_drift_counts_only_clients_with_a_persistence_forecast() -> None:
    health = observe_call(ArmHealth(), latency_ms=3, predicted=[0.3, 0.1, 0.5],
                          persistence=[0.1, math.nan, 0.4], failures=2)  # fmt: skip
    assert (health.scored, health.failures, health.drift_n) == (3, 2, 2)
    assert health.drift == pytest.approx((0.2 + 0.1) / 2)
    assert health.error_rate == pytest.approx(2 / 5)
    assert math.isnan(ArmHealth().drift)


def test_the_latency_quantile_is_the_upper_bound_of_its_bucket() -> None:
    health = ArmHealth()
    for latency in [0.5] * 90 + [150.0] * 9 + [40_000.0]:
        health = observe_call(health, latency_ms=latency, predicted=[], persistence=[], failures=0)
    assert health.calls == 100
    assert health.latency_quantile_ms(0.5) == LATENCY_BUCKETS_MS[0]
    assert health.latency_quantile_ms(0.95) == 200
    assert health.latency_quantile_ms(1.0) == math.inf
    assert math.isnan(ArmHealth().latency_quantile_ms(0.95))


@pytest.mark.parametrize(
    "change",
    [{"latency_counts": [1, 2]}, {"scored": -1}, {"drift_sum": math.inf}, {"failures": "x"}],
)
def test_counts_that_do_not_fit_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must|invalid"):
        ArmHealth.from_dict({**ArmHealth().to_dict(), **change})
