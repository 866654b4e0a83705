"""Scenario 5: poison on every topic the worker reads, while it runs with a model.

A 100,000-deep nested JSON array and a ~1 MB message land on each input topic, the
control topic and the monitoring topic (read by the experiment monitor while a shadow
experiment runs). The worker must stay up and healthy, audit the control ones with a
reason, put every one of them in the DLQ unchanged with an error header, apply the valid
events that follow, and come back ready from an empty disk.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from models_store.experiments.outcomes import Tracked, outcome_record
from tests.field.harness import (
    PROGRESS_TIMEOUT_S,
    ReadySampler,
    SteadyProducer,
    applied,
    check_states,
    final_checks,
    findings_report,
    fleet,
    health_violations,
    problems_cleared,
    produce_one,
    read_to_end,
    ready_violations,
    reference_margins,
    wait_for,
)
from tests.services.control_plane import V1, V2, audit, command, control_env
from tests.services.event_log import rebuild, simulated_log
from tests.services.kafka_clients import Record

pytestmark = pytest.mark.field

RATE = 300  # events/s
DEEP = b"[" * 100_000 + b"]" * 100_000
BIG = b'{"pad": "' + b"x" * (1_000_000 - 11) + b'"}'  # 1,000,000 bytes of valid JSON
POISON = {"deep": DEEP, "big": BIG}
HANDLED_TIMEOUT_S = 120.0


def _results_after(bootstrap: str, topic: str, experiment_id: str, after: tuple[int, int]) -> int:
    """How many experiment_result records of the experiment the monitoring topic holds in
    partition ``after[0]`` beyond offset ``after[1]`` (poison and all on the topic)."""
    count = 0
    for record in read_to_end(bootstrap, topic):
        if record.partition != after[0] or record.offset <= after[1]:
            continue
        if len(record.value or b"") > 64 * 1024:
            continue  # the poison
        try:
            document = json.loads(record.value or b"{}")
        except (ValueError, RecursionError):
            continue
        if isinstance(document, dict) and document.get("kind") == "experiment_result":
            count += document.get("experiment_id") == experiment_id
    return count


def _closed_outcome(experiment_id: str) -> bytes:
    """One closed champion outcome: it changes the experiment's tally, so the monitor
    publishes a new result once it has read past whatever came before it."""
    tracked = Tracked(
        as_of=1.7e9, until=1.7e9 + 90 * 86_400, prediction_id="field-barrier", model=V1,
        experiment_id=experiment_id, arm="champion", predicted=0.3, lower=0.1, upper=0.5,
        persistence=0.25, revenue=1_000.0, cost=700.0,
    )  # fmt: skip
    return outcome_record(tracked).to_json()


def _dead_letter(letters: list[Record], topic: str, position: tuple[int, int]) -> Record | None:
    for letter in letters:
        source = (letter.headers.get("profitstream.source.topic", b"").decode(),
                  letter.headers.get("profitstream.source.partition", b"").decode(),
                  letter.headers.get("profitstream.source.offset", b"").decode())  # fmt: skip
        if source == (topic, str(position[0]), str(position[1])):
            return letter
    return None


def _letter_problem(letter: Record | None, original: bytes) -> str | None:
    """What is wrong with a poison message's dead letter, if anything: missing, no error
    header, or changed (cutting a message too large for one produce request is documented,
    with headers giving the original's size and sha256)."""
    if letter is None:
        return "not in the DLQ"
    headers = letter.headers
    if not headers.get("profitstream.error"):
        return "in the DLQ without an error header"
    value = letter.value or b""
    if value == original:
        return None
    cut = (
        headers.get("profitstream.truncated") == b"true"
        and headers.get("profitstream.original.size") == str(len(original)).encode()
        and headers.get("profitstream.original.sha256")
        == hashlib.sha256(original).hexdigest().encode()
        and original.startswith(value)
    )
    return None if cut else f"changed in the DLQ ({len(original)} -> {len(value)} bytes)"


@dataclass
class Placed:
    """The poison messages on the topics, and what the worker made of them."""

    bootstrap: str
    env: dict[str, str]
    topics: dict[str, str]
    positions: dict[tuple[str, str], tuple[int, int]]  # (topic name, kind) -> where

    def problems(self, *names: str) -> list[str]:
        """What is not handled yet of the poison on the topics ``names``: the control
        topic's audited with a reason, every one in the DLQ with an error header."""
        found = []
        if "control" in names:
            trail = {r["offset"]: r for r in audit(self.env, self.bootstrap)
                     if r["kind"] == "command"}  # fmt: skip
            for (name, kind), (_, offset) in self.positions.items():
                record = trail.get(offset)
                if name != "control":
                    continue
                if record is None:
                    found.append(f"{kind} message on control: no audit record")
                elif record["outcome"] != "rejected" or not record["reason"]:
                    found.append(f"{kind} message on control: audited {record['outcome']} "
                                 f"({record['reason']})")  # fmt: skip
        letters = read_to_end(self.bootstrap, self.env["PROFITSTREAM_TOPICS__DLQ"])
        for (name, kind), position in self.positions.items():
            if name in names:
                letter = _dead_letter(letters, self.topics[name], position)
                problem = _letter_problem(letter, POISON[kind])
                if problem:
                    found.append(f"{kind} message on {name}: {problem}")
        return found

    def reasons(self) -> dict[str, str]:
        """The DLQ's reason header of each poison message."""
        letters = read_to_end(self.bootstrap, self.env["PROFITSTREAM_TOPICS__DLQ"])
        reasons = {}
        for (name, kind), position in self.positions.items():
            letter = _dead_letter(letters, self.topics[name], position)
            reason = None if letter is None else letter.headers.get("profitstream.error.reason")
            reasons[f"{name}/{kind}"] = "not in the DLQ" if reason is None else reason.decode()
        return reasons


@pytest.mark.timeout(900)
def test_poison_on_every_topic_is_dead_lettered_and_the_worker_carries_on(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str,
    field_registry: Path, field_keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    env = control_env(worker_env, field_registry, field_keys,
                      PROFITSTREAM_BATCH_MAX_EVENTS="200", PROFITSTREAM_PREDICTION_DELTA="0",
                      PROFITSTREAM_MONITOR_INTERVAL_S="1")  # fmt: skip
    unique = env["PROFITSTREAM_APP_ID"]
    topics = {name: env[f"PROFITSTREAM_TOPICS__{name.upper()}"]
              for name in ("activity", "billing", "control", "monitoring")}  # fmt: skip
    experiment_id = f"{unique}-shadow"
    keys = {"activity": b"client-00000", "billing": b"client-00000",
            "control": b"profitability", "monitoring": experiment_id.encode()}  # fmt: skip
    messages = simulated_log(20, 8, malformed=0.0, duplicate=0.0, late=0.0, seed=1305)
    expected = rebuild(messages)
    reference = reference_margins(field_registry, V1, expected, tmp_path / "scorer")
    half = len(messages) // 2
    findings: list[str] = []
    started = time.monotonic()
    with fleet(tmp_path) as add:
        worker = add("a", env)
        worker.start()
        producer = SteadyProducer(kafka_bootstrap, unique, messages, RATE, allowed=half)
        with ReadySampler([worker]) as sampler:
            producer.start()
            try:
                wait_for(lambda: (applied(worker) or 0) >= half, PROGRESS_TIMEOUT_S,
                         "the first half", [worker])  # fmt: skip
                # A shadow experiment, so that the monitor reads the monitoring topic.
                assert command(env, kafka_bootstrap, "register", model=V2)["outcome"] == "accepted"
                shadow = command(env, kafka_bootstrap, "experiment_start",
                                 experiment_id=experiment_id, challenger=V2, mode="shadow",
                                 salt="s")  # fmt: skip
                assert shadow["outcome"] == "accepted", shadow
                placed = Placed(kafka_bootstrap, env, topics, {
                    (name, kind): produce_one(kafka_bootstrap, topic, keys[name], value)
                    for name, topic in topics.items() for kind, value in POISON.items()
                })  # fmt: skip
                producer.allow_all()  # valid events after the poison
                # Changes the experiment's tally: a result published after it shows the
                # monitor has read past the poison.
                barrier = produce_one(kafka_bootstrap, topics["monitoring"], keys["monitoring"],
                                      _closed_outcome(experiment_id))  # fmt: skip
                findings += problems_cleared(lambda: placed.problems("activity", "billing"),
                                             HANDLED_TIMEOUT_S, "input poison handled",
                                             [worker])  # fmt: skip
                findings += problems_cleared(lambda: placed.problems("control"),
                                             HANDLED_TIMEOUT_S, "control poison handled",
                                             [worker])  # fmt: skip
                past = problems_cleared(
                    lambda: [] if _results_after(kafka_bootstrap, topics["monitoring"],
                                                 experiment_id, barrier) else ["none yet"],
                    HANDLED_TIMEOUT_S, "an experiment result after the monitoring poison",
                    [worker])  # fmt: skip
                findings += past or problems_cleared(
                    lambda: placed.problems("monitoring"), HANDLED_TIMEOUT_S / 2,
                    "monitoring poison dead-lettered", [worker])  # fmt: skip
                producer.wait_sent()
                result = final_checks(
                    bootstrap=kafka_bootstrap, redis_url=redis_url, env=env, expected=expected,
                    workers=[worker], sampler=sampler, input_times=producer.times,
                    reference=reference, version="1.0.0", health=True,
                )  # fmt: skip
                findings += result.findings
                reasons = placed.reasons()
                worker.stop()
                # An empty disk: the table comes back from the changelog alone.
                ready_s = worker.wait_ready(worker.spawn(empty_disk=True))
                check = check_states(redis_url, unique, expected, [worker.current], True)
                findings += [f"after the empty-disk restart: {p}" for p in check.problems]
            finally:
                producer.halt()
        worker.stop()
    findings += worker.error_lines()
    later = ready_violations(sampler.samples, producer.times) + health_violations(sampler.samples)
    findings += [found for found in later if found not in findings]
    with capsys.disabled():
        print(f"\n[field] poison: {time.monotonic() - started:.0f}s; DLQ reasons {reasons}; "
              f"ready from an empty disk in {ready_s:.1f}s; /ready samples "
              f"{sampler.summary()}")  # fmt: skip
    assert not findings, findings_report("poison messages", findings)
