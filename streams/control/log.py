"""Every worker's own reading of `profitability-control`: the whole log, folded in order.

A group-less aiokafka consumer reads the topic's single partition from its first offset
for as long as the worker runs and feeds each record to ``ControlFold`` (see
``models_store.control.fold``), so every worker reaches the same state at the same offset
without sharing anything but the log. Faust's GlobalTable would do the same in principle,
but it has an open multi-worker bug (faust-streaming #283).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from models_store.control.fold import ControlFold, ControlRecord, FoldResult
from models_store.control.rejections import Rejection
from models_store.control.state import ControlState, Deployment
from streams.kafka.preflight import MAX_PARTITION_FETCH_BYTES
from streams.metrics import CONTROL_COMMANDS

log = logging.getLogger(__name__)


def headless_log_problem(topic: str, beginning: int) -> str:
    """What is wrong with a control log whose first offset is not 0, and how to fix it."""
    return (
        f"the control log {topic} starts at offset {beginning}: its head was deleted by "
        "retention, so no worker can fold it; point PROFITSTREAM_TOPICS__CONTROL at a new "
        "topic (the worker creates it kept forever) and deploy again with "
        "`profitstream models deploy REF`"
    )


def _skipped(record: ControlRecord, state: ControlState, exc: Exception) -> FoldResult:
    """A rejection for a record the fold raised on (what ``ControlFold.apply`` returns itself)."""
    message = f"the fold failed on it: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return FoldResult(record.offset, record.timestamp_ms / 1000, False, Rejection.INTERNAL,
                      message[:300], None, state, state, len(record.value),
                      hashlib.sha256(record.value).hexdigest())  # fmt: skip


class ControlLog:
    """The folded control log of this worker, kept current by ``run``."""

    def __init__(self, topic: str, fold: ControlFold, consumer_options: dict[str, Any]) -> None:
        self.topic = topic
        self.fold = fold
        self._options = consumer_options
        self._outcomes: dict[int, FoldResult] = {}
        self._advanced = asyncio.Condition()
        self.caught_up = asyncio.Event()
        # Why the log cannot be folded (its head is gone), for /ready; None: no problem.
        self.problem: str | None = None

    @property
    def state(self) -> ControlState:
        """The state after the last record folded."""
        return self.fold.state

    async def run(self) -> None:
        """Fold the log from its start, then each new command as it arrives."""
        if not self.fold.keyring.principals:
            log.warning("no PROFITSTREAM_CONTROL_KEYS: every control command will be rejected")
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
            **self._options,
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            # The worker creates its topics before it starts; one deleted since is waited for.
            while self.topic not in await consumer.topics():  # noqa: ASYNC110 (polls the broker)
                await asyncio.sleep(0.2)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            beginning = int((await consumer.beginning_offsets([tp]))[tp])
            end = int((await consumer.end_offsets([tp]))[tp])
            if beginning > 0:
                # Folding what is left would give another deployment than the log's: stay
                # not caught up (no input is processed) and say why, once.
                self.problem = headless_log_problem(self.topic, beginning)
                log.error("%s", self.problem)
                return
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
        try:
            outcome = self.fold.apply(record)
        except Exception as exc:  # apply never raises; if a bug makes it, the fold goes on
            log.exception("control offset %d: the fold raised; the record is skipped",
                          record.offset)  # fmt: skip
            outcome = _skipped(record, self.fold.state, exc)
            self.fold.next_offset = record.offset + 1
        self._outcomes[record.offset] = outcome
        CONTROL_COMMANDS.labels(
            outcome="accepted" if outcome.accepted else f"rejected_{outcome.reason}"
        ).inc()
        # A rejection already in the log when the worker started is history, not news.
        live = self.caught_up.is_set()
        level = logging.WARNING if live and not outcome.accepted else logging.INFO
        log.log(level, "control offset %d %s: %s", record.offset,
                "accepted" if outcome.accepted else f"rejected ({outcome.reason})",
                outcome.message)  # fmt: skip
        async with self._advanced:
            self._advanced.notify_all()

    async def outcome(self, offset: int) -> FoldResult:
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
