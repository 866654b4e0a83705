"""The feature agent: input topics -> client states (table + changelog) -> Redis.

Thin glue around the pure functions of ``features``: parse, apply, compact, compute.
One agent reads both input topics, which are co-partitioned by client_id, in batches;
each changed client is written once per batch to the table and once to Redis (one
pipelined round trip per batch). A batch is acked, and so its offsets become
committable, only once its table writes and dead letters are on the broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.types import TP, RecordMetadata, StreamT, TableT

from features.events import EventStream, InvalidEventError, parse_event
from features.online_store import OnlineStore
from features.serving import online_fields
from features.state import ClientState, Outcome, apply_event, compact, record_offset
from streams.client_table import load_progress, load_state, save_progress, save_state
from streams.dead_letters import send_to_dlq
from streams.gap_reader import GapReader
from streams.metrics import (
    BATCH_EVENTS,
    BATCH_SECONDS,
    CLIENTS_MIRRORED,
    EVENT_OUTCOMES,
    EVENTS_CONSUMED,
    OFFSETS_REREAD,
)
from streams.partition_progress import PartitionProgress, next_expected
from streams.settings import Settings
from streams.source_records import SourceRecord, from_event
from streams.topics import Topics


@dataclass
class _Changed:
    state: ClientState
    topic: str
    partition: int


@dataclass
class _Batch:
    now: datetime
    changed: dict[str, _Changed] = field(default_factory=dict)
    # Sends (DLQ, changelog) that must reach the broker before the batch is acked.
    pending: list[Awaitable[RecordMetadata]] = field(default_factory=list)
    # Highest offset processed per (topic, partition) in this batch.
    through: dict[tuple[str, int], int] = field(default_factory=dict)


class FeaturePipeline:
    """Applies batches of input records to the client table, the Redis mirror and the DLQ."""

    def __init__(
        self,
        settings: Settings,
        topics: Topics,
        states: TableT[str, bytes],
        store: OnlineStore,
        gaps: GapReader,
    ) -> None:
        self._settings = settings
        self._topics = topics
        self._states = states
        self._store = store
        self._gaps = gaps
        self._progress = PartitionProgress()
        self._stream_of_topic: dict[str, EventStream] = {
            settings.topics.activity: "activity",
            settings.topics.billing: "billing",
        }
        self._max_future = timedelta(seconds=settings.max_future_s)

    def forget(self, revoked: set[TP]) -> None:
        """Stop tracking revoked partitions; their progress is re-read from the table."""
        self._progress.forget({f"{tp.topic}:{tp.partition}" for tp in revoked})

    async def process(self, records: list[SourceRecord]) -> None:
        """Apply one batch, re-reading first any offsets the stream skipped."""
        started = time.perf_counter()
        batch = _Batch(now=datetime.now(UTC))
        for record in records:
            missing = await self._missing_before(record)
            if missing:
                repaired = await self._gaps.read(record.topic, record.partition, missing)
                OFFSETS_REREAD.labels(topic=record.topic).inc(len(repaired))
                for earlier in repaired:
                    await self._apply(batch, earlier)
            await self._apply(batch, record)
        await self._finish(batch)
        BATCH_EVENTS.observe(len(records))
        BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _missing_before(self, record: SourceRecord) -> range:
        tp = record.topic_partition
        if not self._progress.knows(tp):
            stored = load_progress(self._states, record.topic, record.partition)
            beginning = await self._gaps.beginning(record.topic, record.partition)
            self._progress.start(tp, next_expected(stored, beginning))
        return self._progress.gap(tp, record.offset)

    async def _apply(self, batch: _Batch, record: SourceRecord) -> None:
        EVENTS_CONSUMED.labels(topic=record.topic).inc()
        self._progress.advance(record.topic_partition, record.offset)
        key = (record.topic, record.partition)
        batch.through[key] = max(batch.through.get(key, -1), record.offset)
        try:
            event = parse_event(
                record.value,
                self._stream_of_topic[record.topic],
                key=record.key,
                now=batch.now,
                max_future=self._max_future,
            )
        except InvalidEventError as exc:
            batch.pending.append(await send_to_dlq(self._topics.dlq, record, str(exc), exc.reason))
            return
        entry = batch.changed.get(event.client_id)
        if entry is None:
            state = load_state(self._states, event.client_id, record.topic, record.partition)
            entry = batch.changed[event.client_id] = _Changed(state, record.topic, record.partition)
        if not record_offset(entry.state, record.topic_partition, record.offset):
            EVENT_OUTCOMES.labels(outcome=Outcome.REPLAYED.value).inc()
            return
        lateness = self._settings.allowed_lateness_s
        outcome = apply_event(entry.state, event, lateness)
        EVENT_OUTCOMES.labels(outcome=outcome.value).inc()
        if outcome is Outcome.LATE:
            error = (
                f"late: event_time {event.event_time.isoformat()} is more than "
                f"{lateness:.0f}s before the client's latest event on {record.topic}"
            )
            batch.pending.append(await send_to_dlq(self._topics.dlq, record, error, "late"))

    async def _finish(self, batch: _Batch) -> None:
        mirrored = {}
        for client_id, entry in batch.changed.items():
            compact(entry.state, self._settings.allowed_lateness_s)
            batch.pending.append(
                save_state(self._states, entry.state, entry.topic, entry.partition)
            )
            if entry.state.watermark is not None:
                mirrored[client_id] = online_fields(entry.state)
        # After the states: the changelog keeps each partition's order, so a progress row
        # never lands without the states of the same input partition before it.
        for (topic, partition), offset in batch.through.items():
            batch.pending.append(save_progress(self._states, topic, partition, offset))
        await self._store.write_many(mirrored, ttl_s=self._settings.redis_ttl_s or None)
        CLIENTS_MIRRORED.inc(len(mirrored))
        # Acked (and so committable) only once the new states and dead letters are durable.
        await asyncio.gather(*batch.pending)


def register_agents(app: faust.App, settings: Settings, pipeline: FeaturePipeline) -> None:
    """Attach the feature agent, which feeds ``pipeline``, to ``app``."""
    inputs = app.topic(
        settings.topics.activity,
        settings.topics.billing,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
        internal=True,
    )

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        pipeline.forget(set(args[0]))

    app.on_partitions_revoked.connect(on_revoked)

    @app.agent(inputs, name="client-features")
    async def client_features(stream: StreamT[bytes]) -> None:
        # take_events (not in StreamT's type) keeps each event, so its partition is known.
        async for events in stream.take_events(  # type: ignore[attr-defined]
            settings.batch_max_events, within=settings.batch_within_s
        ):
            await pipeline.process([from_event(event) for event in events])
