"""The experiment monitor: reads a running experiment's evidence and acts on its verdict.

It runs on every worker but only works on the one Faust's consumer group gives the
control topic's partition (the worker that also writes the audit trail), so one monitor
judges each experiment. Every ``monitor_interval_s`` it reads, with its own group-less
consumer, the experiment's partition of `profitability-monitoring` (outcome and arm-health
records are keyed by the experiment id) from the experiment's start, folds the new records
(``models_store.experiments.verdict``), publishes an ``experiment_result`` record when the
result changed, and, when the verdict is promote, stop or ramp, publishes the command,
signed as ``PROFITSTREAM_CONTROL_MONITOR_PRINCIPAL``, on the control topic. The control
fold applies it like any other command: audited, revision-checked.

A command is sent at most once per deployment revision. Its id is derived from the
experiment, the revision and the action, so a monitor that takes over after a crash and
reaches the same verdict sends the same command again, which the fold refuses as a replay.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from features.bounded_json import MIB, load_bounded
from models_store.control.commands import REASON_MAX_CHARS
from models_store.control.signing import Principal, issue
from models_store.control.state import ControlState
from models_store.experiments.design import Experiment
from models_store.experiments.records import ExperimentResultRecord
from models_store.experiments.verdict import (
    ExperimentTally,
    Verdict,
    design_of,
    judge,
    result_record,
)
from streams.control.log import ControlLog
from streams.kafka.dead_letters import send_to_dlq
from streams.kafka.key_partitions import key_partition
from streams.kafka.preflight import MAX_PARTITION_FETCH_BYTES
from streams.kafka.records import from_consumer_record
from streams.kafka.topics import Topics
from streams.metrics import EXPERIMENT_ACTIONS, publish_verdict

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = MIB  # what a producer may send at most by default
MAX_RECORD_DEPTH = 64  # monitoring records nest 4 deep

_COMMAND_OF = {"promote": "experiment_promote", "stop": "experiment_stop",
               "ramp": "experiment_ramp"}  # fmt: skip


def monitor_command_id(experiment_id: str, revision: int, action: str) -> str:
    """The monitor's command id for an action at a revision (the same on every worker)."""
    digest = hashlib.sha256(f"{experiment_id}\0{revision}\0{action}".encode()).hexdigest()
    return f"monitor-{digest[:40]}"


def command_args(experiment_id: str, verdict: Verdict) -> dict[str, Any]:
    """The arguments of the command that carries out ``verdict``."""
    if verdict.action == "ramp":
        return {"experiment_id": experiment_id, "share": verdict.share}
    reason = f"monitor: {verdict.reason}"[:REASON_MAX_CHARS]
    return {"experiment_id": experiment_id, "reason": reason}


def add_record(tally: ExperimentTally, value: bytes) -> str | None:
    """Fold one monitoring record into ``tally``; one that cannot be read or folded, or is
    no monitoring record at all (no ``kind``), is counted in ``tally.ignored``, skipped,
    and its reason returned (None: folded, or a record of another experiment or kind,
    which the tally ignores). Raising here would make the monitor start over from the
    experiment's start and fail on the same record every interval."""
    try:
        record = load_bounded(value, max_bytes=MAX_RECORD_BYTES, max_depth=MAX_RECORD_DEPTH)
    except ValueError as exc:
        tally.ignored["unreadable"] += 1
        return f"unreadable: {exc}"
    if not isinstance(record, dict):
        tally.ignored["unreadable"] += 1
        return "unreadable: a monitoring record must be a JSON object"
    if not isinstance(record.get("kind"), str):
        # Every monitoring record names its kind (outcome, arm_health, experiment_result):
        # an object without one is not a monitoring record, whatever its size or key.
        tally.ignored["malformed"] += 1
        return "malformed: not a monitoring record (no kind)"
    try:
        tally.add(record)
    except Exception as exc:  # e.g. OverflowError: a number too large for a float
        tally.ignored["malformed"] += 1
        return f"malformed: {type(exc).__name__}: {exc}"
    return None


class ExperimentMonitor:
    """Judges the running experiment (on the control partition's owner) and acts."""

    def __init__(
        self,
        app: faust.App,
        topics: Topics,
        control: ControlLog,
        consumer_options: dict[str, Any],
        principal: Principal | None,
        worker_id: str,
    ) -> None:
        self._app = app
        self._worker_id = worker_id
        self._topics = topics
        self._control = control
        self._options = consumer_options
        self._principal = principal
        self._leading = TP(topics.control.get_topic_name(), 0)
        self._tally: ExperimentTally | None = None
        self._source: TopicPartition | None = None
        self._published: ExperimentResultRecord | None = None
        # (deployment revision, control offset) of the last command sent.
        self._sent: tuple[int, int] | None = None

    def leads(self) -> bool:
        """Whether this worker owns the control partition in the consumer group."""
        return self._leading in self._app.assignor.assigned_actives()

    async def run(self, interval_s: float) -> None:
        """Look every ``interval_s`` for as long as the worker runs."""
        if self._principal is None:
            log.info("no PROFITSTREAM_CONTROL_MONITOR_PRINCIPAL: experiment results are "
                     "published, promotions and stops are left to operators")  # fmt: skip
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
            **self._options,
        )
        await consumer.start()
        try:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await self.look(consumer)
                except Exception:
                    log.exception("the experiment monitor failed; it starts over")
                    self._tally = None
        finally:
            await consumer.stop()

    async def look(self, consumer: AIOKafkaConsumer) -> None:
        """Read the new evidence, publish the result if it changed, act on the verdict."""
        state = self._control.state
        experiment = state.deployment.experiment
        if not self._control.caught_up.is_set() or experiment is None or not self.leads():
            self._tally = None
            publish_verdict(None)
            return
        if self._tally is None or self._tally.experiment_id != experiment.experiment_id:
            await self._start(consumer, experiment)
        tally = self._tally
        assert tally is not None
        await self._read(consumer, tally)
        now = time.time()
        verdict = judge(experiment, state.deployment.revision, tally, now)
        publish_verdict(verdict)
        actions = await self._act(state, experiment, verdict, now)
        record = result_record(experiment, state.deployment.champion, state.deployment.revision,
                               tally, verdict, now, actions, self._worker_id)  # fmt: skip
        unchanged = record.model_copy(update={"at": ""})
        if unchanged != self._published:
            key, value = experiment.experiment_id.encode(), record.to_json()
            await (await self._topics.monitoring.send(key=key, value=value))
            self._published = unchanged

    async def _start(self, consumer: AIOKafkaConsumer, experiment: Experiment) -> None:
        topic = self._topics.monitoring.get_topic_name()
        partition = await key_partition(self._options, topic, experiment.experiment_id)
        if partition is None:
            raise RuntimeError(f"the monitoring topic {topic} does not exist yet")
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        # Nothing of the experiment predates its start command. The end is taken before the
        # time lookup: when nothing is that recent yet, the monitor starts at that end, so a
        # record arriving between the lookup and the first read is read (a lazy seek to the
        # end would resolve after it and skip it).
        end = (await consumer.end_offsets([tp]))[tp]
        found = await consumer.offsets_for_times({tp: int(experiment.started_at * 1000)})
        start = found.get(tp)
        consumer.seek(tp, end if start is None else start.offset)
        self._source = tp
        self._tally = ExperimentTally(experiment.experiment_id, design_of(experiment))
        self._published = None
        log.info("monitoring experiment %s from %s offset %d", experiment.experiment_id, tp,
                 await consumer.position(tp))  # fmt: skip

    async def _read(self, consumer: AIOKafkaConsumer, tally: ExperimentTally) -> None:
        tp = self._source
        assert tp is not None
        end = int((await consumer.end_offsets([tp]))[tp])
        while await consumer.position(tp) < end:
            fetched = await consumer.getmany(tp, timeout_ms=500, max_records=5_000)
            for message in fetched.get(tp, []):
                error = add_record(tally, message.value or b"")
                if error is not None:
                    # Kept for ops with the reason; the monitor goes on without it.
                    record = from_consumer_record(message)
                    sent = await send_to_dlq(self._topics.dlq, record, error[:1000],
                                             f"monitoring_{error.partition(':')[0]}")  # fmt: skip
                    await sent

    async def _act(
        self, state: ControlState, experiment: Experiment, verdict: Verdict, now: float
    ) -> str:
        """Send the verdict's command if it calls for one; say what happened."""
        if verdict.action == "continue":
            return "none needed"
        if self._principal is None:
            return "off: PROFITSTREAM_CONTROL_MONITOR_PRINCIPAL is unset"
        revision = state.revision
        if self._sent is not None and self._sent[0] == revision:
            offset = self._sent[1]
            if offset < self._control.fold.next_offset:
                outcome = await self._control.outcome(offset)
                if not outcome.accepted:
                    return f"{_COMMAND_OF[verdict.action]} rejected ({outcome.reason}): " \
                           f"{outcome.message}"  # fmt: skip
            return f"{_COMMAND_OF[verdict.action]} sent at control offset {offset}"
        kind = _COMMAND_OF[verdict.action]
        command = issue(
            kind,
            command_args(experiment.experiment_id, verdict),
            self._principal,
            issued_at=datetime.fromtimestamp(now, UTC),
            expected_revision=revision,
            command_id=monitor_command_id(experiment.experiment_id, revision, verdict.action),
        )
        sent = await (await self._topics.control.send(
            key=b"monitor", value=json.dumps(command).encode(), partition=0))  # fmt: skip
        self._sent = (revision, int(sent.offset))
        EXPERIMENT_ACTIONS.labels(action=verdict.action).inc()
        log.warning("experiment %s: %s (%s)", experiment.experiment_id, kind, verdict.reason)
        return f"{kind} sent at control offset {sent.offset}"
