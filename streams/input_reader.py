"""Read this worker's share of the input topics in batches, beside Faust's per-event stream.

Faust's stream hands messages over one by one (a bare ``take_events`` agent tops out at
about 5,000 events/s on the 2-core reference machine, a plain aiokafka consumer at about
70,000), and it can skip messages at start-up or on a rebalance. So Faust keeps what it
is good at — the consumer group and its co-partitioned assignment, the table with its
changelog, recovery, the web server — while this reader fetches the input partitions
Faust assigned to the worker with a group-less aiokafka consumer, ``getmany`` at a time.

Where to start in each partition comes from the worker's own progress row in the table
(``streams.partition_progress``), written with every batch's states, not from Faust's
committed offsets, which are therefore not used for the input topics. The partitions
stay paused in Faust's own consumer; the agent subscribed to them (so that the assignor
co-partitions them with the changelog) only discards what slips through a resume.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from streams.active_models import ActiveModels
from streams.feature_pipeline import FeaturePipeline
from streams.readiness import is_ready
from streams.settings import Settings
from streams.source_records import from_consumer_record

log = logging.getLogger(__name__)


class InputReader:
    """The batch loop: assignment sync, ``getmany``, ``FeaturePipeline.process``."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        pipeline: FeaturePipeline,
        models: ActiveModels,
        consumer_options: dict[str, Any],
    ) -> None:
        self._app = app
        self._settings = settings
        self._pipeline = pipeline
        self._models = models
        self._options = consumer_options
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
            max_partition_fetch_bytes=4 << 20,
            # The broker may hold a fetch this long waiting for data: no longer than a batch
            # may take to fill, or a trickle of events waits half a second (the default).
            fetch_max_wait_ms=max(1, int(self._settings.batch_within_s * 1000)),
            **self._options,
        )
        await consumer.start()
        try:
            while True:
                # A new deployment is loaded before the next batch: the switch falls between
                # two batches.
                if self._revoked or not is_ready(self._app) or not self._models.is_current():
                    await asyncio.sleep(0.05)
                    continue
                async with self._busy:
                    await self._process_one_batch(consumer)
        finally:
            await consumer.stop()

    async def _process_one_batch(self, consumer: AIOKafkaConsumer) -> None:
        await self._sync_assignment(consumer)
        if not self._assigned:
            await asyncio.sleep(0.1)
            return
        fetched = await consumer.getmany(
            timeout_ms=int(self._settings.batch_within_s * 1000),
            max_records=self._settings.batch_max_events,
        )
        records = [from_consumer_record(r) for batch in fetched.values() for r in batch]
        if records:
            await self._pipeline.process(records)

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
        for tp in partitions:
            start = self._pipeline.resume_partition(tp.topic, tp.partition, int(beginnings[tp]))
            consumer.seek(tp, start)
        log.info("reading %d input partition(s): %s", len(partitions), sorted(map(str, current)))
        self._assigned = current

    async def on_revoked(self) -> None:
        """Stop before Faust moves partitions: wait for the batch in flight to be durable."""
        self._revoked = True
        async with self._busy:
            self._assigned = frozenset()

    def on_assigned(self) -> None:
        """A new assignment: resume once Faust's recovery says the tables are ready."""
        self._revoked = False
