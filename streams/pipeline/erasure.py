"""The erase step: clear erased clients from the table, Redis and the predictions topic.

The control log's erased set only grows. Each tracked table partition remembers which
erased clients it has been cleared of; when the set grows (or a partition is taken over),
the step clears the rest: the client's row goes with a changelog tombstone, its Redis hash
is deleted, the predictions topic gets a tombstone, and an ``erasure`` audit record says
what this worker cleared. Later events of an erased client are dropped by the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime

from faust.types import RecordMetadata, TableT

from features.online_store import OnlineStore
from models_store.control.audit_records import ClearedRow, ErasureRecord, TopicPosition
from models_store.control.state import client_digest
from streams.control.active_models import ActiveModels, Erasure
from streams.kafka.topics import Topics
from streams.metrics import CLIENTS_ERASED
from streams.pipeline.client_table import delete_client
from streams.pipeline.row_cache import RowCache

log = logging.getLogger(__name__)


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


class ErasureStep:
    """Clears erased clients from the partitions this worker tracks, and reports it."""

    def __init__(
        self,
        states: TableT[str, bytes],
        store: OnlineStore,
        topics: Topics,
        models: ActiveModels,
        cache: RowCache,
        worker_id: str,
        table_partitions: int,
        report_window_s: float,
    ) -> None:
        self._states = states
        self._store = store
        self._topics = topics
        self._models = models
        self._cache = cache
        self._worker_id = worker_id
        self._table_partitions = table_partitions
        self._report_window_s = report_window_s
        # The erased clients each tracked partition has been cleared of.
        self._swept: dict[str, frozenset[str]] = {}
        self._erased_in_redis: frozenset[str] = frozenset()

    def track(self, key: str) -> None:
        """Start tracking a partition (``topic:number``): it is cleared at the next step."""
        self._swept[key] = frozenset()

    def forget(self, keys: Iterable[str]) -> None:
        """Stop tracking revoked partitions."""
        for key in keys:
            self._swept.pop(key, None)

    def due(self) -> bool:
        """Whether the control log erased a client that a tracked partition is not cleared of
        yet (the erased set only grows, so comparing sizes is enough)."""
        erased = len(self._models.erased)
        return any(len(swept) != erased for swept in self._swept.values())

    async def run(self) -> None:
        """Clear erased clients from every tracked partition not cleared of them yet.

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
        for client_id, partitions in swept_now.items():
            table = list(await asyncio.gather(*deleted.get(client_id, [])))
            erasure = erasures.get(client_id)
            if table or recent(erasure, time.time(), self._report_window_s):
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
                                self._worker_id, self._table_partitions,
                                datetime.now(UTC))  # fmt: skip
        await (await self._topics.audit.send(value=record.to_json()))
        log.info("erasure of control offset %s reported: %s in partitions %s",
                 record.offset, "found" if record.found else "nothing found", swept)  # fmt: skip
