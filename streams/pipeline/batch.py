"""A batch of input records -> client states (table + changelog) -> scores -> predictions
and Redis; bad ones -> DLQ.

Thin glue around the pure functions of ``features`` and ``models_store``: parse, apply,
compact, compute, score. Records of both input topics (co-partitioned by client_id) come
in batches; each changed client is rescored once per batch (one model call for all of
them), written once to the table and once to Redis (one pipelined round trip per batch).
``process`` returns only once the batch's predictions, table writes, progress rows and
dead letters are acknowledged by the broker.

Each batch is scored by one deployment (``streams.control.active_models``). When it differs from
the one a partition was last scored with, the partition switches at the batch's first
offset: the switch is written to the table (``#deployment`` rows) and announced on the
audit topic (``model_switch``), so every prediction's model can be traced to an offset.
"""

from __future__ import annotations

import asyncio
import logging
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
from features.state import ApplyResult, ClientState, apply_event, compact, record_offset
from models_store.control.audit_records import (
    ClearedRow,
    ErasureRecord,
    ModelSwitchRecord,
    SwitchedExperiment,
    SwitchedPartition,
    TopicPosition,
)
from models_store.control.state import client_digest
from models_store.experiments.outcomes import (
    PERSISTENCE_INDEX,
    add_money_to_state,
    close_horizons,
    track,
)
from models_store.experiments.records import OutcomeRecord
from models_store.labels import margin_parts
from streams.control.active_models import ActiveDeployment, ActiveModels, Erasure
from streams.kafka.dead_letters import send_scoring_failure, send_to_dlq
from streams.kafka.gap_reader import GapReader
from streams.kafka.records import SourceRecord, partition_key
from streams.kafka.topics import Topics
from streams.metrics import (
    BATCH_EVENTS,
    BATCH_PHASE_SECONDS,
    BATCH_SECONDS,
    CLIENTS_ERASED,
    CLIENTS_MIRRORED,
    EVENT_OUTCOMES,
    EVENTS_CONSUMED,
    MODEL_SWITCHES,
    OFFSETS_REREAD,
    OUTCOMES_JOINED,
)
from streams.pipeline.client_table import (
    delete_client,
    load_deployment,
    load_progress,
    load_state,
    save_deployment,
    save_progress,
    save_state,
)
from streams.pipeline.progress import PartitionProgress, next_expected
from streams.pipeline.scoring_stage import Rescore, Scored, ScoringStage
from streams.pipeline.state_cache import StateCache
from streams.settings import Settings


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
    state: ClientState
    topic: str
    partition: int
    # The newest event applied in this batch (by event time): what triggers a rescore.
    event_id: str | None = None
    event_time: float = float("-inf")
    produced_ms: int | None = None


log = logging.getLogger(__name__)
LAGGING_WARNING_S = 10.0
ERASED = "erased"  # the outcome of an event of an erased client: dropped, counted


@dataclass
class _Batch:
    now: datetime
    active: ActiveDeployment | None = None
    erased: frozenset[str] = frozenset()
    changed: dict[str, _Changed] = field(default_factory=dict)
    # Sends (DLQ, changelog) that must reach the broker before the batch is acked.
    pending: list[Awaitable[RecordMetadata]] = field(default_factory=list)
    # Highest offset processed per (topic, partition) in this batch.
    through: dict[tuple[str, int], int] = field(default_factory=dict)
    # Rejected records: (record, error, reason), sent to the DLQ when the batch ends.
    dead: list[tuple[SourceRecord, str, str]] = field(default_factory=list)
    consumed: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


def erasure_record(
    client_id: str,
    erasure: Erasure | None,
    swept: list[int],
    table: list[RecordMetadata],
    redis_deleted: int,
    tombstone: RecordMetadata,
    worker: str,
    table_partitions: int,
    now: datetime,
) -> ErasureRecord:
    """The audit record of what one worker erased of one client (named by digest only):
    the table partitions it cleared (``swept``, of ``table_partitions``), the rows it
    deleted there (their acknowledged changelog tombstones), the Redis hashes, the
    predictions-topic tombstone. The erasure is complete once the records of a command
    together cover every table partition."""
    return ErasureRecord(
        offset=None if erasure is None else erasure.offset,  # of the erase_client command
        client_sha256=client_digest(client_id),
        worker=worker,
        at=now.isoformat(),
        found=bool(table),
        swept=swept,
        table_partitions=table_partitions,
        table=[ClearedRow(partition=m.partition, changelog_offset=m.offset) for m in table],
        redis_deleted=redis_deleted,
        predictions_tombstone=TopicPosition(partition=tombstone.partition, offset=tombstone.offset),
    )


def recent(erasure: Erasure | None, now_s: float, window_s: float) -> bool:
    """Whether an erasure is recent enough to report even when nothing was found (its
    issuer may be waiting for every partition's answer); older ones are reported only
    when found, so a restart or a rebalance does not report the whole log again."""
    return erasure is not None and now_s - erasure.record_time <= window_s


class FeaturePipeline:
    """Applies batches of input records to the client table, the Redis mirror and the DLQ."""

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
        self._topics = topics
        self._states = states
        self._store = store
        self._gaps = gaps
        self._models = models
        self._scoring = scoring
        self._progress = PartitionProgress()
        # The deployment revision each tracked partition was last scored with.
        self._revisions: dict[str, int | None] = {}
        # The erased clients each tracked partition has been cleared of.
        self._swept: dict[str, frozenset[str]] = {}
        self._erased_in_redis: frozenset[str] = frozenset()
        self.worker_id = settings.worker_id
        self._stream_of_topic: dict[str, EventStream] = {
            settings.topics.activity: "activity",
            settings.topics.billing: "billing",
        }
        self._max_future = timedelta(seconds=settings.max_future_s)
        # Decoded states of recently changed clients. Only this worker writes the
        # partitions it is assigned, so the cache stays true until they are revoked.
        self._cache = StateCache(settings.state_cache_clients)

    def forget(self, revoked: set[TP]) -> None:
        """Stop tracking revoked partitions; progress and states are re-read from the table."""
        keys = {partition_key(tp.topic, tp.partition) for tp in revoked}
        self._progress.forget(keys)
        for key in keys:
            self._revisions.pop(key, None)
            self._swept.pop(key, None)
        self._cache.clear()

    def resume_partition(self, topic: str, partition: int, beginning: int) -> int:
        """Start tracking a partition where its progress row says; return that offset.

        ``beginning`` is the partition's first retained offset.
        """
        start = next_expected(load_progress(self._states, topic, partition), beginning)
        key = partition_key(topic, partition)
        self._progress.start(key, start)
        self._revisions[key] = load_deployment(self._states, topic, partition)
        self._swept[key] = frozenset()
        return start

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
            # Cached states may hold half a batch that never reached the table.
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
        """Track the batch's partitions, pick its deployment and switch partitions to it."""
        partitions = dict.fromkeys((record.topic, record.partition) for record in records)
        for topic, partition in partitions:
            if not self._progress.knows(partition_key(topic, partition)):
                beginning = await self._gaps.beginning(topic, partition)
                self.resume_partition(topic, partition, beginning)
        if self.erasure_due():
            await self.erase()
        # After the erase step: every client it cleared is in here, and its events dropped.
        batch.erased = self._models.erased
        seen = [self._revisions.get(partition_key(*tp)) for tp in partitions]
        newest = max((revision for revision in seen if revision is not None), default=-1)
        batch.active = await self._deployment_at_least(newest)
        switched = []
        revision = batch.active.revision
        for (topic, partition), previous in zip(partitions, seen, strict=True):
            if previous == revision:
                continue
            key = partition_key(topic, partition)
            first = self._progress.expected[key]
            batch.pending.append(save_deployment(self._states, topic, partition, revision, first))
            self._revisions[key] = revision
            switched.append(SwitchedPartition(topic=topic, partition=partition, from_offset=first,
                                              previous_revision=previous))  # fmt: skip
        if switched:
            MODEL_SWITCHES.inc(len(switched))
            batch.pending.append(await self._topics.audit.send(value=self._switch_record(
                batch.active, switched, batch.now)))  # fmt: skip

    def erasure_due(self) -> bool:
        """Whether the control log erased a client that a tracked partition is not cleared of
        yet (the erased set only grows, so comparing sizes is enough)."""
        erased = len(self._models.erased)
        return any(len(swept) != erased for swept in self._swept.values())

    async def erase(self) -> None:
        """The erase step: clear erased clients from every tracked partition not cleared of
        them yet (the state goes with a changelog tombstone; later events are dropped).

        For each client it found, or whose erasure is recent, the worker also deletes the
        Redis hash (when found), sends a tombstone to the predictions topic, and reports which
        partitions it cleared with an ``erasure`` record on the audit topic, once the
        broker and Redis have acknowledged every step. Run between two batches (the
        reader's lock), so no batch writes the client meanwhile.
        """
        erasures = await self._models.erasures()
        erased = self._models.erased  # no await since: the same records as ``erasures``
        swept_now: dict[str, set[int]] = {}
        deleted: dict[str, list[Awaitable[RecordMetadata]]] = {}
        for key, swept in self._swept.items():
            if len(swept) == len(erased):
                continue
            topic, _, number = key.rpartition(":")
            for client_id in erased - swept:
                swept_now.setdefault(client_id, set()).add(int(number))
                sent = delete_client(self._states, client_id, topic, int(number))
                self._cache.discard(client_id)
                if sent is not None:
                    deleted.setdefault(client_id, []).append(sent)
                    CLIENTS_ERASED.inc()
                    log.info("erased a client's state from %s", key)
        window = self._settings.control_max_age_s
        for client_id, partitions in swept_now.items():
            table = list(await asyncio.gather(*deleted.get(client_id, [])))
            erasure = erasures.get(client_id)
            if table or recent(erasure, time.time(), window):
                await self._report(client_id, erasure, sorted(partitions), table)
        for key in self._swept:
            self._swept[key] = erased
        if erased != self._erased_in_redis:
            # Hashes of clients erased before this worker started (or took a partition over).
            await self._store.delete_many(erased - self._erased_in_redis)
            self._erased_in_redis = erased

    async def _report(
        self, client_id: str, erasure: Erasure | None, swept: list[int], table: list[RecordMetadata]
    ) -> None:
        """Delete the client's Redis hash (if this worker held its state, so wrote the hash),
        send its predictions-topic tombstone (so a compacted predictions topic forgets it),
        then write the ``erasure`` audit record."""
        # The others' DEL would race the holder's for the count; any hash left (a holder
        # that died between its steps) goes with the hashes of every erased client below.
        redis_deleted = await self._store.delete_many([client_id]) if table else 0
        tombstone = await (await self._topics.predictions.send(key=client_id.encode(),
                                                               value=None))  # fmt: skip
        record = erasure_record(client_id, erasure, swept, table, redis_deleted, tombstone,
                                self.worker_id, self._settings.topic_partitions,
                                datetime.now(UTC))  # fmt: skip
        await (await self._topics.audit.send(value=record.to_json()))
        log.info("erasure of control offset %s reported: %s in partitions %s",
                 record.offset, "found" if record.found else "nothing found", swept)  # fmt: skip

    async def _deployment_at_least(self, revision: int) -> ActiveDeployment:
        """The current deployment, once it is at least ``revision`` (the newest a partition
        of the batch was scored with, maybe by a worker whose control log is ahead).

        Never a silent stall: if the whole control log is folded and has no such revision,
        the log was truncated or recreated, and it decides all the same (an ERROR says so).
        """
        waited = 0.0
        while True:
            active = self._models.current
            if active is not None and self._models.is_current():
                if active.revision >= revision:
                    return active
                if waited >= LAGGING_WARNING_S:
                    end = await self._gaps.end(self._models.control_topic, 0)
                    if self._models.folded_offset >= end:
                        log.error(
                            "a partition was scored with deployment revision %d, but the "
                            "control log (%d records, all folded) ends at revision %d: it was "
                            "truncated or recreated; scoring with what it deploys (%s)",
                            revision, end, active.revision, active.deployment.champion,
                        )  # fmt: skip
                        return active
            if waited >= LAGGING_WARNING_S:
                log.warning("waiting for deployment revision %d (this worker has %s)",
                            revision, None if active is None else active.revision)  # fmt: skip
                waited = 0.0
            await asyncio.sleep(0.05)
            waited += 0.05

    def _switch_record(
        self, active: ActiveDeployment, partitions: list[SwitchedPartition], now: datetime
    ) -> bytes:
        deployment = active.deployment
        experiment = deployment.experiment
        return ModelSwitchRecord(
            worker=self.worker_id,
            at=now.isoformat(),
            deployment_revision=deployment.revision,
            champion=deployment.champion,
            experiment=None if experiment is None else SwitchedExperiment(
                id=experiment.experiment_id, challenger=experiment.challenger,
                mode=experiment.mode, share=experiment.share, salt=experiment.salt,
            ),
            partitions=partitions,
        ).to_json()  # fmt: skip

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
            batch.dead.append((record, str(exc), exc.reason))
            return
        if event.client_id in batch.erased:
            batch.outcomes[ERASED] += 1
            return
        entry = batch.changed.get(event.client_id)
        if entry is None:
            state = self._cache.get(event.client_id)
            if state is None:
                state = load_state(self._states, event.client_id, record.topic, record.partition)
            entry = batch.changed[event.client_id] = _Changed(state, record.topic, record.partition)
        if not record_offset(entry.state, tp, record.offset):
            batch.outcomes[ApplyResult.REPLAYED.value] += 1
            return
        lateness = self._settings.allowed_lateness_s
        outcome = apply_event(entry.state, event, lateness)
        batch.outcomes[outcome.value] += 1
        if outcome is ApplyResult.APPLIED and (entry.state.tracked or entry.state.shadow_tracked):
            add_money_to_state(entry.state, event.timestamp, *margin_parts(event))
        if outcome is ApplyResult.APPLIED and event.timestamp >= entry.event_time:
            entry.event_id, entry.event_time = event.event_id, event.timestamp
            entry.produced_ms = record.timestamp_ms
        if outcome is ApplyResult.LATE:
            error = (
                f"late: event_time {event.event_time.isoformat()} is more than "
                f"{lateness:.0f}s before the client's latest event on {record.topic}"
            )
            batch.dead.append((record, error, "late"))

    async def _finish(self, batch: _Batch) -> None:
        for record, error, reason in batch.dead:
            batch.pending.append(await send_to_dlq(self._topics.dlq, record, error, reason))
        began = time.perf_counter()
        vectors = {
            client_id: compute_features(entry.state, entry.state.watermark)
            for client_id, entry in batch.changed.items()
            if entry.state.watermark is not None
        }
        # Scoring updates each client's memo of its last emission: before the state is saved.
        scored = await self._predict(batch, vectors)
        predictions = scored.predictions
        for failure in scored.failures:
            batch.pending.append(await send_scoring_failure(
                self._topics.dlq, failure.client.state.client_id, failure.client.features,
                failure.client.as_of, failure.error,
            ))  # fmt: skip
        BATCH_PHASE_SECONDS.labels(phase="features_and_scores").observe(time.perf_counter() - began)
        for outcome in self._join_outcomes(batch, scored, vectors):
            key = (outcome.experiment_id or outcome.model).encode()
            batch.pending.append(
                await self._topics.monitoring.send(key=key, value=outcome.to_json())
            )
        latest = {p.client_id: p.to_json() for p in predictions}  # serialised once
        for client_id, payload in latest.items():
            sent = await self._topics.predictions.send(key=client_id.encode(), value=payload)
            batch.pending.append(sent)
        for prediction in scored.shadow:
            sent = await self._topics.shadow.send(
                key=prediction.client_id.encode(), value=prediction.to_json()
            )
            batch.pending.append(sent)
        # The outputs are acknowledged before the states that remember them are written: a
        # state saying "emitted" (or an outcome closed) whose record died with the worker
        # would keep a replay from sending it again.
        waiting = time.perf_counter()
        await asyncio.gather(*batch.pending)
        batch.pending.clear()
        BATCH_PHASE_SECONDS.labels(phase="outputs_acknowledged").observe(
            time.perf_counter() - waiting
        )
        mirrored = {}
        for client_id, entry in batch.changed.items():
            compact(entry.state, self._settings.allowed_lateness_s)
            batch.pending.append(
                save_state(self._states, entry.state, entry.topic, entry.partition)
            )
            self._cache.put(client_id, entry.state)
            if client_id in vectors:
                mirrored[client_id] = online_fields(entry.state, vectors[client_id])
                if client_id in latest:
                    mirrored[client_id]["prediction"] = latest[client_id].decode()
        # After the states: the changelog keeps each partition's order, so a progress row
        # never lands without the states of the same input partition before it.
        for (topic, partition), offset in batch.through.items():
            batch.pending.append(save_progress(self._states, topic, partition, offset))
        # Redis and the broker acknowledge concurrently; the batch ends when both have. The
        # store (streams.pipeline.waiting_store) waits out a Redis outage: the batch stays unacked.
        waiting = time.perf_counter()
        await asyncio.gather(
            self._store.write_many(mirrored, ttl_s=self._settings.redis_ttl_s or None),
            *batch.pending,
        )
        BATCH_PHASE_SECONDS.labels(phase="acknowledged").observe(time.perf_counter() - waiting)
        CLIENTS_MIRRORED.inc(len(mirrored))

    def _join_outcomes(
        self, batch: _Batch, scored: Scored, vectors: dict[str, list[float]]
    ) -> list[OutcomeRecord]:
        """Close the tracked predictions whose horizon ended (their outcome records), then
        track the new predictions of clients that have none tracked (beside a shadow
        challenger, the champion's count as its experiment's champion arm)."""
        lateness = self._settings.allowed_lateness_s
        closed = []
        for entry in batch.changed.values():
            closed.extend(close_horizons(entry.state, lateness))
        experiment = None if batch.active is None else batch.active.deployment.experiment
        beside_shadow = None
        if experiment is not None and experiment.mode == "shadow":
            beside_shadow = (experiment.experiment_id, "champion")
        for prediction in scored.predictions:
            state = batch.changed[prediction.client_id].state
            if state.tracked is None:
                persistence = vectors[prediction.client_id][PERSISTENCE_INDEX]
                state.tracked = track(prediction, persistence, beside_shadow).memo()
        for prediction in scored.shadow:
            state = batch.changed[prediction.client_id].state
            if state.shadow_tracked is None:
                persistence = vectors[prediction.client_id][PERSISTENCE_INDEX]
                state.shadow_tracked = track(prediction, persistence).memo()
        OUTCOMES_JOINED.inc(len(closed))
        return closed

    async def _predict(self, batch: _Batch, vectors: dict[str, list[float]]) -> Scored:
        """Rescore the clients an applied event changed (duplicates and late events change
        nothing) and return the predictions worth emitting."""
        if batch.active is None or batch.active.champion is None:
            return Scored([], [])
        rescore = []
        for client_id, entry in batch.changed.items():
            as_of = entry.state.watermark
            if entry.event_id is None or as_of is None:
                continue
            rescore.append(Rescore(entry.state, vectors[client_id], as_of, entry.event_id,
                                   entry.event_time, entry.produced_ms))  # fmt: skip
        return await self._scoring.run(rescore, batch.active)
