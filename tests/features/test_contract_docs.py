"""The committed contract documents are what the code generates (run `profitstream schemas`)."""

from __future__ import annotations

import json
from pathlib import Path

from features.contract_docs import events_markdown, schema_files
from features.events import ACTIVITY_TYPES, BILLING_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "out of date: run `profitstream schemas --out docs` and commit the result"


def test_the_committed_json_schemas_are_current() -> None:
    for name, text in schema_files().items():
        assert (DOCS / "schemas" / name).read_text() == text, f"docs/schemas/{name} {REGENERATE}"


def test_the_committed_contract_page_is_current() -> None:
    assert (DOCS / "events.md").read_text() == events_markdown(), f"docs/events.md {REGENERATE}"


def test_every_event_type_has_a_section_and_a_schema_branch() -> None:
    page = events_markdown()
    schemas = {name: json.loads(text) for name, text in schema_files().items()}
    for topic, types in (("client-activity", ACTIVITY_TYPES), ("billing", BILLING_TYPES)):
        branches = schemas[f"{topic}.schema.json"]["oneOf"]
        assert len(branches) == len(types)
        for model in types:
            event_type = model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
            assert f"### `{event_type}`" in page
