"""Records read back from a live topic are checked against the committed JSON Schemas in
docs/schemas: what downstream consumers validate against is what workers write."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


@cache
def _validator(topic: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{topic}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def checked(topic: str, record: Any) -> Any:
    """``record``, once it is valid against the committed schema of ``topic``
    (e.g. ``profitability-audit``); an AssertionError naming every violation if not."""
    errors = sorted(_validator(topic).iter_errors(record), key=str)
    assert not errors, f"a {topic} record breaks its schema: " + "; ".join(
        f"{list(error.absolute_path)}: {error.message}" for error in errors[:5]
    )
    return record
