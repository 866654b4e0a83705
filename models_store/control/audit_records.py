"""The records of `profitability-audit`: who changed what, and what workers did about it
(schema version 1).

Three kinds share the topic, told apart by ``kind``:
- ``command``: one control record folded: the command as shown (an erased client only by
  digest), accepted or rejected and why, the control state before and after. Written by
  the one worker that runs the audit agent.
- ``model_switch``: a worker starts scoring some input partitions with a new deployment
  revision, from the offset named (which model scored an event is answerable from these).
- ``erasure``: what one worker erased of one client: the table partitions it swept, the
  changelog tombstones, the Redis hash, the predictions-topic tombstone.

``docs/schemas/profitability-audit.schema.json`` is generated from the classes here.
Records are written as JSON with non-ASCII escaped: a command may carry any string,
including a lone surrogate, and its audit record must still be writable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from features.bounded_json import KIB, size_text
from models_store.control.fold import FoldResult
from models_store.control.rejections import Rejection
from models_store.control.state import ControlState, client_digest
from models_store.experiments.design import Experiment

MAX_AUDIT_BYTES = 64 * KIB  # a larger audit record names the command by digest
# ``reason`` of a record written after the full one could not be (``minimal_command_record``).
AUDIT_FAILED: Final = "audit_failed"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> bytes:
        """JSON bytes for the topic, non-ASCII escaped (NaN and infinities as null)."""
        return json.dumps(self.model_dump(mode="json")).encode()


class ControlSummary(_Record):
    """The folded control state as an audit record shows it (erased clients as a count)."""

    revision: int = Field(description="accepted commands so far")
    deployment_revision: int = Field(description="revision of the last deployment change")
    champion: str | None
    experiment: Experiment | None
    previous: list[str] = Field(description="earlier champions, most recent last")
    registered: list[str]
    retired: list[str]
    erased_clients: int


class CommandDigest(_Record):
    """Stands for a command too large to show: its size and sha256."""

    size: int
    sha256: str
    why: str


class CommandRecord(_Record):
    """One control record folded: who, what, when, the outcome and the states."""

    schema_version: Literal[1] = 1
    kind: Literal["command"] = "command"
    offset: int = Field(description="of the control record")
    record_time: str = Field(description="ISO-8601 broker time of the control record")
    command_id: str | None
    type: str | None = Field(description="the command type as sent (JSON text if not a string)")
    issued_by: str | None
    issued_at: str | None
    args: dict[str, Any] = Field(description="as sent; erase_client shows client_sha256 only")
    outcome: Literal["accepted", "rejected"]
    reason: Rejection | Literal["audit_failed"] | None = Field(
        description="why it was rejected; audit_failed: this is the minimal record"
    )
    message: str
    before: ControlSummary
    after: ControlSummary
    command_digest: CommandDigest | None = None
    fold_reason: Rejection | None = Field(
        default=None, description="in a minimal record: the fold's rejection reason"
    )


class SwitchedExperiment(_Record):
    """The experiment a model switch scores with."""

    id: str
    challenger: str
    mode: Literal["ab", "shadow"]
    share: float
    salt: str


class SwitchedPartition(_Record):
    """An input partition scored with the new revision from ``from_offset`` on."""

    topic: str
    partition: int
    from_offset: int
    previous_revision: int | None


class ModelSwitchRecord(_Record):
    """A worker switches input partitions to a deployment revision."""

    schema_version: Literal[1] = 1
    kind: Literal["model_switch"] = "model_switch"
    worker: str
    at: str = Field(description="ISO-8601 time of the switch")
    deployment_revision: int
    champion: str | None
    experiment: SwitchedExperiment | None
    partitions: list[SwitchedPartition]


class ClearedRow(_Record):
    """A table row deleted: its partition and its changelog tombstone's offset."""

    partition: int
    changelog_offset: int


class TopicPosition(_Record):
    """Where a record was acknowledged."""

    partition: int
    offset: int


class ErasureRecord(_Record):
    """What one worker erased of one client, named by digest only. An erasure is complete
    once the records of its command together sweep every table partition."""

    schema_version: Literal[1] = 1
    kind: Literal["erasure"] = "erasure"
    offset: int | None = Field(description="of the erase_client command")
    client_sha256: str
    worker: str
    at: str = Field(description="ISO-8601 time of the report")
    found: bool = Field(description="whether this worker held the client's state")
    swept: list[int] = Field(description="table partitions cleared of the client")
    table_partitions: int
    table: list[ClearedRow]
    redis_deleted: int = Field(description="Redis hashes deleted")
    predictions_tombstone: TopicPosition


AuditRecord = Annotated[
    CommandRecord | ModelSwitchRecord | ErasureRecord, Field(discriminator="kind")
]


def control_summary(state: ControlState) -> ControlSummary:
    """The state as audit records show it."""
    deployment = state.deployment
    return ControlSummary(
        revision=state.revision,
        deployment_revision=deployment.revision,
        champion=deployment.champion,
        experiment=deployment.experiment,
        previous=list(state.previous),
        registered=sorted(state.registered),
        retired=sorted(state.retired),
        erased_clients=len(state.erased),
    )


def command_record(outcome: FoldResult) -> CommandRecord:
    """The audit record of a folded control record.

    Any document makes a valid record: a field of the wrong type is shown as JSON text,
    ``args`` that are not an object under ``not_an_object``. A record over
    ``MAX_AUDIT_BYTES`` shows the command as its size and sha256 instead (the DLQ keeps a
    rejected command's bytes).
    """
    command = outcome.command or {}
    shown = {name: _text(command.get(name)) for name in _SHOWN_FIELDS}
    record = CommandRecord(
        offset=outcome.offset,
        record_time=datetime.fromtimestamp(outcome.record_time, UTC).isoformat(),
        command_id=shown["command_id"],
        type=shown["type"],
        issued_by=shown["issued_by"],
        issued_at=shown["issued_at"],
        args=_shown_args(command.get("type"), command.get("args")),
        outcome="accepted" if outcome.accepted else "rejected",
        reason=outcome.reason,
        message=outcome.message,
        before=control_summary(outcome.before),
        after=control_summary(outcome.after),
    )
    size = len(record.to_json())
    if size <= MAX_AUDIT_BYTES:
        return record
    why = (
        f"the audit record would be {size_text(size)}; at most {size_text(MAX_AUDIT_BYTES)} allowed"
    )
    return record.model_copy(update={
        **{name: _short(value) for name, value in shown.items()},
        "args": {},
        "message": _short(outcome.message, 1024),
        "command_digest": CommandDigest(size=outcome.size, sha256=outcome.sha256, why=why),
    })  # fmt: skip


def minimal_command_record(
    offset: int, timestamp_s: float, outcome: FoldResult, error: str
) -> CommandRecord:
    """An audit record that shows nothing of the command: its offset, the fold's verdict
    and states, and why the full record could not be written."""
    return CommandRecord(
        offset=offset,
        record_time=datetime.fromtimestamp(timestamp_s, UTC).isoformat(),
        command_id=None,
        type=None,
        issued_by=None,
        issued_at=None,
        args={},
        # The fold's verdict stands: an accepted command did change the deployment.
        outcome="accepted" if outcome.accepted else "rejected",
        reason=AUDIT_FAILED,
        message=f"the audit record could not be written: {error}"[:1024],
        before=control_summary(outcome.before),
        after=control_summary(outcome.after),
        fold_reason=outcome.reason,
    )


_SHOWN_FIELDS = ("command_id", "type", "issued_by", "issued_at")


def _text(value: Any) -> str | None:
    """A field meant to be a string: itself, or its JSON when something else was sent."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _short(value: str | None, limit: int = 128) -> str | None:
    return value if value is None or len(value) <= limit else f"{value[:limit]}..."


def _shown_args(kind: Any, args: Any) -> dict[str, Any]:
    """The command's args for the trail; an erased client only as a digest."""
    if args is None:
        return {}
    if kind == "erase_client":
        if isinstance(args, dict) and "client_id" in args:
            return {"client_sha256": client_digest(str(args["client_id"]))}
        if not isinstance(args, dict):  # it may still name the client: never shown
            return {"args_sha256": client_digest(json.dumps(args, sort_keys=True))}
    return dict(args) if isinstance(args, dict) else {"not_an_object": args}


def audit_schema_file() -> tuple[str, str]:
    """(file name, JSON Schema text) of the audit topic's records."""
    schema = TypeAdapter(AuditRecord).json_schema()
    schema["title"] = "profitability-audit record"
    schema["description"] = "One record of the audit topic; `kind` names its schema."
    return "profitability-audit.schema.json", json.dumps(schema, indent=2,
                                                        sort_keys=True) + "\n"  # fmt: skip
