"""The prediction payload: its JSON, its flat columns, its id, its committed schema (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models_store.registry.card import ModelCard
from models_store.scoring.emission import Reason
from models_store.scoring.prediction import (
    EMISSION_FIELDS,
    FLAT_COLUMNS,
    Prediction,
    build_prediction,
    content_id,
    prediction_schema_file,
)
from models_store.scoring.scorer import Contribution, Score
from tests.models_store.bundles import make_bundle

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_payload_fields_json_and_columns(tmp_path: Path) -> None:
    from models_store.registry.bundle import read_card

    card = read_card(make_bundle(tmp_path / "b", "margin", "2.1.0"))
    score = Score(margin=0.31, lower=0.1, upper=0.5, level=0.9, tier="healthy",
                  drivers=(Contribution("revenue_30d", None, -0.02),))  # fmt: skip
    scored = datetime(2025, 3, 1, 12, tzinfo=UTC)
    prediction = build_prediction(
        card, "client-3", score, event_id="ev-1", event_time=1.7e9, features_as_of=1.7e9,
        scored_at=scored, latency_ms=12.5, reason=Reason.FIRST,
    )  # fmt: skip
    assert prediction.prediction_id == content_id(prediction)
    assert len(prediction.prediction_id) == 32
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
    assert without_event.prediction_id not in {"", prediction.prediction_id}


SCORE = Score(margin=0.31, lower=0.1, upper=0.5, level=0.9, tier="healthy",
              drivers=(Contribution("revenue_30d", 120.0, -0.02),))  # fmt: skip
SCORED = datetime(2025, 3, 1, 12, tzinfo=UTC)


def _built(card: ModelCard, **changes: object) -> Prediction:
    arguments: dict[str, object] = {
        "client_id": "client-3", "score": SCORE, "event_id": "ev-1", "event_time": 1.7e9,
        "features_as_of": 1.7e9, "scored_at": SCORED, "latency_ms": 12.5, "reason": "first",
        "experiment": None, **changes,
    }  # fmt: skip
    client_id, score = arguments.pop("client_id"), arguments.pop("score")
    return build_prediction(card, client_id, score, **arguments)  # type: ignore[arg-type]


def test_the_id_leaves_out_only_when_a_copy_was_made(tmp_path: Path) -> None:
    from models_store.registry.bundle import read_card

    card = read_card(make_bundle(tmp_path / "b", "margin", "2.1.0"))
    first = _built(card)
    replayed = _built(card, scored_at=datetime(2025, 3, 2, tzinfo=UTC), latency_ms=900.0)
    assert replayed.prediction_id == first.prediction_id
    assert replayed.model_dump(exclude=set(EMISSION_FIELDS)) == first.model_dump(
        exclude=set(EMISSION_FIELDS)
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": "client-4"},
        {"score": Score(0.31000000000000005, 0.1, 0.5, 0.9, "healthy", SCORE.drivers)},
        {"score": Score(0.31, 0.1, 0.5, 0.9, "healthy",
                        (Contribution("revenue_30d", 121.0, -0.02),))},
        {"event_id": "ev-2"},
        {"event_time": 1.7e9 - 1},
        {"features_as_of": 1.7e9 + 1},
        {"reason": "margin_moved"},
        {"experiment": ("e1", "champion")},
    ],
)  # fmt: skip
def test_anything_a_prediction_says_changes_its_id(
    changes: dict[str, object], tmp_path: Path
) -> None:
    # The stream found the same (client, trigger, model) scored on different features after
    # a takeover: a consumer de-duplicating by id must never drop a different prediction.
    from models_store.registry.bundle import read_card

    card = read_card(make_bundle(tmp_path / "b", "margin", "2.1.0"))
    assert _built(card, **changes).prediction_id != _built(card).prediction_id
    other_version = read_card(make_bundle(tmp_path / "c", "margin", "2.1.1"))
    assert _built(other_version).prediction_id != _built(card).prediction_id


def test_the_committed_schema_is_current() -> None:
    name, text = prediction_schema_file()
    regenerate = "out of date: run `profitstream schemas --out docs` and commit the result"
    assert (DOCS / "schemas" / name).read_text() == text, f"docs/schemas/{name} {regenerate}"
