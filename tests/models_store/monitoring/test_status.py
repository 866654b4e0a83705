"""`monitor status`'s fold of the monitoring topic (pure)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from models_store.monitoring.status import StatusFold, drift_top


def _accuracy(
    worker: str, at: str, n: int, mae: float, coverage: float, **more: Any
) -> dict[str, Any]:
    return {"kind": "accuracy", "worker": worker, "at": at, "model": "p@1.0.0", "arm": "none",
            "target": "margin_ratio", "interval_level": 0.9, "reference_mae": 0.1,
            "outcomes_seen": n, "coverage_broken": more.get("broken"),
            "realised": {"n": n, "mae": mae, "bias": 0.0, "rmse": mae * 2, "coverage": coverage,
                         "estimated_mae": mae, "estimated_n": n},
            "estimated": {"clients": n, "mae": mae, "span_s": 1.0}}  # fmt: skip


def test_each_workers_latest_incarnation_is_merged_weighted_by_its_outcomes() -> None:
    fold = StatusFold()
    fold.add(_accuracy("w1/old", "2026-01-01T00:00:00", 50, 9.0, 0.0))  # replaced by its restart
    fold.add(_accuracy("w1/new", "2026-01-01T00:05:00", 30, 0.1, 0.8))
    fold.add(_accuracy("w2/a", "2026-01-01T00:04:00", 10, 0.2, 1.0, broken=True))
    fold.add({"kind": "outcome"})  # other kinds pass by
    fold.add({"kind": "accuracy", "worker": "w3/x"})  # malformed: skipped, counted
    (row,) = fold.statuses()
    assert fold.ignored == {"malformed": 1}
    assert row.workers == 2
    assert row.outcomes_seen == 40
    assert row.mae == pytest.approx((30 * 0.1 + 10 * 0.2) / 40)
    assert row.coverage == pytest.approx((30 * 0.8 + 10 * 1.0) / 40)
    assert row.rmse == pytest.approx(math.sqrt((30 * 0.04 + 10 * 0.16) / 40))
    assert row.coverage_broken is True  # one worker's window is enough
    assert row.estimated_mae == pytest.approx(row.mae)
    assert row.drift_top is None


def test_the_drift_column_reads_the_models_latest_drift_record() -> None:
    fold = StatusFold()
    fold.add(_accuracy("w1/a", "t1", 1, 0.1, 1.0))
    fold.add({"kind": "drift", "model": "p@1.0.0", "at": "t1", "top_features": ["old"]})
    fold.add({"kind": "drift", "model": "p@1.0.0", "at": "t2",
              "top_features": [{"feature": f"f{i}", "psi": 1.0} for i in range(7)]})  # fmt: skip
    assert fold.statuses()[0].drift_top == ["f0", "f1", "f2", "f3", "f4"]
    assert drift_top({"features": [{"name": "a"}, "b", 3]}) == ["a", "b"]
    assert drift_top(None) is None
