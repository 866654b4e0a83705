"""Each worker's accuracy per model version and arm: gauges and `accuracy` records.

The scoring stage adds every scored client's label-free error estimate to the worker's
``AccuracyBook``, the batch every outcome it closed, once the monitoring topic has it (no
consumer reads the outcomes back: the worker that closes an outcome already holds it).
Every ``monitor_interval_s`` the book's figures set the Prometheus gauges, and those that
changed go out as ``accuracy`` records keyed by the model (NAME@VERSION), and the others
every hour, so a reader of the last hours sees every model. Figures are per
worker incarnation: each worker closes the outcomes of its own clients, and a restarted
worker starts its windows anew. ``profitstream monitor status`` merges the workers'
latest records.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from faust.types import TopicT

from models_store.experiments.records import AccuracyRecord
from models_store.monitoring.accuracy import AccuracyBook, accuracy_record
from streams.control.report_loop import report_every
from streams.metrics import publish_accuracy


class AccuracyReports:
    """Publishes a worker's accuracy book now and then (the scoring stage's book, which the
    stage and the batch add to in place)."""

    def __init__(
        self, book: AccuracyBook, topic: TopicT, incarnation: str, heartbeat_s: float = 3600.0
    ) -> None:
        self._book = book
        self._topic = topic
        self.incarnation = incarnation
        self._heartbeat_s = heartbeat_s
        # (model, arm) -> the record last sent (without its time), and when (monotonic).
        self._reported: dict[tuple[str, str], tuple[AccuracyRecord, float]] = {}

    async def run(self, interval_s: float) -> None:
        """Report every ``interval_s`` for as long as the worker runs."""
        await report_every(self.report, interval_s, "accuracy")

    async def report(self) -> int:
        """Set the gauges; publish the figures that changed; return how many records went
        out."""
        figures = self._book.figures()
        publish_accuracy(figures)
        at = datetime.now(UTC).isoformat()
        now = time.monotonic()
        sent = []
        for entry in figures:
            record = accuracy_record(entry, self.incarnation, at)
            unchanged = record.model_copy(update={"at": ""})
            key = (entry.model, entry.arm)
            last = self._reported.get(key)
            if last is not None and last[0] == unchanged and now - last[1] < self._heartbeat_s:
                continue
            sent.append(await self._topic.send(key=entry.model.encode(), value=record.to_json()))
            self._reported[key] = (unchanged, now)
        for future in sent:
            await future
        return len(sent)
