"""Every worker's own reading of `profitability-control`: the whole log, folded in order.

A group-less aiokafka consumer reads the topic's single partition from its first offset
for as long as the worker runs and feeds each record to ``ControlFold`` (see
``models_store.deployment``), so every worker reaches the same state at the same offset
without sharing anything but the log. Faust's GlobalTable would do the same in principle,
but it has an open multi-worker bug (faust-streaming #283).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from models_store.deployment import ControlFold, ControlRecord, ControlState, Deployment, Outcome
from streams.metrics import CONTROL_COMMANDS

log = logging.getLogger(__name__)


class ControlLog:
    """The folded control log of this worker, kept current by ``run``."""

    def __init__(self, topic: str, fold: ControlFold, consumer_options: dict[str, Any]) -> None:
        self.topic = topic
        self.fold = fold
        self._options = consumer_options
        self._outcomes: dict[int, Outcome] = {}
        self._advanced = asyncio.Condition()
        self.caught_up = asyncio.Event()

    @property
    def state(self) -> ControlState:
        """The state after the last record folded."""
        return self.fold.state

    async def run(self) -> None:
        """Fold the log from its start, then each new command as it arrives."""
        if not self.fold.keyring.principals:
            log.warning("no PROFITSTREAM_CONTROL_KEYS: every control command will be rejected")
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False, auto_offset_reset="earliest", **self._options
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            # The worker creates its topics as it starts: wait for this one to exist.
            while self.topic not in await consumer.topics():  # noqa: ASYNC110 (polls the broker)
                await asyncio.sleep(0.2)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = int((await consumer.end_offsets([tp]))[tp])
            while True:
                if not self.caught_up.is_set() and self.fold.next_offset >= end:
                    log.info("control log folded through offset %d: %s", end,
                             self.state.deployment)  # fmt: skip
                    self.caught_up.set()
                fetched = await consumer.getmany(tp, timeout_ms=500, max_records=500)
                for record in fetched.get(tp, []):
                    await self._fold(ControlRecord(record.offset, record.value or b"",
                                                   int(record.timestamp)))  # fmt: skip
        finally:
            await consumer.stop()

    async def _fold(self, record: ControlRecord) -> None:
        outcome = self.fold.apply(record)
        self._outcomes[record.offset] = outcome
        CONTROL_COMMANDS.labels(
            outcome="accepted" if outcome.accepted else f"rejected_{outcome.reason}"
        ).inc()
        level = logging.INFO if outcome.accepted else logging.WARNING
        log.log(level, "control offset %d %s: %s", record.offset,
                "accepted" if outcome.accepted else f"rejected ({outcome.reason})",
                outcome.message)  # fmt: skip
        async with self._advanced:
            self._advanced.notify_all()

    async def outcome(self, offset: int) -> Outcome:
        """What the fold did with the record at ``offset`` (waits until it is folded)."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: offset < self.fold.next_offset)
        return self._outcomes[offset]

    async def deployment_after(self, known: Deployment | None) -> Deployment:
        """The folded deployment once it differs from ``known``."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: self.state.deployment != known)
        return self.state.deployment

    async def reached(self, deployment_revision: int) -> None:
        """Wait until the folded deployment is at least ``deployment_revision``."""
        async with self._advanced:
            await self._advanced.wait_for(
                lambda: self.state.deployment.revision >= deployment_revision
            )
