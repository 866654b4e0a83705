"""One batch of input records, from parse to acknowledgement: ``BatchProcessor``.

It only sequences the steps; each has its own module. Records of both input topics
(co-partitioned by client_id) come in batches:

1. track new partitions, run the erase step if the control log erased a client
   (``erasure``), pick the batch's deployment and switch partitions to it (``model_switch``);
2. per partition run, re-read any offsets missing before it (``kafka.gap_reader``), then
   parse and apply each record to its client's row (``features.state``): bad ones are
   dead-lettered, duplicates, replays and late events change nothing;
3. compute each changed client's features once, rescore them in one model call per model
   (``scoring_stage``), close the horizons of tracked predictions and track the new ones
   (``models_store.experiments.tracking``);
4. send the outputs and wait for them, then write the rows, progress rows and the Redis
   mirror and wait for those (``emitter``).

``process`` returns only once everything of the batch is acknowledged.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from faust.types import TP, RecordMetadata, TableT

from features.definitions import compute_features
from features.events import EventStream, InvalidEventError, parse_event
from features.online_store import OnlineStore
from features.serving import online_fields
from features.state import ApplyResult, apply_event, compact, record_offset
from models_store.experiments.outcomes import persistence_index
from models_store.experiments.records import OutcomeRecord
from models_store.experiments.tracking import (
    add_money_to_tracked,
    close_horizons,
    start_tracking,
)
from models_store.labels import margin_parts
from models_store.scoring.prediction import Prediction
from streams.control.active_models import ActiveDeployment, ActiveModels
from streams.kafka.gap_reader import GapReader
from streams.kafka.records import SourceRecord, partition_key
from streams.kafka.topics import Topics
from streams.metrics import (
    BATCH_EVENTS,
    BATCH_PHASE_SECONDS,
    BATCH_SECONDS,
    EVENT_OUTCOMES,
    EVENTS_CONSUMED,
    OFFSETS_REREAD,
    OUTCOMES_JOINED,
)
from streams.pipeline.client_row import ClientRow
from streams.pipeline.client_table import load_progress, load_row
from streams.pipeline.emitter import Emitter, Outputs, StoredRow
from streams.pipeline.erasure import ErasureStep
from streams.pipeline.model_switch import ModelSwitch
from streams.pipeline.progress import PartitionProgress, next_expected
from streams.pipeline.row_cache import RowCache
from streams.pipeline.scoring_stage import Rescore, Scored, ScoringStage
from streams.settings import Settings

ERASED = "erased"  # the outcome of an event of an erased client: dropped, counted


def _runs_by_partition(records: list[SourceRecord]) -> list[list[SourceRecord]]:
    """Split a batch into runs of consecutive records of the same partition, in order."""
    runs: list[list[SourceRecord]] = []
    for record in records:
        if runs and (runs[-1][-1].topic, runs[-1][-1].partition) == (
            record.topic,
            record.partition,
        ):
            runs[-1].append(record)
        else:
            runs.append([record])
    return runs


@dataclass
class _Changed:
    row: ClientRow
    topic: str
    partition: int
    # The newest event applied in this batch (by event time): what triggers a rescore.
    event_id: str | None = None
    event_time: float = float("-inf")
    produced_ms: int | None = None


@dataclass
class _Batch:
    now: datetime
    active: ActiveDeployment | None = None
    erased: frozenset[str] = frozenset()
    changed: dict[str, _Changed] = field(default_factory=dict)
    # Sends (the model switch's) that must reach the broker before the rows are written.
    pending: list[Awaitable[RecordMetadata]] = field(default_factory=list)
    # Highest offset processed per (topic, partition) in this batch.
    through: dict[tuple[str, int], int] = field(default_factory=dict)
    outputs: Outputs = field(default_factory=Outputs)
    consumed: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


class BatchProcessor:
    """Takes batches of input records through every step to their acknowledgement."""

    def __init__(
        self,
        settings: Settings,
        topics: Topics,
        states: TableT[str, bytes],
        store: OnlineStore,
        gaps: GapReader,
        models: ActiveModels,
        scoring: ScoringStage,
    ) -> None:
        self._settings = settings
        self._states = states
        self._gaps = gaps
        self._scoring = scoring
        self._progress = PartitionProgress()
        self.worker_id = settings.worker_id
        self._stream_of_topic: dict[str, EventStream] = {
            settings.topics.activity: "activity",
            settings.topics.billing: "billing",
        }
        self._max_future = timedelta(seconds=settings.max_future_s)
        # Decoded rows of recently changed clients. Only this worker writes the
        # partitions it is assigned, so the cache stays true until they are revoked.
        self._cache = RowCache(settings.state_cache_clients)
        self._models = models
        self._switch = ModelSwitch(states, topics, models, gaps, self.worker_id)
        self._erasure = ErasureStep(
            states, store, topics, models, self._cache, self.worker_id,
            settings.topic_partitions, settings.control_max_age_s,
        )  # fmt: skip
        self._emitter = Emitter(topics, states, store, settings.redis_ttl_s)

    def forget(self, revoked: set[TP]) -> None:
        """Stop tracking revoked partitions; progress and rows are re-read from the table."""
        keys = {partition_key(tp.topic, tp.partition) for tp in revoked}
        self._progress.forget(keys)
        self._switch.forget(keys)
        self._erasure.forget(keys)
        self._cache.clear()

    def resume_partition(self, topic: str, partition: int, beginning: int) -> int:
        """Start tracking a partition where its progress row says; return that offset.

        ``beginning`` is the partition's first retained offset.
        """
        start = next_expected(load_progress(self._states, topic, partition), beginning)
        key = partition_key(topic, partition)
        self._progress.start(key, start)
        self._switch.track(topic, partition)
        self._erasure.track(key)
        return start

    def erasure_due(self) -> bool:
        """Whether the control log erased a client a tracked partition still holds."""
        return self._erasure.due()

    async def erase(self) -> None:
        """Run the erase step (``streams.pipeline.erasure``) between two batches."""
        await self._erasure.run()

    async def process(self, records: list[SourceRecord]) -> None:
        """Apply one batch, re-reading first any offsets missing before its records."""
        started = time.perf_counter()
        batch = _Batch(now=datetime.now(UTC))
        try:
            await self._start(batch, records)
            for chunk in _runs_by_partition(records):
                await self._apply_run(batch, chunk)
            BATCH_PHASE_SECONDS.labels(phase="apply").observe(time.perf_counter() - started)
            await self._finish(batch)
        except BaseException:
            # Cached rows may hold half a batch that never reached the table.
            self._cache.clear()
            raise
        # Counted per batch: a labelled Prometheus counter costs microseconds per call.
        for topic, count in batch.consumed.items():
            EVENTS_CONSUMED.labels(topic=topic).inc(count)
        for outcome, count in batch.outcomes.items():
            EVENT_OUTCOMES.labels(outcome=outcome).inc(count)
        BATCH_EVENTS.observe(len(records))
        BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _start(self, batch: _Batch, records: list[SourceRecord]) -> None:
        """Track the batch's partitions, erase, pick its deployment and switch to it."""
        partitions = dict.fromkeys((record.topic, record.partition) for record in records)
        for topic, partition in partitions:
            if not self._progress.knows(partition_key(topic, partition)):
                beginning = await self._gaps.beginning(topic, partition)
                self.resume_partition(topic, partition, beginning)
        if self._erasure.due():
            await self._erasure.run()
        # After the erase step: every client it cleared is in here, and its events dropped.
        batch.erased = self._models.erased
        first_offsets = {tp: self._progress.expected[partition_key(*tp)] for tp in partitions}
        batch.active, batch.pending = await self._switch.switch(first_offsets, batch.now)

    async def _apply_run(self, batch: _Batch, run: list[SourceRecord]) -> None:
        """Apply consecutive records of one partition, re-reading first any hole before them."""
        first = run[0]
        tp = first.topic_partition
        if run[-1].offset - first.offset + 1 != len(run):
            # Holes inside the run (rare): check record by record.
            for record in run:
                await self._apply_run(batch, [record])
            return
        missing = self._progress.gap(tp, first.offset)
        if missing:
            repaired = await self._gaps.read(first.topic, first.partition, missing)
            OFFSETS_REREAD.labels(topic=first.topic).inc(len(repaired))
            for earlier in repaired:
                self._apply(batch, earlier, tp)
            batch.consumed[first.topic] += len(repaired)
        for record in run:
            self._apply(batch, record, tp)
        last = run[-1].offset
        self._progress.advance(tp, last)
        key = (first.topic, first.partition)
        batch.through[key] = max(batch.through.get(key, -1), last)
        batch.consumed[first.topic] += len(run)

    def _apply(self, batch: _Batch, record: SourceRecord, tp: str) -> None:
        try:
            event = parse_event(
                record.value,
                self._stream_of_topic[record.topic],
                key=record.key,
                now=batch.now,
                max_future=self._max_future,
            )
        except InvalidEventError as exc:
            batch.outputs.dead.append((record, str(exc), exc.reason))
            return
        if event.client_id in batch.erased:
            batch.outcomes[ERASED] += 1
            return
        entry = batch.changed.get(event.client_id)
        if entry is None:
            row = self._cache.get(event.client_id)
            if row is None:
                row = load_row(self._states, event.client_id, record.topic, record.partition)
            entry = batch.changed[event.client_id] = _Changed(row, record.topic, record.partition)
        row = entry.row
        if not record_offset(row.state, tp, record.offset):
            batch.outcomes[ApplyResult.REPLAYED.value] += 1
            return
        lateness = self._settings.allowed_lateness_s
        outcome = apply_event(row.state, event, lateness)
        batch.outcomes[outcome.value] += 1
        if outcome is ApplyResult.APPLIED and row.tracked:
            row.tracked = add_money_to_tracked(row.tracked, event.timestamp, *margin_parts(event))
        if outcome is ApplyResult.APPLIED and event.timestamp >= entry.event_time:
            entry.event_id, entry.event_time = event.event_id, event.timestamp
            entry.produced_ms = record.timestamp_ms
        if outcome is ApplyResult.LATE:
            error = (
                f"late: event_time {event.event_time.isoformat()} is more than "
                f"{lateness:.0f}s before the client's latest event on {record.topic}"
            )
            batch.outputs.dead.append((record, error, "late"))

    async def _finish(self, batch: _Batch) -> None:
        """Features, scores and outcomes of the changed clients; then the writes."""
        began = time.perf_counter()
        vectors = {
            client_id: compute_features(entry.row.state, entry.row.state.watermark)
            for client_id, entry in batch.changed.items()
            if entry.row.state.watermark is not None
        }
        # Scoring updates each row's memo of its last emission: before the row is saved.
        scored = await self._predict(batch, vectors)
        BATCH_PHASE_SECONDS.labels(phase="features_and_scores").observe(time.perf_counter() - began)
        outputs = batch.outputs
        outputs.failures = scored.failures
        outputs.outcomes = self._track_outcomes(batch, scored, vectors)
        outputs.predictions = {p.client_id: p.to_json() for p in scored.predictions}
        outputs.shadow = scored.shadow
        await self._emitter.send(outputs, batch.pending)
        # Once acknowledged: the worker's realised accuracy counts what the topic holds.
        self._scoring.accuracy.add_outcomes(outputs.outcomes)
        rows = []
        mirrored: dict[str, dict[str, str]] = {}
        for client_id, entry in batch.changed.items():
            compact(entry.row.state, self._settings.allowed_lateness_s)
            rows.append(StoredRow(entry.row, entry.topic, entry.partition))
            self._cache.put(entry.row)
            if client_id in vectors:
                mirrored[client_id] = online_fields(entry.row.state, vectors[client_id])
                if client_id in outputs.predictions:
                    mirrored[client_id]["prediction"] = outputs.predictions[client_id].decode()
        await self._emitter.persist(rows, batch.through, mirrored)

    def _track_outcomes(
        self, batch: _Batch, scored: Scored, vectors: dict[str, list[float]]
    ) -> list[OutcomeRecord]:
        """Close the tracked predictions whose horizon ended (their outcome records), then
        track the new predictions of clients that have none tracked (beside a shadow
        challenger, the champion's count as its experiment's champion arm)."""
        lateness = self._settings.allowed_lateness_s
        closed = []
        for entry in batch.changed.values():
            row = entry.row
            row.tracked, outcomes = close_horizons(row.tracked, row.state.watermarks, lateness)
            closed.extend(outcomes)
        experiment = None if batch.active is None else batch.active.deployment.experiment
        beside_shadow = None
        if experiment is not None and experiment.mode == "shadow":
            beside_shadow = (experiment.experiment_id, "champion")
        # The champion's target decides the naive forecast an outcome is compared with.
        champion = None if batch.active is None else batch.active.champion
        index = persistence_index("margin_ratio" if champion is None else champion.card.target)
        emitted: dict[str, Prediction] = {p.client_id: p for p in scored.predictions}
        shadow: dict[str, Prediction] = {p.client_id: p for p in scored.shadow}
        for client_id in emitted.keys() | shadow.keys():
            row = batch.changed[client_id].row
            persistence = vectors[client_id][index]
            row.tracked = start_tracking(
                row.tracked, emitted.get(client_id), shadow.get(client_id), persistence,
                beside_shadow, scored.notes,
            )  # fmt: skip
        OUTCOMES_JOINED.inc(len(closed))
        return closed

    async def _predict(self, batch: _Batch, vectors: dict[str, list[float]]) -> Scored:
        """Rescore the clients an applied event changed (duplicates and late events change
        nothing) and return the predictions worth emitting."""
        if batch.active is None or batch.active.champion is None:
            return Scored([], [])
        rescore = []
        for client_id, entry in batch.changed.items():
            as_of = entry.row.state.watermark
            if entry.event_id is None or as_of is None:
                continue
            rescore.append(Rescore(entry.row, vectors[client_id], as_of, entry.event_id,
                                   entry.event_time, entry.produced_ms))  # fmt: skip
        return await self._scoring.run(rescore, batch.active)
