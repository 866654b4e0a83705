"""``prediction_id`` identifies what a prediction says, whatever worker and batch made it.

A batch cuts the two input topics (activity, billing) wherever its worker's fetches ended,
and the stream scores each changed client after the whole batch, as of its latest event.
So the same (client, triggering event, model) can be scored on different features: the
other topic's older events may or may not be in. After a takeover the new owner re-reads
what the dead worker had not acknowledged and cuts it otherwise (issue 13: the same id
with margins 0.5653 and 0.5355). The id is therefore a digest of the payload, and these
tests count ids that came with two different payloads (emission fields aside): none.

The first test is pure (no broker): the same events cut into batches three ways. The
others SIGKILL workers mid-stream on a live broker, let another take over, and read every
prediction.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from features.definitions import compute_features
from features.events import Event, parse_event
from features.simulation.messages import SimulatedMessage
from features.state import ApplyResult, ClientState, apply_event, compact
from models_store.control.state import Deployment
from models_store.registry import open_registry
from models_store.scoring.emission import EmissionPolicy
from models_store.scoring.prediction import EMISSION_FIELDS, Prediction
from models_store.scoring.scorer import Scorer
from streams.control.active_models import ActiveDeployment
from streams.pipeline.client_row import ClientRow, decode_row
from streams.pipeline.scoring_stage import Rescore, ScoringStage
from streams.stack.processes import free_port, wait_until
from tests.services.control_plane import V1
from tests.services.event_log import ReplayedLog, metric, produce_log, rebuild, simulated_log
from tests.services.worker_process import WorkerProcess, running_worker

CUTS = 3  # ways of cutting the same events into batches (pure test)
KILLS = 2  # takeovers in the kill-and-replace test
CHUNK = 120  # messages the kill-and-replace test produces at a time
SEED = 1301


@pytest.fixture
def registry(control_registry: Path) -> Path:
    """A trained model registered as profitability@1.0.0 (the session's shared registry)."""
    return control_registry


def _content(prediction: Prediction) -> str:
    """What a prediction says: its JSON without the fields of one emission."""
    return prediction.model_dump_json(exclude=set(EMISSION_FIELDS))


def _ambiguous(predictions: Iterable[Prediction], key: str) -> dict[tuple[str, ...], set[str]]:
    """The keys that came with more than one payload: ``id`` = the prediction id,
    ``trigger`` = (client, triggering event, model), what the id used to hash."""
    payloads: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for p in predictions:
        name = (p.prediction_id,) if key == "id" else (
            p.client_id, str(p.event_id), f"{p.model.name}@{p.model.version}")  # fmt: skip
        payloads[name].add(_content(p))
    return {name: found for name, found in payloads.items() if len(found) > 1}


def _batches(events: dict[str, list[Event]], seed: int) -> list[list[Event]]:
    """The events of both topics cut into batches as a worker's fetches might: a random
    number of the next records of each topic (each in its own order), in either order."""
    rng = random.Random(seed)
    position = dict.fromkeys(events, 0)
    batches = []
    while any(position[s] < len(events[s]) for s in events):
        runs = []
        for stream, queue in events.items():
            take = rng.randint(0, 40)
            runs.append(queue[position[stream] : position[stream] + take])
            position[stream] += take
        rng.shuffle(runs)
        batches.append([event for run in runs for event in run])
    return batches


def _stream(
    batches: list[list[Event]], stage: ScoringStage, active: ActiveDeployment
) -> list[tuple[Prediction, frozenset[str]]]:
    """What the pipeline does with each batch (``BatchProcessor._apply`` / ``_finish``):
    apply, rescore each changed client as of its latest event with the batch's newest
    applied event as the trigger, compact. Each prediction with the events it stood on."""
    rows: dict[str, ClientRow] = {}
    applied: dict[str, set[str]] = defaultdict(set)
    out = []
    for batch in batches:
        triggers: dict[str, Event] = {}
        for event in batch:
            row = rows.setdefault(event.client_id, ClientRow(ClientState(event.client_id)))
            if apply_event(row.state, event) is not ApplyResult.APPLIED:
                continue
            applied[event.client_id].add(event.event_id)
            newest = triggers.get(event.client_id)
            if newest is None or event.timestamp >= newest.timestamp:
                triggers[event.client_id] = event
        rescore = []
        for client_id, trigger in triggers.items():
            row = rows[client_id]
            as_of = row.state.watermark
            assert as_of is not None
            rescore.append(Rescore(row, compute_features(row.state, as_of), as_of,
                                   trigger.event_id, trigger.timestamp, None))  # fmt: skip
        scored = asyncio.run(stage.run(rescore, active))
        out += [(p, frozenset(applied[p.client_id])) for p in scored.predictions]
        for client_id in triggers:
            compact(rows[client_id].state)
    return out


def test_batches_cut_otherwise_score_otherwise_and_never_under_the_same_id(
    registry: Path, tmp_path: Path
) -> None:
    messages = simulated_log(30, 12, malformed=0.0, duplicate=0.01, late=0.0, seed=SEED)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    events: dict[str, list[Event]] = {"activity": [], "billing": []}
    for m in messages:
        events[m.stream].append(parse_event(m.value, m.stream, key=m.key, now=now))  # type: ignore[arg-type]
    scorer = Scorer.from_registry(open_registry(str(registry)), V1, tmp_path / "cache")
    active = ActiveDeployment(Deployment(1, scorer.ref, None), scorer, None)
    emitted: list[tuple[Prediction, frozenset[str]]] = []
    for cut in range(CUTS):
        # Delta 0: every change is emitted, so every cut emits for most of its batches.
        stage = ScoringStage(EmissionPolicy(delta=0.0))
        try:
            emitted += _stream(_batches(events, seed=cut), stage, active)
        finally:
            stage.close()
    predictions = [p for p, _ in emitted]

    # The finding: the same trigger, other events of the other topic, another prediction.
    by_trigger = _ambiguous(predictions, "trigger")
    assert by_trigger, "the cuts never scored a trigger on different events"
    # The fix: one id, one payload.
    assert _ambiguous(predictions, "id") == {}
    # And a replay that scores the same events re-emits the same id, given the same trigger
    # (the newest event of its batch: the same state can be reached by batches with other
    # newest events) and reason (it depends on the last emission, which another cut may
    # have made elsewhere).
    ids: dict[tuple[str, frozenset[str], str | None, str | None], set[str]] = defaultdict(set)
    for p, on in emitted:
        ids[(p.client_id, on, p.event_id, p.reason)].add(p.prediction_id)
    assert all(len(found) == 1 for found in ids.values())
    repeated = sum(1 for p in predictions) - len({p.prediction_id for p in predictions})
    assert repeated > 0, "no cut ever re-scored what another did: nothing was compared"
    print(f"\n{len(predictions)} predictions in {CUTS} cuts: {len(by_trigger)} (client, "
          f"trigger, model) with two or more payloads, 0 such ids; "
          f"{repeated} re-emitted ids")  # fmt: skip


def _read_all(bootstrap: str, topic: str, timeout_s: float = 120.0) -> list[Prediction]:
    """Every prediction on ``topic`` (nothing writes it any more), in (partition, offset)
    order. Read past the reported end offsets until the broker has nothing more: Tansu
    reports the last batch's base offset + 1 as the end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})  # fmt: skip
    read: list[tuple[int, int, Prediction]] = []
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in metadata.partitions}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout_s
        below_end = {p for p, end in ends.items() if end > 0}
        while True:
            assert time.monotonic() < deadline, f"{topic} not read to its end in {timeout_s}s"
            message = consumer.poll(0.5 if below_end else 3.0)
            if message is None:
                if below_end:
                    continue
                break  # every reported end passed, and the broker had nothing more
            assert message.error() is None, message.error()
            partition, offset = int(message.partition() or 0), int(message.offset() or 0)
            read.append((partition, offset, Prediction.model_validate_json(message.value() or b"")))
            if offset + 1 >= ends[partition]:
                below_end.discard(partition)
    finally:
        consumer.close()
    return [p for _, _, p in sorted(read, key=lambda r: (r[0], r[1]))]


def _versions(redis_url: str, unique: str, clients: list[str]) -> dict[str, str | None]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return {c: client.hget(f"{unique}:client:{c}", "version") for c in clients}


def _processed(worker: WorkerProcess) -> float:
    """Messages this worker process has processed (whole batches)."""
    return sum(metric(worker, "profitstream_batch_events_sum").values())


def _kill_after(worker: WorkerProcess, messages: int) -> float:
    """SIGKILL ``worker`` once it has processed ``messages``; how many it had then."""
    wait_until(lambda: _processed(worker) >= messages, timeout_s=300,
               what=f"worker {worker.pid} to process {messages} messages")  # fmt: skip
    processed = _processed(worker)
    # No clean shutdown: its unacknowledged batch is re-read by the next owner.
    os.kill(worker.pid, signal.SIGKILL)
    return processed


def _until_current(redis_url: str, unique: str, expected: ReplayedLog) -> None:
    clients = sorted(expected.states)
    wanted = {c: str(expected.states[c].version) for c in clients}
    wait_until(lambda: _versions(redis_url, unique, clients) == wanted, timeout_s=300,
               what="every event applied after the takeover")  # fmt: skip


def _check(
    bootstrap: str, env: dict[str, str], expected: ReplayedLog, registry: Path, cache: Path
) -> None:
    """Read every prediction: no id with two payloads, and each client's latest equal to
    its final offline-built state scored (so the reader saw the end, and nothing was lost)."""
    predictions = _read_all(bootstrap, env["PROFITSTREAM_TOPICS__PREDICTIONS"])
    by_trigger = _ambiguous(predictions, "trigger")
    by_id = _ambiguous(predictions, "id")
    copies = len(predictions) - len({p.prediction_id for p in predictions})
    print(f"\ntakeover: {len(predictions)} predictions, {copies} re-emitted copies, "
          f"{len(by_trigger)} (client, trigger, model) with two or more payloads (one id each "
          f"before the fix), {len(by_id)} ids with two or more payloads")  # fmt: skip
    assert by_id == {}
    latest = {p.client_id: p for p in predictions}
    assert set(latest) == set(expected.states)
    scorer = Scorer.from_registry(open_registry(str(registry)), V1, cache)
    clients = sorted(expected.states)
    final = [compute_features(expected.states[c], expected.states[c].watermark or 0.0)
             for c in clients]  # fmt: skip
    for client_id, score in zip(clients, scorer.score(np.array(final)), strict=True):
        assert latest[client_id].predicted_margin == score.margin, client_id


def _env(worker_env: dict[str, str], registry: Path) -> dict[str, str]:
    # Small batches and delta 0: many batches, each emitting, so a kill lands mid-batch.
    return {**worker_env, "PROFITSTREAM_MODEL_REGISTRY": str(registry),
            "PROFITSTREAM_MODEL": V1, "PROFITSTREAM_BATCH_MAX_EVENTS": "50",
            "PROFITSTREAM_PREDICTION_DELTA": "0"}  # fmt: skip


def _elsewhere(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    return {**env, "PROFITSTREAM_DATA_DIR": str(data_dir),
            "PROFITSTREAM_WEB_PORT": str(free_port())}  # fmt: skip


class _Follower:
    """Follows the predictions topic and the client-state changelog from their start (no
    consumer group): each client's latest trigger and the events its latest saved state
    applied."""

    def __init__(self, bootstrap: str, env: dict[str, str]) -> None:
        self._predictions = env["PROFITSTREAM_TOPICS__PREDICTIONS"]
        self._changelog = f"{env['PROFITSTREAM_APP_ID']}-client-state-changelog"
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                                   "enable.auto.commit": False})  # fmt: skip
        self._next: dict[tuple[str, int], int] = {}
        self.trigger: dict[str, str | None] = {}
        self.saved: dict[str, set[str]] = {}

    def close(self) -> None:
        self._consumer.close()

    def catch_up(self) -> None:
        """Read what both topics hold now (nothing may write them meanwhile)."""
        if not self._next:
            topics = self._consumer.list_topics(timeout=30).topics
            for name in (self._predictions, self._changelog):
                self._next.update({(name, p): 0 for p in topics[name].partitions})
            self._consumer.assign([TopicPartition(t, p, 0) for t, p in self._next])
        ends = {tp: self._consumer.get_watermark_offsets(TopicPartition(*tp), timeout=30)[1]
                for tp in self._next}  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the topics were not read to their end"
            behind = any(self._next[tp] < end for tp, end in ends.items())
            # Past the reported ends, until the broker has nothing more (Tansu's ends are low).
            message = self._consumer.poll(0.5 if behind else 1.0)
            if message is None:
                if behind:
                    continue
                return
            assert message.error() is None, message.error()
            topic, partition = str(message.topic()), int(message.partition() or 0)
            self._next[(topic, partition)] = int(message.offset() or 0) + 1
            self._take(topic, message.key(), message.value())

    def _take(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if topic == self._predictions:
            prediction = Prediction.model_validate_json(value or b"")
            self.trigger[prediction.client_id] = prediction.event_id
            return
        name = json.loads(key or b"null")  # the table's keys are JSON strings
        if value is not None and not name.startswith("#"):  # not a progress row
            state = decode_row(value).state
            self.saved[name] = {event for ids in state.seen.values() for event in ids}

    def unsaved(self) -> list[str]:
        """Clients whose latest prediction is on the topic but whose state of that batch is
        not in the changelog: whoever owns them next must score that batch again."""
        return [c for c, event in self.trigger.items() if event not in self.saved.get(c, set())]


def _kill_in_window(
    worker: WorkerProcess, follower: _Follower, feed: Iterator[list[SimulatedMessage]],
    produce: Callable[[list[SimulatedMessage]], None], rng: random.Random,
) -> tuple[int, list[str]]:  # fmt: skip
    """Feed the worker input, freeze it at a random moment, and SIGKILL it if a batch of its
    has predictions on the topic but not its states in the changelog; else let it go on.
    (attempts, clients caught in the window); none caught when the input ran out."""
    for attempt, chunk in enumerate(feed, start=1):
        produce(chunk)
        time.sleep(rng.uniform(0.0, 0.4))  # a random moment to freeze at, not a wait
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            follower.catch_up()
            caught = follower.unsaved()
            if caught:
                os.kill(worker.pid, signal.SIGKILL)
                return attempt, caught
        finally:
            os.kill(worker.pid, signal.SIGCONT)
    os.kill(worker.pid, signal.SIGKILL)
    return 0, []


@pytest.mark.timeout(900)
def test_workers_killed_and_replaced_emit_no_id_with_two_payloads(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str,
    registry: Path, tmp_path: Path,
) -> None:  # fmt: skip
    """Input trickles in; a worker is killed while a batch of it has its predictions on the
    topic but not its states in the changelog, and another worker, on the other disk,
    takes its partitions over and must score that batch again, cut its own way. KILLS
    times; then one finishes."""
    env = _env(worker_env, registry)
    messages = simulated_log(30, 12, malformed=0.0, duplicate=0.01, late=0.0, seed=SEED)
    expected = rebuild(messages)
    feed = (messages[i : i + CHUNK] for i in range(0, len(messages), CHUNK))
    disks = [Path(env["PROFITSTREAM_DATA_DIR"]), tmp_path / "data-b"]
    follower = _Follower(kafka_bootstrap, env)
    rng = random.Random(SEED)
    caught = []
    try:
        for life in range(KILLS):
            with running_worker(_elsewhere(env, disks[life % 2])) as worker:
                attempts, clients = _kill_in_window(
                    worker, follower, feed, lambda m: produce_log(kafka_bootstrap, unique, m), rng
                )  # fmt: skip
                caught.append(clients)
                print(f"\nkill {life + 1}: after {attempts} freezes, {len(clients)} clients "
                      f"with predictions but no saved state")  # fmt: skip
    finally:
        follower.close()
    with running_worker(_elsewhere(env, disks[KILLS % 2])):
        produce_log(kafka_bootstrap, unique, [m for chunk in feed for m in chunk])
        _until_current(redis_url, unique, expected)
    # Each kill left predictions on the topic whose batch the next owner scored again
    # (with the same trigger or, when its batch reached further, a newer one).
    assert all(caught), "the input ran out before every kill found its window"
    _check(kafka_bootstrap, env, expected, registry, tmp_path / "cache")
