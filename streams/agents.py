"""Faust agents: thin glue from topics to tables, the online store and other topics.

For now one placeholder agent counts client-activity events per client, in the
RocksDB-backed table, and mirrors the count to Redis; the feature pipeline
replaces it.
"""

from __future__ import annotations

import faust
from faust.types import EventT, StreamT, TableT

from features.online_store import OnlineStore
from streams.dead_letters import send_to_dlq
from streams.metrics import EVENTS_CONSUMED
from streams.topics import Topics


def client_id_of(key: bytes | None) -> str:
    """The client id a message is keyed by, or ``ValueError`` saying why there is none."""
    if not key:
        raise ValueError("message has no key; input topics are keyed by client_id")
    try:
        client_id = key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("message key is not UTF-8; input topics are keyed by client_id") from exc
    if not client_id.strip():
        raise ValueError("message key is blank; input topics are keyed by client_id")
    return client_id


def register_agents(
    app: faust.App, topics: Topics, event_counts: TableT[str, int], store: OnlineStore
) -> None:
    """Attach the agents to ``app``."""

    @app.agent(topics.activity, name="count-activity")
    async def count_activity(stream: StreamT[bytes]) -> None:
        event: EventT[bytes]
        async for event in stream.events():
            EVENTS_CONSUMED.labels(topic=event.message.topic).inc()
            try:
                client_id = client_id_of(event.message.key)
            except ValueError as exc:
                await send_to_dlq(topics.dlq, event.message, str(exc))
                continue
            count = event_counts[client_id] + 1
            event_counts[client_id] = count
            await store.write(client_id, {"event_count": count})
