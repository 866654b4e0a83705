"""The prediction payload: its JSON, its flat columns, its committed schema (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from models_store.prediction import (
    FLAT_COLUMNS,
    Prediction,
    build_prediction,
    prediction_schema_file,
)
from models_store.scoring import Driver, Score, prediction_id
from tests.models_store.bundles import make_bundle

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_payload_fields_json_and_columns(tmp_path: Path) -> None:
    from models_store.bundle import read_card

    card = read_card(make_bundle(tmp_path / "b", "margin", "2.1.0"))
    score = Score(margin=0.31, lower=0.1, upper=0.5, level=0.9, tier="healthy",
                  drivers=(Driver("revenue_30d", None, -0.02),))  # fmt: skip
    scored = datetime(2025, 3, 1, 12, tzinfo=UTC)
    prediction = build_prediction(
        card, "client-3", score, event_id="ev-1", event_time=1.7e9, features_as_of=1.7e9,
        scored_at=scored, latency_ms=12.5, reason="first",
    )  # fmt: skip
    assert prediction.prediction_id == prediction_id("client-3", "ev-1", "margin@2.1.0")
    assert prediction.model.version == "2.1.0"
    assert prediction.horizon_days == card.horizon_days
    again = Prediction.model_validate_json(prediction.to_json())
    assert again == prediction
    raw = json.loads(prediction.to_json())
    assert raw["schema_version"] == 1
    assert raw["drivers"] == [{"feature": "revenue_30d", "value": None, "contribution": -0.02}]
    assert tuple(prediction.flat()) == FLAT_COLUMNS
    without_event = build_prediction(card, "client-3", score, event_id=None, event_time=None,
                                     features_as_of=1.7e9, scored_at=scored)  # fmt: skip
    assert without_event.prediction_id == prediction_id("client-3", "as_of:1700000000.0",
                                                        "margin@2.1.0")  # fmt: skip


def test_the_committed_schema_is_current() -> None:
    name, text = prediction_schema_file()
    regenerate = "out of date: run `profitstream schemas --out docs` and commit the result"
    assert (DOCS / "schemas" / name).read_text() == text, f"docs/schemas/{name} {regenerate}"
