"""The audit trail of control commands: one record per command on `profitability-audit`.

Every worker folds the control log, but only one writes what happened to each command:
the worker Faust's consumer group gives the control topic's single partition. It waits
until its own fold has reached the command, then publishes the fold's outcome — who,
what, when, the state before and after, accepted or why not — and forwards a rejected
command to the DLQ with the reason in its headers. Delivery is at least once (the
group's committed offset moves after both sends): a record repeated after a crash
carries the same control offset, which identifies it.

No record stops the trail: if auditing one fails, a minimal record with the reason
``audit_failed`` is written instead (and a command the fold did not accept still goes to
the DLQ), and the agent moves on. A raise would make Faust restart the agent, which
stalls auditing for seconds and fails again on the same command.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import EventT, StreamT
from faust.types.tuples import Message

from models_store.control.audit_records import command_record, minimal_command_record
from models_store.control.fold import FoldResult
from streams.control.log import ControlLog
from streams.kafka.dead_letters import send_to_dlq
from streams.kafka.records import SourceRecord, headers_of
from streams.kafka.topics import Topics

log = logging.getLogger(__name__)


def register_audit_trail(app: faust.App, topics: Topics, control: ControlLog) -> None:
    """Attach the agent that audits each control command (on one worker of the group)."""

    @app.agent(topics.control, name="control-audit")
    async def audit_commands(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await audit_one(event)

    async def audit_one(event: EventT[Any]) -> None:
        message = event.message
        outcome = await control.outcome(message.offset)
        try:
            await _audit(topics, message, outcome)
        except Exception as exc:  # one command must never stop the trail
            error = _one_line(exc)
            log.warning("control offset %d: audit failed (%s); writing a minimal record",
                        message.offset, error)  # fmt: skip
            await _audit_failed(topics, message, outcome, error)


async def _audit(topics: Topics, message: Message, outcome: FoldResult) -> None:
    """Send the audit record and, for a rejected command, the DLQ copy; wait for both."""
    record = command_record(outcome).to_json()
    sent = [await topics.audit.send(key=message.key, value=record)]
    if not outcome.accepted:
        reason = f"control_{outcome.reason}"
        sent.append(await send_to_dlq(topics.dlq, _source(message), outcome.message, reason))
    for future in sent:
        await future


async def _audit_failed(topics: Topics, message: Message, outcome: FoldResult, error: str) -> None:
    """The minimal audit record and the DLQ copy, each tried on its own."""
    record = minimal_command_record(message.offset, message.timestamp, outcome, error)
    try:
        await (await topics.audit.send(key=message.key, value=record.to_json()))
    except Exception as exc:
        log.error("control offset %d: no audit record could be written: %s",
                  message.offset, _one_line(exc))  # fmt: skip
    if outcome.accepted:
        return
    try:
        reason = f"control_{outcome.reason}"
        await (await send_to_dlq(topics.dlq, _source(message), outcome.message, reason))
    except Exception as exc:
        log.error("control offset %d: the rejected command could not be dead-lettered: %s",
                  message.offset, _one_line(exc))  # fmt: skip


def _source(message: Message) -> SourceRecord:
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value or b"",
        headers=headers_of(message.headers),
    )


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
