"""The audit topic's records: typed, written as strict JSON, valid against the committed
schema whatever a control record held (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from models_store.control.audit_records import (
    ModelSwitchRecord,
    SwitchedExperiment,
    SwitchedPartition,
    audit_schema_file,
    command_record,
    minimal_command_record,
)
from models_store.control.commands import Role
from models_store.control.fold import ControlFold, ControlRecord, FoldResult
from models_store.control.signing import Keyring, Principal, issue, new_key, sign
from tests.services.record_schemas import checked

DOCS = Path(__file__).resolve().parents[3] / "docs"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADMIN = Principal("alice", Role.ADMIN, bytes.fromhex(new_key()))
V1, V2 = "profitability@1.0.0", "profitability@2.0.0"


def _fold(values: list[bytes]) -> list[FoldResult]:
    fold = ControlFold(Keyring({ADMIN.name: ADMIN}))
    at = int(NOW.timestamp() * 1000)
    return [fold.apply(ControlRecord(offset, value, at)) for offset, value in enumerate(values)]


def _signed(kind: str, **args: object) -> bytes:
    return json.dumps(sign(issue(kind, args, ADMIN, issued_at=NOW), ADMIN.key)).encode()


def test_the_committed_schema_is_current() -> None:
    name, text = audit_schema_file()
    regenerate = "out of date: run `profitstream schemas --out docs` and commit the result"
    assert (DOCS / "schemas" / name).read_text() == text, f"docs/schemas/{name} {regenerate}"


def test_every_command_outcome_makes_a_record_valid_against_the_schema() -> None:
    outcomes = _fold([
        _signed("register", model=V1),
        _signed("deploy", model=V1),
        _signed("register", model=V2),
        _signed("experiment_start", experiment_id="e1", challenger=V2, salt="s",
                schedule=[0.1, 0.5], min_samples=10),
        _signed("erase_client", client_id="client-42"),
        b"not json",
        json.dumps({"type": 5, "args": [1], "issued_by": {"x": "\ud800"}}).encode(),
        json.dumps({"type": "t" * 50_000, "args": {"blob": "b" * 150_000}}).encode(),
    ])  # fmt: skip
    assert [o.accepted for o in outcomes] == [True] * 5 + [False] * 3
    for outcome in outcomes:
        record = checked("profitability-audit", json.loads(command_record(outcome).to_json()))
        assert record["kind"] == "command"
    started = json.loads(command_record(outcomes[3]).to_json())
    assert started["after"]["experiment"]["challenger"] == V2
    assert b"client-42" not in command_record(outcomes[4]).to_json()
    digest = json.loads(command_record(outcomes[-1]).to_json())["command_digest"]
    assert digest["size"] > 200_000
    minimal = minimal_command_record(9, NOW.timestamp(), outcomes[5], "TypeError: boom")
    assert checked("profitability-audit", json.loads(minimal.to_json()))["reason"] == "audit_failed"


def test_a_model_switch_record_is_valid_against_the_schema() -> None:
    record = ModelSwitchRecord(
        worker="w@host:6066", at=NOW.isoformat(), deployment_revision=4, champion=V1,
        experiment=SwitchedExperiment(id="e1", challenger=V2, mode="ab", share=0.1, salt="s"),
        partitions=[SwitchedPartition(topic="client-activity", partition=2, from_offset=310,
                                      previous_revision=None)],
    )  # fmt: skip
    checked("profitability-audit", json.loads(record.to_json()))
