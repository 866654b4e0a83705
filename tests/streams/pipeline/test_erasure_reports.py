"""The pieces of an erasure report, without a broker: which client a folded command erased,
the worker's ``erasure`` audit record, when it reports, and how the CLI reads the records
(complete once they cover every table partition)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from faust.types.tuples import TP, RecordMetadata

from models_store.control.commands import Role
from models_store.control.fold import ControlFold, ControlRecord
from models_store.control.rejections import ALREADY_ERASED
from models_store.control.signing import Keyring, Principal, issue, new_key
from models_store.control.state import client_digest
from streams.cli.control_client import erasure_command, erasure_summary, unswept
from streams.control.active_models import Erasure, erased_client
from streams.pipeline.erasure import erasure_record, recent
from tests.services.record_schemas import checked

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADMIN = Principal("alice", Role.ADMIN, bytes.fromhex(new_key()))


def _metadata(topic: str, partition: int, offset: int) -> RecordMetadata:
    return RecordMetadata(topic, partition, TP(topic, partition), offset)


def test_the_fold_names_the_erased_client_once() -> None:
    fold = ControlFold(Keyring({ADMIN.name: ADMIN}))
    outcomes = []
    for offset in range(2):
        command = issue("erase_client", {"client_id": "client-42"}, ADMIN, issued_at=NOW,
                        expected_revision=None)  # fmt: skip
        record = ControlRecord(offset, json.dumps(command).encode(), int(NOW.timestamp() * 1000))
        outcomes.append(fold.apply(record))
    first, second = outcomes
    assert erased_client(first) == "client-42"
    # The second is rejected with the message the CLI turns into "already erased".
    assert (erased_client(second), second.message) == (None, ALREADY_ERASED)


def test_an_erasure_record_names_the_client_by_digest_and_every_store() -> None:
    written = erasure_record(
        "client-42", Erasure(7, NOW.timestamp()), [0, 1],
        [_metadata("app-client-state-changelog", 1, 310)], 1,
        _metadata("predictions", 3, 55), "w@host:6066", 4, NOW + timedelta(seconds=0.2),
    )  # fmt: skip
    assert b"client-42" not in written.to_json()
    assert checked("profitability-audit", json.loads(written.to_json())) == {
        "schema_version": 1, "kind": "erasure", "offset": 7,
        "client_sha256": client_digest("client-42"), "worker": "w@host:6066",
        "at": "2026-11-01T12:00:00.200000+00:00", "found": True, "swept": [0, 1],
        "table_partitions": 4, "table": [{"partition": 1, "changelog_offset": 310}],
        "redis_deleted": 1, "predictions_tombstone": {"partition": 3, "offset": 55},
    }  # fmt: skip
    nothing = erasure_record("c", None, [2], [], 0, _metadata("p", 0, 1), "w", 4, NOW)
    assert (nothing.found, nothing.offset) == (False, None)


def test_nothing_found_is_reported_only_while_the_erasure_is_recent() -> None:
    erasure = Erasure(3, 1000.0)
    assert recent(erasure, 1000.0 + 299, 300)
    assert not recent(erasure, 1000.0 + 301, 300)
    assert not recent(None, 1000.0, 300)


def _report(worker: str, swept: list[int], found: bool = False) -> dict[str, Any]:
    table = [{"partition": swept[0], "changelog_offset": 9}] if found else []
    return {"kind": "erasure", "offset": 5, "worker": worker, "found": found, "swept": swept,
            "table_partitions": 4, "table": table, "redis_deleted": int(found),
            "predictions_tombstone": {"partition": 2, "offset": 11}}  # fmt: skip


def test_the_cli_waits_until_every_table_partition_answered() -> None:
    assert unswept([]) is None
    first = _report("a", [0, 1])
    assert unswept([first]) == [2, 3]
    assert unswept([first, _report("b", [2, 3])]) == []


def test_the_summary_names_what_was_erased_where() -> None:
    assert erasure_summary([_report("a", [0, 1]), _report("b", [2, 3])]) is None
    said = erasure_summary([_report("a", [0, 1]), _report("b", [2, 3], found=True)])
    assert said == (
        "table partition 2 (changelog tombstone at offset 9, acknowledged), Redis hash "
        "deleted (1), predictions tombstone sent (partition 2, offset 11) by b"
    )


def test_an_erased_client_is_found_in_the_trail_by_its_digest() -> None:
    command: dict[str, Any] = {"kind": "command", "type": "erase_client", "outcome": "accepted",
               "args": {"client_sha256": client_digest("client-42")}, "offset": 3}  # fmt: skip
    refused = {**command, "outcome": "rejected", "offset": 4}
    trail: list[dict[str, Any]] = [refused, {"kind": "model_switch"}, command]
    assert erasure_command(trail, "client-42") == command
    assert erasure_command(trail, "client-43") is None
