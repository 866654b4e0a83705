"""The feature agent: input topics -> client states (table + changelog) -> Redis.

Thin glue around the pure functions of ``features``: parse, apply, compact, compute.
One agent reads both input topics, which are co-partitioned by client_id, in batches;
each changed client is written once per batch to the table and once to Redis (one
pipelined round trip per batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import faust
from faust.types import EventT, StreamT, TableT

from features.events import EventStream, InvalidEventError, parse_event
from features.online_store import OnlineStore
from features.serving import online_fields
from features.state import ClientState, Outcome, apply_event, compact, record_offset
from streams.client_table import load_state, save_state
from streams.dead_letters import send_to_dlq
from streams.metrics import (
    BATCH_EVENTS,
    BATCH_SECONDS,
    CLIENTS_MIRRORED,
    EVENT_OUTCOMES,
    EVENTS_CONSUMED,
)
from streams.settings import Settings
from streams.topics import Topics


@dataclass
class _Changed:
    state: ClientState
    last_event: EventT[bytes]


def register_agents(
    app: faust.App,
    settings: Settings,
    topics: Topics,
    states: TableT[str, bytes],
    store: OnlineStore,
) -> None:
    """Attach the feature agent to ``app``."""
    stream_of_topic: dict[str, EventStream] = {
        settings.topics.activity: "activity",
        settings.topics.billing: "billing",
    }
    inputs = app.topic(
        settings.topics.activity,
        settings.topics.billing,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
        internal=True,
    )
    lateness = settings.allowed_lateness_s
    max_future = timedelta(seconds=settings.max_future_s)

    async def process(events: list[EventT[bytes]]) -> None:
        started = time.perf_counter()
        now = datetime.now(UTC)
        changed: dict[str, _Changed] = {}
        for event in events:
            message = event.message
            EVENTS_CONSUMED.labels(topic=message.topic).inc()
            try:
                parsed = parse_event(
                    message.value or b"",
                    stream_of_topic[message.topic],
                    key=message.key,
                    now=now,
                    max_future=max_future,
                )
            except InvalidEventError as exc:
                await send_to_dlq(topics.dlq, message, str(exc), exc.reason)
                continue
            entry = changed.get(parsed.client_id)
            if entry is None:
                entry = _Changed(load_state(states, parsed.client_id, event), event)
                changed[parsed.client_id] = entry
            entry.last_event = event
            if not record_offset(
                entry.state, f"{message.topic}:{message.partition}", message.offset
            ):
                EVENT_OUTCOMES.labels(outcome=Outcome.REPLAYED.value).inc()
                continue
            outcome = apply_event(entry.state, parsed, lateness)
            EVENT_OUTCOMES.labels(outcome=outcome.value).inc()
            if outcome is Outcome.LATE:
                error = (
                    f"late: event_time {parsed.event_time.isoformat()} is more than "
                    f"{lateness:.0f}s before the client's latest event on {message.topic}"
                )
                await send_to_dlq(topics.dlq, message, error, "late")
        mirrored = {}
        for client_id, entry in changed.items():
            compact(entry.state, lateness)
            save_state(states, entry.state, entry.last_event)
            if entry.state.watermark is not None:
                mirrored[client_id] = online_fields(entry.state)
        await store.write_many(mirrored, ttl_s=settings.redis_ttl_s or None)
        CLIENTS_MIRRORED.inc(len(mirrored))
        BATCH_EVENTS.observe(len(events))
        BATCH_SECONDS.observe(time.perf_counter() - started)

    @app.agent(inputs, name="client-features")
    async def client_features(stream: StreamT[bytes]) -> None:
        # take_events (not in StreamT's type) keeps each event, so its partition is known.
        async for events in stream.take_events(  # type: ignore[attr-defined]
            settings.batch_max_events, within=settings.batch_within_s
        ):
            await process(list(events))
