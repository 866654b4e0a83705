"""Which deployment each input partition is scored with, and the switch from one to the next.

Each batch is scored by one deployment (``streams.control.active_models``). When it differs
from the one a partition was last scored with, the partition switches at the batch's first
offset: the switch is written to the table (``#deployment`` rows) and announced on the
audit topic (``model_switch``), so every prediction's model can be traced to an offset. A
partition never goes back to an older deployment, whichever worker reads it next: a batch
waits until this worker's control log has caught up with the newest deployment any of its
partitions was scored with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from datetime import datetime

from faust.types import RecordMetadata, TableT

from models_store.control.audit_records import (
    ModelSwitchRecord,
    SwitchedExperiment,
    SwitchedPartition,
)
from streams.control.active_models import ActiveDeployment, ActiveModels
from streams.kafka.gap_reader import GapReader
from streams.kafka.records import partition_key
from streams.kafka.topics import Topics
from streams.metrics import MODEL_SWITCHES
from streams.pipeline.client_table import load_deployment, save_deployment

log = logging.getLogger(__name__)
LAGGING_WARNING_S = 10.0


class ModelSwitch:
    """The deployment revision of each tracked partition; switches them batch by batch."""

    def __init__(
        self,
        states: TableT[str, bytes],
        topics: Topics,
        models: ActiveModels,
        gaps: GapReader,
        worker_id: str,
    ) -> None:
        self._states = states
        self._topics = topics
        self._models = models
        self._gaps = gaps
        self._worker_id = worker_id
        # The deployment revision each tracked partition was last scored with.
        self._revisions: dict[str, int | None] = {}

    def track(self, topic: str, partition: int) -> None:
        """Start tracking a partition with the revision its ``#deployment`` row names."""
        revision = load_deployment(self._states, topic, partition)
        self._revisions[partition_key(topic, partition)] = revision

    def forget(self, keys: Iterable[str]) -> None:
        """Stop tracking revoked partitions."""
        for key in keys:
            self._revisions.pop(key, None)

    async def switch(
        self, first_offsets: dict[tuple[str, int], int], now: datetime
    ) -> tuple[ActiveDeployment, list[Awaitable[RecordMetadata]]]:
        """The deployment that scores a batch of these partitions (each at the offset given),
        and the sends that record the partitions switching to it (none if none switched)."""
        seen = [self._revisions.get(partition_key(*tp)) for tp in first_offsets]
        newest = max((revision for revision in seen if revision is not None), default=-1)
        active = await self._deployment_at_least(newest)
        revision = active.revision
        sends: list[Awaitable[RecordMetadata]] = []
        switched = []
        for ((topic, partition), first), previous in zip(first_offsets.items(), seen, strict=True):
            if previous == revision:
                continue
            sends.append(save_deployment(self._states, topic, partition, revision, first))
            self._revisions[partition_key(topic, partition)] = revision
            switched.append(SwitchedPartition(topic=topic, partition=partition, from_offset=first,
                                              previous_revision=previous))  # fmt: skip
        if switched:
            MODEL_SWITCHES.inc(len(switched))
            sends.append(await self._topics.audit.send(value=self._record(active, switched, now)))
        return active, sends

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

    def _record(
        self, active: ActiveDeployment, partitions: list[SwitchedPartition], now: datetime
    ) -> bytes:
        deployment = active.deployment
        experiment = deployment.experiment
        return ModelSwitchRecord(
            worker=self._worker_id,
            at=now.isoformat(),
            deployment_revision=deployment.revision,
            champion=deployment.champion,
            experiment=None if experiment is None else SwitchedExperiment(
                id=experiment.experiment_id, challenger=experiment.challenger,
                mode=experiment.mode, share=experiment.share, salt=experiment.salt,
            ),
            partitions=partitions,
        ).to_json()  # fmt: skip
