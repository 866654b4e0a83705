"""A batch's writes, in the order that keeps replays exact.

First the outputs: dead letters and scoring failures to the DLQ, closed outcomes to the
monitoring topic, predictions to theirs and the shadow challenger's to the shadow topic,
all acknowledged before anything remembers them. Then the rows that remember them (table
and changelog), the progress rows after them, and the Redis mirror beside them. A row
saying "emitted" (or an outcome closed) for a record that died with the worker would keep
a replay from sending it again; a progress row ahead of its rows would skip them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field

from faust.types import RecordMetadata, TableT

from features.online_store import FieldValue, OnlineStore
from models_store.experiments.records import OutcomeRecord
from models_store.scoring.prediction import Prediction
from streams.kafka.dead_letters import send_scoring_failure, send_to_dlq
from streams.kafka.records import SourceRecord
from streams.kafka.topics import Topics
from streams.metrics import BATCH_PHASE_SECONDS, CLIENTS_MIRRORED
from streams.pipeline.client_row import ClientRow
from streams.pipeline.client_table import save_progress, save_row
from streams.pipeline.scoring_stage import ScoringFailure


@dataclass
class Outputs:
    """What a batch sends before it writes its rows."""

    dead: list[tuple[SourceRecord, str, str]] = field(default_factory=list)  # record, error, reason
    failures: list[ScoringFailure] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    predictions: dict[str, bytes] = field(default_factory=dict)  # client id -> payload
    shadow: list[Prediction] = field(default_factory=list)


@dataclass(frozen=True)
class StoredRow:
    """A changed row and the table partition it is written to."""

    row: ClientRow
    topic: str
    partition: int


class Emitter:
    """Sends a batch's outputs, then writes its rows, progress rows and Redis mirror."""

    def __init__(
        self, topics: Topics, states: TableT[str, bytes], store: OnlineStore, redis_ttl_s: int
    ) -> None:
        self._topics = topics
        self._states = states
        self._store = store
        self._redis_ttl_s = redis_ttl_s

    async def send(self, outputs: Outputs, pending: list[Awaitable[RecordMetadata]]) -> None:
        """Send the outputs; return once the broker has acknowledged them and ``pending``
        (earlier sends of the batch)."""
        sends = list(pending)
        for record, error, reason in outputs.dead:
            sends.append(await send_to_dlq(self._topics.dlq, record, error, reason))
        for failure in outputs.failures:
            sends.append(await send_scoring_failure(
                self._topics.dlq, failure.client.row.client_id, failure.client.features,
                failure.client.as_of, failure.error,
            ))  # fmt: skip
        for outcome in outputs.outcomes:
            key = (outcome.experiment_id or outcome.model).encode()
            sends.append(await self._topics.monitoring.send(key=key, value=outcome.to_json()))
        for client_id, payload in outputs.predictions.items():
            sends.append(await self._topics.predictions.send(key=client_id.encode(), value=payload))
        for prediction in outputs.shadow:
            sends.append(await self._topics.shadow.send(
                key=prediction.client_id.encode(), value=prediction.to_json()))  # fmt: skip
        waiting = time.perf_counter()
        await asyncio.gather(*sends)
        BATCH_PHASE_SECONDS.labels(phase="outputs_acknowledged").observe(
            time.perf_counter() - waiting
        )

    async def persist(
        self,
        rows: list[StoredRow],
        through: Mapping[tuple[str, int], int],
        mirrored: Mapping[str, Mapping[str, FieldValue]],
    ) -> None:
        """Write the rows, then each input partition's progress (``through``: its highest
        offset processed), and the Redis mirror; return once the broker and Redis have
        acknowledged all of it."""
        sends = [save_row(self._states, s.row, s.topic, s.partition) for s in rows]
        # After the rows: the changelog keeps each partition's order, so a progress row
        # never lands without the rows of the same input partition before it.
        for (topic, partition), offset in through.items():
            sends.append(save_progress(self._states, topic, partition, offset))
        # Redis and the broker acknowledge concurrently; the batch ends when both have. The
        # store (streams.pipeline.waiting_store) waits out a Redis outage: the batch stays unacked.
        waiting = time.perf_counter()
        await asyncio.gather(self._store.write_many(mirrored, ttl_s=self._redis_ttl_s or None),
                             *sends)  # fmt: skip
        BATCH_PHASE_SECONDS.labels(phase="acknowledged").observe(time.perf_counter() - waiting)
        CLIENTS_MIRRORED.inc(len(mirrored))
