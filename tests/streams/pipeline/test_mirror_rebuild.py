"""The pure parts of the mirror rebuild: markers, partitions, matching a prediction to the
memo the client's row keeps of it; the retry backoff."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from features.state import ClientState
from models_store.scoring.emission import Emitted
from models_store.scoring.prediction import ExperimentTag, Interval, ModelId, Prediction
from streams.pipeline.mirror_rebuild import (
    OK,
    REBUILDING,
    chunks,
    json_object,
    marker_value,
    matches_memo,
    partitions_to_rebuild,
    table_partitions,
)
from streams.pipeline.waiting_store import backoff_s

AS_OF = datetime(2024, 5, 17, 13, 45, 12, 123456, tzinfo=UTC).timestamp() + 0.0000004


def _payload(margin: float = 0.4123456789012345, arm: str | None = None) -> dict[str, object]:
    prediction = Prediction(
        prediction_id="p", client_id="acme", predicted_margin=margin, horizon_days=90,
        interval=Interval(lower=0.1, upper=0.7, level=0.9), risk_tier="healthy", drivers=[],
        model=ModelId(name="profitability", version="1.0.0"),
        experiment=None if arm is None else ExperimentTag(id="exp", arm=arm),
        event_id="e1", event_time=datetime.fromtimestamp(AS_OF, UTC),
        features_as_of=datetime.fromtimestamp(AS_OF, UTC), scored_at=datetime.now(UTC),
    )  # fmt: skip
    decoded = json_object(prediction.to_json())
    assert decoded is not None
    return decoded


def test_a_missing_or_unfinished_marker_means_rebuild() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    markers = {0: marker_value(OK, "w@h:1", now), 1: None, 2: marker_value(REBUILDING, "w", now)}
    assert partitions_to_rebuild(markers) == {1, 2}
    assert partitions_to_rebuild({}) == set()


def test_a_client_lives_in_the_partitions_its_offsets_name() -> None:
    state = ClientState("acme", offsets={"t-activity:3": 10, "t-billing:3": 4})
    assert table_partitions(state) == {3}
    assert table_partitions(ClientState("new")) == set()


def test_the_payload_matches_the_memo_of_its_emission_only() -> None:
    memo = Emitted(0.4123456789012345, "healthy", "profitability@1.0.0", None, AS_OF)
    assert matches_memo(_payload(), memo)
    assert not matches_memo(_payload(margin=0.4123456789012346), memo)
    assert not matches_memo(_payload(), replace(memo, model="profitability@2.0.0"))
    assert not matches_memo(_payload(), replace(memo, event_time=AS_OF + 0.01))
    assert not matches_memo(_payload(arm="challenger"), memo)
    assert matches_memo(_payload(arm="challenger"), replace(memo, arm="challenger"))
    assert not matches_memo({"predicted_margin": memo.margin}, memo)


def test_record_values_that_are_not_json_objects_are_skipped() -> None:
    assert json_object(b"not json") is None
    assert json_object(b"[1, 2]") is None
    assert json_object(None) is None
    assert json_object(json.dumps({"a": 1}).encode()) == {"a": 1}


def test_chunks_cover_everything_in_order() -> None:
    items = [str(i) for i in range(7)]
    assert list(chunks(items, 3)) == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert list(chunks([], 3)) == []


def test_backoff_doubles_from_a_tenth_of_a_second_up_to_the_cap() -> None:
    assert [backoff_s(n, 1.0) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff_s(10_000, 5.0) == 5.0
