"""Drift records and gauges from a window (pure): valid against the committed schema,
figures only once the window holds enough rows, gauges for the top features only."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
from prometheus_client import REGISTRY

from features.definitions import FEATURE_NAMES
from models_store.monitoring.book import DriftKey
from models_store.monitoring.window import DAY_S, DriftLayout, DriftWindow
from models_store.registry.drift_reference import drift_reference
from streams.control.drift_reports import drift_record, set_gauges
from tests.services.record_schemas import checked

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
KEY = DriftKey("profitability@1.0.0", "challenger", "e1")


def _window(rows: int, shift: float) -> DriftWindow:
    rng = np.random.default_rng(0)
    train = rng.lognormal(2, 1, (3_000, len(FEATURE_NAMES)))
    reference = drift_reference(train, FEATURE_NAMES, train[:, 0], rng.normal(size=(50, 72)), 5)
    window = DriftWindow(DriftLayout.of(reference, FEATURE_NAMES), days=7)
    scored = rng.lognormal(2, 1, (rows, len(FEATURE_NAMES)))
    scored[:, FEATURE_NAMES.index("tickets_opened_90d")] *= np.exp(shift)
    window.add_scored(np.full(rows, 20_000 * DAY_S + 5.0), scored, scored[:, 0])
    window.add_drivers(20_000 * DAY_S, [FEATURE_NAMES[i] for i in range(5)])
    return window


def test_a_record_names_the_drifted_feature_and_is_valid() -> None:
    summary = _window(1_000, shift=1.5).summary()
    record = drift_record("w/1", KEY, summary, window_days=7, min_rows=500, top=5, at=NOW)
    payload = checked("profitability-monitoring", json.loads(record.to_json()))
    assert payload["kind"] == "drift"
    assert payload["drifted"] == ["tickets_opened_90d"]
    assert payload["features"][0]["name"] == "tickets_opened_90d"
    assert len(payload["features"]) == 5
    assert payload["max_psi"] == payload["features"][0]["psi"] > 0.25
    assert payload["prediction"]["psi"] < 0.1
    assert (payload["window_start"], payload["window_end"]) == (20_000 * DAY_S, 20_001 * DAY_S)
    assert (payload["rows"], payload["explained"], payload["drivers_k"]) == (1_000, 1, 5)
    assert payload["driver_shift"] is not None


def test_too_few_rows_give_no_figures_and_a_zero_gauge() -> None:
    summary = _window(100, shift=1.5).summary()
    record = drift_record("w/1", KEY, summary, window_days=7, min_rows=500, top=5, at=NOW)
    payload = checked("profitability-monitoring", json.loads(record.to_json()))
    assert (payload["max_psi"], payload["drifted"], payload["features"]) == (None, [], [])
    assert payload["prediction"] is None
    assert payload["rows"] == 100
    set_gauges({KEY: summary}, min_rows=500, top=5)
    labels = {"model": KEY.model, "arm": KEY.arm}
    assert REGISTRY.get_sample_value("profitstream_drift_max_psi", labels) == 0.0
    assert REGISTRY.get_sample_value("profitstream_drift_window_rows", labels) == 100.0
    assert _psi_features() == set()


def test_gauges_carry_the_top_features_and_the_prediction_only() -> None:
    shifted = _window(1_000, shift=1.5).summary()
    set_gauges({KEY: shifted}, min_rows=500, top=5)
    features = _psi_features()
    assert len(features) == 6
    assert {"tickets_opened_90d", "prediction"} <= features
    labels = {"model": KEY.model, "arm": KEY.arm}
    assert REGISTRY.get_sample_value("profitstream_drift_max_psi", labels) == shifted.max_psi
    # The next publication replaces the series: a forgotten window leaves none behind.
    set_gauges({}, min_rows=500, top=5)
    assert _psi_features() == set()
    assert REGISTRY.get_sample_value("profitstream_drift_max_psi", labels) is None


def _psi_features() -> set[str]:
    return {
        sample.labels["feature"]
        for family in REGISTRY.collect()
        if family.name == "profitstream_drift_psi"
        for sample in family.samples
    }
