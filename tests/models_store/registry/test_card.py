"""The model card (pure): older cards stay loadable as the card gains fields."""

from __future__ import annotations

import json
from pathlib import Path

from models_store.registry.card import CARD_FILE, ModelCard
from tests.models_store.bundles import make_bundle


def test_a_card_from_before_split_kinds_loads_as_a_time_split(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", "margin", "1.0.0")
    document = json.loads((bundle / CARD_FILE).read_text())
    training_data = document["training_data"]
    assert training_data.pop("split") == "time"
    assert training_data.pop("split_reason") == ""
    old = ModelCard.from_json(json.dumps(document))
    assert old.training_data.split == "time"
    assert old.training_data.split_reason == ""
    by_client = old.model_copy(update={"training_data": old.training_data.model_copy(
        update={"split": "clients", "split_reason": "--split clients"})})  # fmt: skip
    again = ModelCard.from_json(by_client.to_json())
    assert again.training_data.split == "clients"
    assert again == by_client
