"""The audit trail of control commands: one record per command on `profitability-audit`.

Every worker folds the control log, but only one writes what happened to each command:
the worker Faust's consumer group gives the control topic's single partition. It waits
until its own fold has reached the command, then publishes the fold's outcome — who,
what, when, the state before and after, accepted or why not — and forwards a rejected
command to the DLQ with the reason in its headers. Delivery is at least once (the
group's committed offset moves after both sends): a record repeated after a crash
carries the same control offset, which identifies it.
"""

from __future__ import annotations

import json
from typing import Any

import faust
from faust.types import EventT, StreamT

from streams.control_log import ControlLog
from streams.dead_letters import send_to_dlq
from streams.source_records import SourceRecord, headers_of
from streams.topics import Topics


def register_audit_trail(app: faust.App, topics: Topics, control: ControlLog) -> None:
    """Attach the agent that audits each control command (on one worker of the group)."""

    @app.agent(topics.control, name="control-audit")
    async def audit_commands(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await audit_one(event)

    async def audit_one(event: EventT[Any]) -> None:
        message = event.message
        outcome = await control.outcome(message.offset)
        record = json.dumps(outcome.audit()).encode()
        sent = [await topics.audit.send(key=message.key, value=record)]
        if not outcome.accepted:
            rejected = SourceRecord(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value or b"",
                headers=headers_of(message.headers),
            )
            reason = f"control_{outcome.reason}"
            sent.append(await send_to_dlq(topics.dlq, rejected, outcome.message, reason))
        for future in sent:
            await future
