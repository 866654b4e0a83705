"""The field suite's moving parts: restartable workers, a /ready sampler, a steady producer,
a kill-and-restart loop, and the checks every scenario ends with.

Every wait polls a condition with a generous limit and fails fast, with the log's last
line, when a worker it depends on died by itself; nothing waits a fixed time for
correctness (the kill loop's random pause only chooses the moment of a kill).
"""

from __future__ import annotations

import bisect
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import redis
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from features.definitions import FEATURE_NAMES, compute_features
from features.simulation.messages import SimulatedMessage
from models_store.registry import open_registry
from models_store.scoring.prediction import Prediction
from models_store.scoring.scorer import Scorer
from streams.stack.processes import free_port, last_log_line, spawn, stop_pid
from tests.services.event_log import ReplayedLog
from tests.services.kafka_clients import Record
from tests.services.worker_process import WorkerProcess

# Generous limits: the suite must pass on a 2-core machine at load average ~10.
READY_TIMEOUT_S = 240.0
SETTLE_TIMEOUT_S = 300.0
PROGRESS_TIMEOUT_S = 180.0
HTTP_TIMEOUT_S = 15.0
# A worker saying ready that applies nothing for this long while input arrives is stalled.
STALL_S = 60.0
BATCH_METRIC = "profitstream_batch_events_sum"
# aiokafka logs a retriable coordinator lookup at ERROR, then retries: Apache Kafka answers
# so while it creates __consumer_offsets for the first group of a fresh cluster.
EXPECTED_ERRORS = ("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailable",)


class WorkerDiedError(AssertionError):
    """A worker process exited without the test stopping it."""


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """GET on a worker's web port: (status, body); (0, b"") when nothing answers in time."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except OSError:
        return 0, b""


def metric_sum(port: int, name: str) -> float | None:
    """The sum over labels of one Prometheus metric; None when /metrics does not answer."""
    status, body = http_get(port, "/metrics")
    if status != 200:
        return None
    total = 0.0
    for line in body.decode().splitlines():
        match = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)
        if match:
            total += float(match.group(2))
    return total


# --------------------------------------------------------------------------- workers


@dataclass
class Life:
    """One process of a restartable worker."""

    number: int
    process: subprocess.Popen[bytes]
    worker: WorkerProcess
    data_dir: Path
    started_at: float
    # Set before the test kills or stops it: samples taken from then on do not count.
    ending: bool = False
    ended_by: str | None = None

    def alive(self) -> bool:
        """Whether the process runs and the test has not begun to end it."""
        return not self.ending and self.process.poll() is None


class FieldWorker:
    """A worker slot the test starts, kills and restarts; one ``Life`` per process."""

    def __init__(self, name: str, env: dict[str, str], root: Path) -> None:
        self.name = name
        self.env = dict(env)
        self.root = root
        self.lives: list[Life] = []
        self._disks = 0
        self._data_dir = Path(env["PROFITSTREAM_DATA_DIR"])

    @property
    def life(self) -> Life | None:
        """The latest process (running or not)."""
        return self.lives[-1] if self.lives else None

    @property
    def current(self) -> WorkerProcess:
        """The running process's web address; fails when none runs."""
        self.assert_alive()
        assert self.life is not None
        return self.life.worker

    def spawn(self, *, empty_disk: bool = False, **overrides: str) -> Life:
        """Start a process (on a new, empty data dir if asked) without waiting for it."""
        if self.life is not None:
            assert self.life.ended_by is not None, f"{self.name}: the last process still runs"
        if empty_disk:
            self._disks += 1
            self._data_dir = self.root / f"{self.name}-disk{self._disks}"
        self.env.update(overrides)
        # A fresh port each time: the killed process's sockets may linger in TIME_WAIT.
        env = {**self.env, "PROFITSTREAM_DATA_DIR": str(self._data_dir),
               "PROFITSTREAM_WEB_PORT": str(free_port())}  # fmt: skip
        number = len(self.lives) + 1
        log_path = self.root / "logs" / f"{self.name}-{number}.log"
        process = spawn([sys.executable, "-m", "streams.cli", "worker"], log_path, env=env,
                        die_with_parent=True)  # fmt: skip
        worker = WorkerProcess(process.pid, int(env["PROFITSTREAM_WEB_PORT"]), log_path)
        life = Life(number, process, worker, self._data_dir, time.monotonic())
        self.lives.append(life)
        return life

    def start(self, *, empty_disk: bool = False, **overrides: str) -> WorkerProcess:
        """Start a process and wait until ``/ready`` says 200."""
        life = self.spawn(empty_disk=empty_disk, **overrides)
        self.wait_ready(life)
        return life.worker

    def wait_ready(self, life: Life, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Wait until the process says ready; return how long it took."""
        wait_for(lambda: http_get(life.worker.web_port, "/ready")[0] == 200, timeout_s,
                 f"{self.name} (process {life.number}) to become ready", [self])  # fmt: skip
        return time.monotonic() - life.started_at

    def assert_alive(self) -> None:
        """Fail with the log's last line if the latest process exited by itself."""
        life = self.life
        if life is None or life.ended_by is not None:
            raise AssertionError(f"{self.name}: no process runs")
        code = life.process.poll()
        if code is not None:
            last = last_log_line(life.worker.log_path)
            raise WorkerDiedError(
                f"{self.name} (process {life.number}) exited by itself with code {code}: {last}"
            )

    def kill(self) -> None:
        """SIGKILL the running process: no clean shutdown, nothing flushed."""
        self.assert_alive()
        life = self.life
        assert life is not None
        life.ending = True
        os.kill(life.process.pid, signal.SIGKILL)
        life.process.wait(timeout=60)
        life.ended_by = "SIGKILL"

    def stop(self) -> None:
        """SIGTERM the running process (SIGKILL after 60 s) and wait for it."""
        self.assert_alive()
        life = self.life
        assert life is not None
        life.ending = True
        stop_pid(life.process.pid, timeout_s=60)
        life.process.wait(timeout=60)
        life.ended_by = "SIGTERM"

    def close(self) -> None:
        """Stop whatever still runs (teardown), never failing."""
        life = self.life
        if life is not None and life.ended_by is None:
            life.ending = True
            stop_pid(life.process.pid, timeout_s=30)
            life.process.wait(timeout=30)
            life.ended_by = "teardown"

    def error_lines(self) -> list[str]:
        """ERROR/CRITICAL lines and tracebacks of every process so far: in normal running,
        and through poison, there should be none (every ERROR is for an operator)."""
        found = []
        for life in self.lives:
            for line in life.worker.log_path.read_text(errors="replace").splitlines():
                if re.search(r"\[(ERROR|CRITICAL)\]|Traceback", line) and not any(
                    known in line for known in EXPECTED_ERRORS
                ):
                    found.append(f"{self.name}-{life.number}: {line[:300]}")
        return found

    def logs(self, tail: int = 4000) -> str:
        """The end of every process's log (shown by pytest when a test fails)."""
        parts = []
        for life in self.lives:
            path = life.worker.log_path
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            parts.append(f"--- {self.name} process {life.number} ({life.ended_by}) {path}\n"
                         f"{text[-tail:]}")  # fmt: skip
        return "\n".join(parts)

    def log_text(self, since_life: int = 1) -> str:
        """The whole log of the processes numbered ``since_life`` and later."""
        return "\n".join(
            life.worker.log_path.read_text(errors="replace")
            for life in self.lives[since_life - 1 :]
            if life.worker.log_path.exists()
        )


@contextmanager
def fleet(root: Path) -> Iterator[Callable[[str, dict[str, str]], FieldWorker]]:
    """Hands out ``FieldWorker``s; stops them all at the end and prints their logs."""
    workers: list[FieldWorker] = []

    def add(name: str, env: dict[str, str]) -> FieldWorker:
        worker = FieldWorker(name, env, root)
        workers.append(worker)
        return worker

    try:
        yield add
    finally:
        for worker in workers:
            worker.close()
        for worker in workers:
            print(worker.logs())


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    workers: Sequence[FieldWorker] = (),
    interval_s: float = 0.2,
) -> None:
    """Poll ``condition`` until true; fail after ``timeout_s``, or at once if a worker died."""
    deadline = time.monotonic() + timeout_s
    while True:
        for worker in workers:
            worker.assert_alive()
        if condition():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(interval_s)


def problems_cleared(
    problems: Callable[[], list[str]],
    timeout_s: float,
    what: str,
    workers: Sequence[FieldWorker] = (),
    interval_s: float = 2.0,
) -> list[str]:
    """Poll ``problems`` until it finds none; return [] then, or (after ``timeout_s``) what
    it still found, headed by ``what``. A worker that dies meanwhile fails at once."""
    last: list[str] = []

    def cleared() -> bool:
        nonlocal last
        last = problems()
        return not last

    try:
        wait_for(cleared, timeout_s, what, workers, interval_s)
    except WorkerDiedError:
        raise
    except AssertionError as exc:
        return [str(exc), *last]
    return []


def applied(worker: FieldWorker) -> float | None:
    """Events the running process has processed in whole batches since it started."""
    life = worker.life
    return None if life is None else metric_sum(life.worker.web_port, BATCH_METRIC)


# --------------------------------------------------------------------------- sampler


@dataclass(frozen=True)
class Sample:
    """One look at a worker: /ready (status, what it waits for), /health, batch metric."""

    at: float
    worker: str
    life: int
    alive: bool
    ready: int
    waiting_for: str | None
    health: int
    applied: float | None


class ReadySampler(threading.Thread):
    """Samples /ready (and /health, and the batch metric) of workers every ``interval_s``."""

    def __init__(self, workers: Sequence[FieldWorker], interval_s: float = 0.5) -> None:
        super().__init__(daemon=True, name="ready-sampler")
        self.workers = list(workers)
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._halt = threading.Event()

    def __enter__(self) -> ReadySampler:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._halt.set()
        self.join(60)

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            for worker in list(self.workers):
                life = worker.life
                if life is not None and life.ended_by is None:
                    self.samples.append(self._sample(worker.name, life))

    def _sample(self, name: str, life: Life) -> Sample:
        at = time.monotonic()
        before = life.alive()
        port = life.worker.web_port
        ready, body = http_get(port, "/ready") if before else (0, b"")
        health = http_get(port, "/health")[0] if before else 0
        count = metric_sum(port, BATCH_METRIC) if before and ready == 200 else None
        waiting = None
        if ready == 503:
            try:
                waiting = json.loads(body).get("waiting_for")
            except (ValueError, AttributeError):
                waiting = None
        # Killed or stopped while it was asked: the answer says nothing about honesty.
        alive = before and life.alive()
        return Sample(at, name, life.number, alive, ready, waiting, health, count)

    def summary(self) -> str:
        """Counts of /ready answers per worker, e.g. ``a: 200×310 503×22 down×40``."""
        parts = []
        for worker in self.workers:
            counts: dict[str, int] = {}
            for s in self.samples:
                if s.worker == worker.name:
                    key = "down" if not s.alive else str(s.ready or "none")
                    counts[key] = counts.get(key, 0) + 1
            parts.append(f"{worker.name}: " + " ".join(f"{k}×{v}" for k, v in counts.items()))
        return "; ".join(parts)


def ready_violations(
    samples: Sequence[Sample], input_times: Sequence[float], stall_s: float = STALL_S
) -> list[str]:
    """Where /ready was not honest: no answer (or 5xx other than 503) while the process
    lived after it had answered once, a 503 naming nothing, or 200 for ``stall_s`` while
    input arrived (``input_times``, sorted) and the worker applied none of it."""
    found: list[str] = []
    lives: dict[tuple[str, int], list[Sample]] = {}
    for s in samples:
        lives.setdefault((s.worker, s.life), []).append(s)
    for (name, number), own in lives.items():
        who = f"{name} process {number}"
        t0 = own[0].at
        answered = False
        for s in own:
            if not s.alive:
                continue
            if s.ready == 0:
                if answered:
                    found.append(f"{who}: /ready did not answer at +{s.at - t0:.1f}s")
            elif s.ready not in (200, 503):
                found.append(f"{who}: /ready answered {s.ready} at +{s.at - t0:.1f}s")
            else:
                answered = True
            if s.ready == 503 and not s.waiting_for:
                found.append(f"{who}: 503 without naming what it waits for at +{s.at - t0:.1f}s")
        found += _stalls(who, [s for s in own if s.alive], input_times, stall_s)
    return found


def _stalls(who: str, own: list[Sample], input_times: Sequence[float], stall_s: float) -> list[str]:
    """Stretches of ready samples with a constant batch count while input arrived."""
    found = []
    start = 0
    for end in range(1, len(own) + 1):
        same = (
            end < len(own)
            and own[end].ready == 200
            and own[start].ready == 200
            and own[end].applied is not None
            and own[end].applied == own[start].applied
        )
        if same:
            continue
        first, last = own[start], own[end - 1]
        # Input that arrived well before the end of the stretch should have been applied.
        cutoff = last.at - stall_s / 2
        arrived = bisect.bisect_right(input_times, cutoff) - bisect.bisect_left(
            input_times, first.at
        )
        if (
            first.ready == 200
            and first.applied is not None
            and last.at - first.at >= stall_s
            and arrived > 0
        ):
            found.append(
                f"{who}: /ready said 200 for {last.at - first.at:.0f}s while {arrived} events "
                f"arrived and it applied none (stuck at {first.applied:.0f})"
            )
        start = end
    return found


def health_violations(samples: Sequence[Sample]) -> list[str]:
    """Samples where /health did not say 200 while the process lived and had answered."""
    found = []
    answered: set[tuple[str, int]] = set()
    for s in samples:
        if not s.alive:
            continue
        if s.ready:
            answered.add((s.worker, s.life))
        if (s.worker, s.life) in answered and s.health != 200:
            found.append(f"{s.worker} process {s.life}: /health {s.health or 'no answer'}")
    return found


# --------------------------------------------------------------------------- producer


class SteadyProducer(threading.Thread):
    """Produces a log to the input topics at ``rate`` events/s, in order, one librdkafka
    producer for all of it; it holds at ``allowed`` messages until the test allows more."""

    def __init__(
        self,
        bootstrap: str,
        unique: str,
        messages: Sequence[SimulatedMessage],
        rate: float,
        allowed: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name="steady-producer")
        self.bootstrap = bootstrap
        self.unique = unique
        self.messages = list(messages)
        self.rate = rate
        self._allowed = len(self.messages) if allowed is None else allowed
        self._credit = threading.Condition()
        self._halt = threading.Event()
        self.sent = 0
        self.acked = 0
        self.times: list[float] = []  # monotonic time of each send, in order
        self.errors: list[str] = []
        self.finished = threading.Event()

    @property
    def allowed(self) -> int:
        """How many messages it may produce so far."""
        return self._allowed

    def allow(self, count: int) -> None:
        """Let it produce up to ``count`` messages (never fewer than before)."""
        with self._credit:
            self._allowed = min(len(self.messages), max(self._allowed, count))
            self._credit.notify_all()

    def allow_more(self, count: int) -> None:
        """Let it produce ``count`` messages more."""
        self.allow(self._allowed + count)

    def allow_all(self) -> None:
        """Let it produce the whole log."""
        self.allow(len(self.messages))

    def halt(self) -> None:
        """Stop producing (teardown)."""
        self._halt.set()
        with self._credit:
            self._credit.notify_all()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # shown by wait_sent
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.finished.set()

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                             "linger.ms": 5})  # fmt: skip

        def on_delivery(err: object, _msg: object) -> None:
            if err is None:
                self.acked += 1
            else:
                self.errors.append(str(err))

        due = time.monotonic()
        for index, message in enumerate(self.messages):
            while index >= self._allowed and not self._halt.is_set():
                with self._credit:
                    self._credit.wait(0.1)
                producer.poll(0)
                due = time.monotonic()  # steady again from where it resumes
            if self._halt.is_set():
                break
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing only
            topic = f"{self.unique}-{message.stream}"
            producer.produce(topic, key=message.key, value=message.value,
                             on_delivery=on_delivery)  # fmt: skip
            producer.poll(0)
            self.times.append(time.monotonic())
            self.sent = index + 1
            due += 1 / self.rate
        left = producer.flush(120)
        if left:
            self.errors.append(f"{left} messages not delivered")

    def wait_sent(self, timeout_s: float = PROGRESS_TIMEOUT_S) -> None:
        """Wait until every message is produced and acknowledged."""
        assert self.finished.wait(timeout_s), f"the producer did not finish within {timeout_s}s"
        assert not self.errors, self.errors[:5]
        assert self.acked == len(self.messages), (self.acked, len(self.messages))


# --------------------------------------------------------------------------- kill loop


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: when, how far the process had got, how it was restarted."""

    number: int
    applied_in_life: float
    produced: int
    restart_on_empty_disk: bool
    ready_after_s: float


def kill_and_restart(
    worker: FieldWorker,
    producer: SteadyProducer,
    *,
    kills: int,
    empty_disk_restarts: int,
    seed: int,
    input_per_restart: int,
    max_pause_s: float = 2.0,
) -> list[Kill]:
    """SIGKILL ``worker`` ``kills`` times, each at a seeded random moment after it has
    made progress since its last start, and restart it (``empty_disk_restarts`` of them on
    an empty data dir). ``input_per_restart`` more messages are allowed while it is down,
    so each new process has input to make progress on."""
    rng = random.Random(seed)
    on_empty = set(rng.sample(range(kills), empty_disk_restarts))
    done: list[Kill] = []
    for number in range(kills):
        wait_for(lambda: (applied(worker) or 0) > 0, PROGRESS_TIMEOUT_S,
                 f"{worker.name}: progress before kill {number + 1}", [worker])  # fmt: skip
        time.sleep(rng.uniform(0, max_pause_s))  # chooses the moment, not for correctness
        count = applied(worker) or 0.0
        produced = producer.sent
        worker.kill()
        producer.allow_more(input_per_restart)
        life = worker.spawn(empty_disk=number in on_empty)
        took = worker.wait_ready(life)
        done.append(Kill(number + 1, count, produced, number in on_empty, took))
    return done


# --------------------------------------------------------------------------- final checks


def redis_hashes(redis_url: str, unique: str, clients: Sequence[str]) -> dict[str, dict[str, str]]:
    """Every client's Redis hash (empty when missing), in one round trip."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        pipe = client.pipeline(transaction=False)
        for client_id in clients:
            pipe.hgetall(f"{unique}:client:{client_id}")
        return {c: dict(h) for c, h in zip(clients, pipe.execute(), strict=True)}


def lagging_clients(
    redis_url: str, unique: str, expected: ReplayedLog, with_prediction: bool
) -> list[str]:
    """Clients whose Redis hash is not yet at their final version (or has no prediction)."""
    hashes = redis_hashes(redis_url, unique, sorted(expected.states))
    return [
        c
        for c, fields in hashes.items()
        if fields.get("version") != str(expected.states[c].version)
        or (with_prediction and "prediction" not in fields)
    ]


def settle(
    redis_url: str,
    unique: str,
    expected: ReplayedLog,
    workers: Sequence[FieldWorker],
    with_prediction: bool,
    timeout_s: float = SETTLE_TIMEOUT_S,
) -> str | None:
    """Wait until every client's Redis hash is at its final version (with a prediction if
    asked); None when it got there, else what was still behind (the checks that follow say
    how). It gives up early when neither the workers' batch counts nor Redis moved for
    ``1.5 × STALL_S``: a stall, not slowness. A worker that dies meanwhile fails at once."""
    deadline = time.monotonic() + timeout_s
    progress: tuple[object, ...] = ()
    moved = time.monotonic()
    while True:
        for worker in workers:
            worker.assert_alive()
        behind = lagging_clients(redis_url, unique, expected, with_prediction)
        if not behind:
            return None
        now = time.monotonic()
        seen = (tuple(applied(w) for w in workers), tuple(behind))
        if seen != progress:
            progress, moved = seen, now
        stalled = now - moved >= 1.5 * STALL_S
        if stalled or now >= deadline:
            why = f"nothing moved for {now - moved:.0f}s" if stalled else f"{timeout_s:.0f}s"
            return (f"every client's last event in Redis: not reached ({why}): {len(behind)} "
                    f"of {len(expected.states)} clients behind, e.g. {behind[:4]}")  # fmt: skip
        time.sleep(0.5)


@dataclass
class StateCheck:
    """What the final state check found."""

    lost: int = 0
    doubled: int = 0
    problems: list[str] = field(default_factory=list)


def check_states(
    redis_url: str,
    unique: str,
    expected: ReplayedLog,
    workers: Sequence[WorkerProcess],
    with_prediction: bool,
) -> StateCheck:
    """Every client's table state (version and features, from whichever worker holds it)
    and Redis hash (as_of, version, features, prediction) against the offline builder."""
    check = StateCheck()
    clients = sorted(expected.states)
    hashes = redis_hashes(redis_url, unique, clients)
    for client_id in clients:
        state = expected.states[client_id]
        assert state.watermark is not None
        want = compute_features(state, state.watermark)
        served = _served(workers, client_id, state.version)
        if served is None:
            check.lost += state.version
            check.problems.append(f"{client_id}: no worker holds its state")
        else:
            version = int(served["version"])  # type: ignore[call-overload]
            check.lost += max(0, state.version - version)
            check.doubled += max(0, version - state.version)
            if version != state.version:
                check.problems.append(f"{client_id}: version {version} != {state.version}")
            got = [math.nan if served["features"][n] is None else served["features"][n]  # type: ignore[index]
                   for n in FEATURE_NAMES]  # fmt: skip
            check.problems += _feature_differences(client_id, "table", got, want)
        fields = hashes[client_id]
        if not fields:
            check.problems.append(f"{client_id}: no Redis hash")
            continue
        if fields.get("as_of") != repr(state.watermark):
            check.problems.append(f"{client_id}: Redis as_of {fields.get('as_of')} != "
                                  f"{state.watermark!r}")  # fmt: skip
        if fields.get("version") != str(state.version):
            check.problems.append(f"{client_id}: Redis version {fields.get('version')} != "
                                  f"{state.version}")  # fmt: skip
        if "as_of" in fields and all(n in fields for n in FEATURE_NAMES):
            online = [float(fields[n]) for n in FEATURE_NAMES]
            check.problems += _feature_differences(client_id, "Redis", online, want)
        if with_prediction and "prediction" not in fields:
            check.problems.append(f"{client_id}: no prediction in Redis")
    return check


def _served(
    workers: Sequence[WorkerProcess], client_id: str, version: int
) -> dict[str, object] | None:
    """The client's state as a worker serves it. A worker that held the client's partition
    before a rebalance may still answer from its old local copy, so with several workers
    the answer at ``version`` wins, else the newest."""
    answers: list[dict[str, object]] = []
    for worker in workers:
        status, body = http_get(worker.web_port, f"/clients/{client_id}/features")
        if status == 200:
            answers.append(json.loads(body))
    for answer in answers:
        if answer["version"] == version:
            return answer
    return max(answers, key=lambda a: int(a["version"]), default=None)  # type: ignore[call-overload]


def _feature_differences(
    client_id: str, where: str, got: Sequence[float], want: Sequence[float]
) -> list[str]:
    for name, a, e in zip(FEATURE_NAMES, got, want, strict=True):
        same = math.isnan(a) if math.isnan(e) else math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-12)
        if not same:
            return [f"{client_id}: {where} {name} {a} != {e}"]
    return []


def scoring_env(worker_env: dict[str, str], registry: Path, model: str) -> dict[str, str]:
    """A worker scoring with ``model`` in small batches, emitting every change, so that each
    client's latest prediction is of its final state."""
    return {**worker_env, "PROFITSTREAM_MODEL_REGISTRY": str(registry),
            "PROFITSTREAM_MODEL": model, "PROFITSTREAM_BATCH_MAX_EVENTS": "200",
            "PROFITSTREAM_PREDICTION_DELTA": "0"}  # fmt: skip


def reference_margins(
    registry: Path, model: str, expected: ReplayedLog, cache: Path
) -> dict[str, float]:
    """Crash-free reference: each client's offline-built features as of its latest event,
    scored by ``model``."""
    scorer = Scorer.from_registry(open_registry(str(registry)), model, cache)
    clients = sorted(expected.states)
    rows = np.array(
        [compute_features(expected.states[c], expected.states[c].watermark or 0.0)
         for c in clients],
        dtype=float,
    )  # fmt: skip
    return {c: s.margin for c, s in zip(clients, scorer.predict(rows), strict=True)}


def read_to_end(
    bootstrap: str, topic: str, timeout_s: float = 120.0, quiet_s: float = 3.0
) -> list[Record]:
    """Every record of ``topic`` up to its current end, in (partition, offset) order.

    Tansu reports a partition's end as its last batch's base offset + 1, so reaching the
    reported end is not enough: the reader goes on until ``quiet_s`` pass without a record.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "field-reader",
                         "enable.auto.commit": False,
                         "fetch.message.max.bytes": 4 << 20})  # fmt: skip
    records: list[Record] = []
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in metadata.partitions}  # fmt: skip
        left = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in left])
        deadline = time.monotonic() + timeout_s
        while left:
            assert time.monotonic() < deadline, f"{topic}: not read to its end in {timeout_s}s"
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            record = _record(message)
            records.append(record)
            if record.offset + 1 >= ends[record.partition]:
                left.discard(record.partition)
        quiet_until = time.monotonic() + quiet_s
        while time.monotonic() < quiet_until:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            records.append(_record(message))
            quiet_until = time.monotonic() + quiet_s
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _record(message: Any) -> Record:
    return Record(message.key(), message.value(), _headers(message.headers()),
                  int(message.partition() or 0), int(message.offset() or 0))  # fmt: skip


def _headers(raw: object) -> dict[str, bytes]:
    # librdkafka hands headers back as a list of (name, bytes-or-None) pairs.
    pairs = raw if isinstance(raw, list) else []
    return {str(name): value or b"" for name, value in pairs}


def predictions_of(records: Sequence[Record]) -> list[Prediction]:
    """The prediction payloads of records (in the given order)."""
    return [Prediction.model_validate_json(r.value or b"") for r in records]


def margin_problems(
    redis_url: str,
    unique: str,
    predictions: Sequence[Prediction],
    reference: dict[str, float],
    version: str | None,
) -> list[str]:
    """Each client's latest prediction (on the topic and in Redis) against the reference,
    and by model ``version`` when given (the only one deployed)."""
    problems = []
    latest = {p.client_id: p for p in predictions}
    hashes = redis_hashes(redis_url, unique, sorted(reference))
    for client_id, margin in reference.items():
        stored = hashes[client_id].get("prediction")
        in_redis = None if stored is None else Prediction.model_validate_json(stored)
        candidates = {"topic": latest.get(client_id), "Redis": in_redis}
        for where, prediction in candidates.items():
            if prediction is None:
                problems.append(f"{client_id}: no prediction on the {where}")
            elif not math.isclose(prediction.predicted_margin, margin, rel_tol=1e-9,
                                  abs_tol=1e-12):  # fmt: skip
                problems.append(f"{client_id}: {where} margin {prediction.predicted_margin} != "
                                f"reference {margin}")  # fmt: skip
            elif version is not None and prediction.model.version != version:
                problems.append(f"{client_id}: {where} prediction by {prediction.model.version}, "
                                f"not {version}")  # fmt: skip
    return problems


def produce_one(
    bootstrap: str, topic: str, key: bytes | None, value: bytes, partitioner: str = "murmur2_random"
) -> tuple[int, int]:
    """Produce one (maybe very large) message; return its (partition, offset). Keys are
    placed as Kafka's Java client and aiokafka place them (murmur2) by default."""
    placed: list[tuple[int, int]] = []
    errors: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "message.max.bytes": 2 << 20, "partitioner": partitioner})  # fmt: skip

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            placed.append((int(msg.partition()), int(msg.offset())))  # type: ignore[attr-defined]

    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(60) == 0, f"not delivered to {topic}"
    assert not errors, errors
    return placed[0]


def findings_report(title: str, findings: Sequence[str], limit: int = 15) -> str:
    """One message for an assertion that lists what a scenario found."""
    shown = "\n  ".join(findings[:limit])
    more = f"\n  … and {len(findings) - limit} more" if len(findings) > limit else ""
    return f"{title}: {len(findings)} finding(s)\n  {shown}{more}"


@dataclass
class FinalCheck:
    """What the checks every scenario ends with found."""

    findings: list[str]
    state: StateCheck
    predictions: list[Prediction]
    settled_s: float


def final_checks(
    *,
    bootstrap: str,
    redis_url: str,
    env: dict[str, str],
    expected: ReplayedLog,
    workers: Sequence[FieldWorker],
    sampler: ReadySampler,
    input_times: Sequence[float],
    reference: dict[str, float] | None,
    version: str | None,
    health: bool = False,
) -> FinalCheck:
    """Settle, then: states and Redis against the offline builder, latest margins against
    the reference (when a model is deployed), /ready (and /health) at every sample, every
    worker still alive. Collects everything it finds rather than stopping at the first."""
    unique = env["PROFITSTREAM_APP_ID"]
    started = time.monotonic()
    findings: list[str] = []
    behind = settle(redis_url, unique, expected, workers, with_prediction=reference is not None)
    settled_s = time.monotonic() - started
    if behind is not None:
        findings.append(behind)
    for worker in workers:
        try:
            worker.assert_alive()
        except AssertionError as exc:
            findings.append(str(exc))
    running = [w.life.worker for w in workers if w.life is not None and w.life.alive()]
    state = check_states(redis_url, unique, expected, running, reference is not None)
    findings += state.problems
    predictions: list[Prediction] = []
    if reference is not None:
        records = read_to_end(bootstrap, env["PROFITSTREAM_TOPICS__PREDICTIONS"])
        predictions = predictions_of(records)
        findings += margin_problems(redis_url, unique, predictions, reference, version)
    findings += ready_violations(sampler.samples, input_times)
    if health:
        findings += health_violations(sampler.samples)
    return FinalCheck(findings, state, predictions, settled_s)
