"""10,000+ bad messages of 22 kinds, mixed with valid ones, through a live worker.

A simulated portfolio (60 clients x 6 months, 3% re-sent, 2% late) is produced by an
independent client (librdkafka) with 480 bad messages of every kind of
``tests.services.bad_events`` (drawn from the published JSON Schema: wrong types, missing
and unknown fields, bad times, NaN and huge numbers, not UTF-8, not an object, truncated,
nested deep, oversized, null and mismatching keys, future times, ...) and 240 of them sent
twice, at random places among the valid ones. Then: every bad message is in the DLQ, once
per copy, byte for byte with its key, with the reason its kind documents; every late one
too; nothing else is. Every valid event is applied exactly once: each client's version
and features equal the offline builder's, and so do the worker's applied and duplicate
counts. The worker is up and ready at the end.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random

from confluent_kafka import Producer

from features.definitions import FEATURE_NAMES, compute_features
from features.events import EventStream, InvalidEventError, parse_event
from features.state import DEFAULT_ALLOWED_LATENESS_S, ApplyResult, ClientState, apply_event
from streams.stack.processes import wait_until
from tests.assertions import assert_features_close
from tests.services.bad_events import KIND_REASONS, bad_message
from tests.services.event_log import client_features, metric, simulated_log, wait_until_consumed
from tests.services.kafka_clients import consume, partition_counts
from tests.services.worker_process import running_worker

CLIENTS, MONTHS, SEED = 60, 6, 21
BAD_PER_KIND = 480
SENT_TWICE = 240
PRODUCT_TOPICS = ("activity", "billing", "predictions", "monitoring", "dlq")


@dataclass(frozen=True)
class Sent:
    """One message as produced: its topic's stream, key, value and what it is."""

    stream: EventStream
    key: bytes | None
    value: bytes | None
    kind: str  # a bad kind, or the simulator's mark ("", "duplicate", "late")
    reason: str | None = None  # the dead letter's reason, for a bad message


def _stream(name: str) -> EventStream:
    return "activity" if name == "activity" else "billing"


def fuzzed_log(rng: Random) -> tuple[list[Sent], list[Sent]]:
    """The whole log in production order, and its bad messages."""
    clean = simulated_log(CLIENTS, MONTHS, malformed=0.0, duplicate=0.03, late=0.02, seed=SEED)
    kinds = sorted(KIND_REASONS) * BAD_PER_KIND
    bad: list[Sent] = []
    for number, kind in enumerate(kinds):
        base = rng.choice(clean)
        event = json.loads(base.value)
        # Its own event_id: were it applied, the client's version would show it.
        event["event_id"] = f"{event['event_id']}-bad{number}"
        stream = _stream(base.stream)
        key, value = bad_message(kind, stream, event, rng)
        bad.append(Sent(stream, key, value, kind, KIND_REASONS[kind]))
    bad += [rng.choice(bad) for _ in range(SENT_TWICE)]
    placed = [(float(i), Sent(_stream(m.stream), m.key, m.value, m.injected))
              for i, m in enumerate(clean)]  # fmt: skip
    placed += [(rng.uniform(0, len(clean)), message) for message in bad]
    placed.sort(key=lambda pair: pair[0])
    return [message for _, message in placed], bad


@dataclass(frozen=True)
class Offline:
    """What the offline builder makes of the log: states, outcomes, the late messages."""

    states: dict[str, ClientState]
    outcomes: Counter[ApplyResult]
    late: list[Sent]


def offline(log: Sequence[Sent]) -> Offline:
    """Every message through the stream's own validation and ``apply_event``, in order."""
    now = datetime.now(UTC)
    states: dict[str, ClientState] = {}
    outcomes: Counter[ApplyResult] = Counter()
    late: list[Sent] = []
    for message in log:
        try:
            event = parse_event(message.value or b"", message.stream, key=message.key, now=now)
        except InvalidEventError as exc:
            rejected: str | None = exc.reason
        else:
            rejected = None
        # The generator's word, not parse_event's, says what each message is.
        assert rejected == message.reason, (message.kind, rejected, (message.value or b"")[:200])
        if rejected is not None:
            continue
        state = states.setdefault(event.client_id, ClientState(event.client_id))
        outcome = apply_event(state, event, DEFAULT_ALLOWED_LATENESS_S)
        outcomes[outcome] += 1
        if outcome is ApplyResult.LATE:
            late.append(message)
    return Offline(states, outcomes, late)


def produce_all(bootstrap: str, topic: str, messages: Sequence[Sent]) -> None:
    """Produce in order (null values too) and wait until every one is acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors: list[str] = []

    def on_delivery(err: object, _: object) -> None:
        if err is not None:
            errors.append(str(err))

    for message in messages:
        producer.produce(topic, key=message.key, value=message.value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0, f"messages not delivered to {topic}"
    assert not errors, errors[:5]


def _letter(topic: str, message: Sent, reason: str) -> tuple[str, bytes | None, bytes, str]:
    return topic, message.key, message.value or b"", reason


def test_ten_thousand_bad_messages_go_to_the_dlq_and_valid_ones_apply_once(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str
) -> None:
    started = time.monotonic()
    log, bad = fuzzed_log(Random(SEED))
    expected = offline(log)
    topic_of = {"activity": f"{unique}-activity", "billing": f"{unique}-billing"}
    letters = Counter(_letter(topic_of[m.stream], m, m.reason or "") for m in bad)
    letters += Counter(_letter(topic_of[m.stream], m, "late") for m in expected.late)
    assert len(bad) >= 10_000
    assert expected.late
    assert expected.outcomes[ApplyResult.DUPLICATE]

    with running_worker(worker_env) as worker:
        # Apache Kafka does not auto-create topics: the worker must create its own.
        partitions = {f"{unique}-{name}": 4 for name in PRODUCT_TOPICS}
        wait_until(
            lambda: partition_counts(kafka_bootstrap, list(partitions)) == partitions,
            timeout_s=30,
            what=f"topics {partitions}",
        )
        for stream, topic in topic_of.items():
            produce_all(kafka_bootstrap, topic, [m for m in log if m.stream == stream])
        wait_until_consumed(worker, len(log), timeout_s=120)
        dead = consume(kafka_bootstrap, f"{unique}-dlq", expected=letters.total(), timeout_s=90)
        dead_letters = metric(worker, "profitstream_dead_letters_total")
        outcomes = metric(worker, "profitstream_event_outcomes_total")
        last_event_time = max(s.watermark or 0.0 for s in expected.states.values())
        served = {c: client_features(worker, c, last_event_time) for c in expected.states}
        assert worker.get("/health")[0] == 200
        assert worker.get("/ready")[0] == 200

    # Every bad message in the DLQ, each copy once, unchanged, with its kind's reason.
    got = Counter(
        (d.headers["profitstream.source.topic"].decode(), d.key, d.value or b"",
         d.headers["profitstream.error.reason"].decode())
        for d in dead
    )  # fmt: skip
    missing, unexpected = letters - got, got - letters
    assert not missing, list(missing)[:3]
    assert not unexpected, list(unexpected)[:3]
    assert sum(dead_letters.values()) == letters.total()
    for record in dead:
        assert int(record.headers["profitstream.source.partition"]) in range(4)
        assert int(record.headers["profitstream.source.offset"]) >= 0
        assert record.headers["profitstream.error"]

    # Every valid event applied once: versions and features equal the offline builder's.
    for client_id, state in expected.states.items():
        assert served[client_id]["version"] == state.version, client_id
        values = served[client_id]["features"]
        assert isinstance(values, dict)
        assert_features_close(
            [float("nan") if values[n] is None else float(values[n]) for n in FEATURE_NAMES],
            compute_features(state, last_event_time),
            f"table {client_id}",
        )
    applied = expected.outcomes[ApplyResult.APPLIED]
    assert outcomes['{outcome="applied"}'] == applied
    assert outcomes['{outcome="duplicate"}'] == expected.outcomes[ApplyResult.DUPLICATE]

    right = sum(1 for d in dead if d.headers["profitstream.error.reason"] != b"late")
    print(
        f"fuzz: {len(bad):,} invalid of {len(KIND_REASONS)} kinds, {right:,} in the DLQ with "
        f"the right reason, {applied:,} valid applied once "
        f"({expected.outcomes[ApplyResult.DUPLICATE]} re-sent counted once, "
        f"{len(expected.late)} late in the DLQ; {len(log):,} messages, "
        f"{time.monotonic() - started:.0f} s)"
    )
