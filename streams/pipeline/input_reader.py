"""Read this worker's share of the input topics in batches, beside Faust's per-event stream.

Faust's stream hands messages over one by one (a bare ``take_events`` agent tops out at
about 5,000 events/s on the 2-core reference machine, a plain aiokafka consumer at about
70,000), and it can skip messages at start-up or on a rebalance. So Faust keeps what it
is good at — the consumer group and its co-partitioned assignment, the table with its
changelog, recovery, the web server — while this reader fetches the input partitions
Faust assigned to the worker with a group-less aiokafka consumer, ``getmany`` at a time.

Where to start in each partition comes from the worker's own progress row in the table
(``streams.pipeline.progress``), written with every batch's states, not from Faust's
committed offsets, which are therefore not used for the input topics. The partitions
stay paused in Faust's own consumer; the agent subscribed to them (so that the assignor
co-partitions them with the changelog) only discards what slips through a resume.

The reader also keeps the worker's health current (``streams.worker_health``): which
partitions it reads or holds and why, where each stands, and whether the broker answers.
That last one comes from a probe: every second a ListOffsets request for the assigned
partitions (a metadata request when there are none) on the reader's own consumer, with a
short timeout. A real round trip to the leaders of exactly the partitions the worker
reads, which also gives the lag; aiokafka's fetcher swallows fetch errors (``getmany``
just returns nothing), a producer only fails when it sends, and a connection's state can
look fine on a dead or frozen broker, so none of those tells a quiet worker the truth.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.types import TP

from streams.control.active_models import ActiveModels
from streams.kafka.preflight import MAX_PARTITION_FETCH_BYTES
from streams.kafka.records import from_consumer_record
from streams.pipeline.batch import BatchProcessor
from streams.pipeline.mirror_rebuild import MirrorKeeper
from streams.pipeline.waiting_store import describe
from streams.readiness import recovery_waiting
from streams.settings import Settings
from streams.worker_health import HoldKind, WorkerHealth

log = logging.getLogger(__name__)
PROBE_INTERVAL_S = 1.0
# Generous for a loaded machine: a probe that times out makes /ready say 503.
PROBE_TIMEOUT_S = 4.0


class InputReader:
    """The batch loop: assignment sync, ``getmany``, ``BatchProcessor.process``."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        pipeline: BatchProcessor,
        models: ActiveModels,
        consumer_options: dict[str, Any],
        health: WorkerHealth,
        mirror: MirrorKeeper,
    ) -> None:
        self._app = app
        self._settings = settings
        self._pipeline = pipeline
        self._models = models
        self._options = consumer_options
        self._health = health
        self._mirror = mirror
        self._inputs = {settings.topics.activity, settings.topics.billing}
        self._assigned: frozenset[TP] = frozenset()
        # Held while a batch is processed; a revocation waits for it.
        self._busy = asyncio.Lock()
        self._revoked = False

    async def run(self) -> None:
        """Process batches for as long as the worker runs."""
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
            # The broker may hold a fetch this long waiting for data: no longer than a batch
            # may take to fill, or a trickle of events waits half a second (the default).
            fetch_max_wait_ms=max(1, int(self._settings.batch_within_s * 1000)),
            **self._options,
        )
        await consumer.start()
        probe = asyncio.create_task(self._probe_broker(consumer))
        try:
            while True:
                held = self._hold_reason()
                if held is not None:
                    self._health.hold(*held)
                    if self._may_erase() and self._pipeline.erasure_due():
                        # A deployment still loading (or failing to) holds the input, not
                        # an erasure.
                        async with self._busy:
                            await self._pipeline.erase()
                    await asyncio.sleep(0.05)
                    continue
                async with self._busy:
                    await self._process_one_batch(consumer)
        finally:
            probe.cancel()
            await consumer.stop()

    def _hold_reason(self) -> tuple[HoldKind, str] | None:
        """Why the input must not be read now (its kind and the reason), if it must not."""
        if self._revoked:
            return "rebalance", "rebalance"
        waiting = recovery_waiting(self._app)
        if waiting is not None:
            return ("table_recovery" if waiting == "table recovery" else "rebalance"), waiting
        # A new deployment is loaded before the next batch: the switch falls between two
        # batches.
        if not self._models.is_current():
            return "deployment", self._models.waiting_for() or "the deployment"
        return None

    def _may_erase(self) -> bool:
        """Whether the tracked partitions are this worker's to change (no rebalance, no
        recovery under way)."""
        return not self._revoked and recovery_waiting(self._app) is None

    async def _process_one_batch(self, consumer: AIOKafkaConsumer) -> None:
        await self._sync_assignment(consumer)
        if not self._assigned:
            self._health.release()
            await asyncio.sleep(0.1)
            return
        if self._mirror.due():
            # Between two batches, so no batch writes a client's hash meanwhile.
            self._health.hold("redis_mirror_rebuild", "redis mirror rebuild")
            await self._mirror.rebuild(stop=lambda: self._revoked)
            return
        self._health.release()
        if self._pipeline.erasure_due():
            # Without waiting for input: an erasure completes on its own, between two
            # batches, at most a fetch wait (PROFITSTREAM_BATCH_WITHIN_S) after it is folded.
            await self._pipeline.erase()
        fetched = await consumer.getmany(
            timeout_ms=int(self._settings.batch_within_s * 1000),
            max_records=self._settings.batch_max_events,
        )
        records = [from_consumer_record(r) for batch in fetched.values() for r in batch]
        if records:
            await self._pipeline.process(records)
        # The consumer's positions, not the last records + 1: they also move past what
        # holds no record (transaction markers), which would otherwise look like lag.
        positions = {}
        for tp in self._assigned:
            positions[(tp.topic, tp.partition)] = await consumer.position(
                TopicPartition(tp.topic, tp.partition)
            )
        self._health.advance(positions, batch=bool(records))

    async def _probe_broker(self, consumer: AIOKafkaConsumer) -> None:
        """Ask the broker for the assigned partitions' end offsets every second; record
        whether it answered (one WARNING when it stops, one INFO when it is back)."""
        failing_since = 0.0
        while True:
            partitions = [TopicPartition(t, p) for t, p in self._health.next_offsets]
            try:
                if partitions:
                    ends = await asyncio.wait_for(consumer.end_offsets(partitions),
                                                  PROBE_TIMEOUT_S)  # fmt: skip
                    self._health.probed({(tp.topic, tp.partition): int(end)
                                         for tp, end in ends.items()})  # fmt: skip
                else:
                    await asyncio.wait_for(consumer.topics(), PROBE_TIMEOUT_S)
            except (KafkaError, OSError, TimeoutError) as exc:
                error = describe(exc) if not isinstance(exc, TimeoutError) else (
                    f"no answer within {PROBE_TIMEOUT_S:.0f}s")  # fmt: skip
                if self._health.broker_failed(error):
                    failing_since = time.monotonic()
                    log.warning("the broker does not answer (%s): /ready says 503 until it does",
                                error)  # fmt: skip
            else:
                if self._health.broker_answered():
                    log.info("the broker answers again after %.1f s",
                             time.monotonic() - failing_since)  # fmt: skip
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def _sync_assignment(self, consumer: AIOKafkaConsumer) -> None:
        """Follow Faust's assignment: read what it gave this worker, from our own progress."""
        faust_consumer = self._app.consumer
        current = frozenset(tp for tp in faust_consumer.assignment() if tp.topic in self._inputs)
        # Faust resumes them after every recovery; its stream must not read them.
        faust_consumer.pause_partitions(current)
        if current == self._assigned:
            return
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in current]
        consumer.assign(partitions)
        beginnings = await consumer.beginning_offsets(partitions) if partitions else {}
        starts = {}
        for tp in partitions:
            start = self._pipeline.resume_partition(tp.topic, tp.partition, int(beginnings[tp]))
            consumer.seek(tp, start)
            starts[(tp.topic, tp.partition)] = start
        log.info("reading %d input partition(s): %s", len(partitions), sorted(map(str, current)))
        self._assigned = current
        self._health.assign(starts)
        self._mirror.assigned()

    async def on_revoked(self) -> None:
        """Stop before Faust moves partitions: wait for the batch in flight to be durable."""
        self._revoked = True
        async with self._busy:
            self._assigned = frozenset()
            self._health.assign({})

    def on_assigned(self) -> None:
        """A new assignment: resume once Faust's recovery says the tables are ready."""
        self._revoked = False
