"""Each worker's arm health counts, published on `profitability-monitoring` for the monitor.

Every ``monitor_interval_s`` the counts that changed since the last report go out as
``arm_health`` records keyed by the experiment id (so an experiment's records share one
partition, in order). Counts are cumulative per worker incarnation: a restarted worker
reports under a new incarnation, and the monitor keeps the latest record of each.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from faust.types import TopicT

from models_store.experiments.arm_health import LATENCY_BUCKETS_MS, ArmHealth, HealthBook, HealthKey
from models_store.experiments.records import ArmHealthRecord
from streams.control.report_loop import report_every


def health_record(
    incarnation: str, key: HealthKey, counts: ArmHealth, at: datetime
) -> ArmHealthRecord:
    """The ``arm_health`` record of one arm's counts."""
    return ArmHealthRecord(
        worker=incarnation,
        at=at.isoformat(),
        experiment_id=key.experiment_id,
        deployment_revision=key.deployment_revision,
        arm=key.arm,  # type: ignore[arg-type]  # champion, challenger or shadow, by the stage
        model=key.model,
        latency_buckets_ms=list(LATENCY_BUCKETS_MS),
        scored=counts.scored,
        failures=counts.failures,
        latency_counts=list(counts.latency_counts),
        drift_sum=counts.drift_sum,
        drift_n=counts.drift_n,
    )


class HealthReports:
    """Publishes the changed counts of a worker's health book now and then (the book is the
    scoring stage's, which adds to it in place)."""

    def __init__(self, book: HealthBook, topic: TopicT, worker_id: str) -> None:
        self._book = book
        self._topic = topic
        self.incarnation = f"{worker_id}/{uuid.uuid4().hex[:12]}"
        self._reported: dict[HealthKey, ArmHealth] = {}

    async def run(self, interval_s: float) -> None:
        """Report every ``interval_s`` for as long as the worker runs."""
        await report_every(self.report, interval_s, "arm health")

    async def report(self) -> int:
        """Publish the counts that changed; return how many records went out."""
        changed = {
            key: counts
            for key, counts in list(self._book.items())
            if self._reported.get(key) != counts
        }
        now = datetime.now(UTC)
        sent = [
            await self._topic.send(
                key=key.experiment_id.encode(),
                value=health_record(self.incarnation, key, counts, now).to_json(),
            )
            for key, counts in changed.items()
        ]
        for future in sent:
            await future
        self._reported.update(changed)
        return len(sent)
