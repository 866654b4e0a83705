"""Stream == offline on a simulated portfolio with bad input (live broker and Redis).

500 clients x 12 months, 2% malformed, 2% duplicate and 1% late messages, produced by an
independent client (librdkafka) to a real `profitstream worker`. Then, for every client:
the table (HTTP, as of the last event time T) equals ``build_features(history, T)``, and
the Redis hash equals the offline features as of the ``as_of`` stored with it.
"""

from __future__ import annotations

import math
import random

import pandas as pd
import redis

from features.definitions import FEATURE_NAMES, compute_features
from features.offline import build_features
from features.serving import features_from_fields
from features.simulation.messages import history_frame
from features.state import ApplyResult
from streams.stack.processes import wait_until
from tests.assertions import assert_features_close
from tests.services.event_log import (
    client_features,
    metric,
    produce_log,
    rebuild,
    simulated_log,
    wait_until_consumed,
)
from tests.services.kafka_clients import consume, partition_counts
from tests.services.worker_process import running_worker

PRODUCT_TOPICS = ("activity", "billing", "predictions", "monitoring", "dlq")


def _row(frame: pd.DataFrame, client_id: str) -> list[float]:
    return [float(v) for v in frame.loc[client_id, list(FEATURE_NAMES)].to_numpy(dtype=float)]


def test_500_clients_with_bad_input_match_the_offline_builder(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str
) -> None:
    messages = simulated_log(500, 12, malformed=0.02, duplicate=0.02, late=0.01)
    history = history_frame(messages)
    expected = rebuild(messages)
    last_event_time = expected.last_event_time
    offline = build_features(history, as_of=last_event_time)
    assert len(offline) == len(expected.states) == 500

    with running_worker(worker_env) as worker:
        # Apache Kafka does not auto-create topics: the worker must create its own.
        partitions = {f"{unique}-{name}": 4 for name in PRODUCT_TOPICS}
        partitions |= {f"{unique}-control": 1, f"{unique}-audit": 1}
        wait_until(
            lambda: partition_counts(kafka_bootstrap, list(partitions)) == partitions,
            timeout_s=30,
            what=f"topics {partitions}",
        )
        produce_log(kafka_bootstrap, unique, messages)
        wait_until_consumed(worker, len(messages))

        # The table, as of T, through the worker's HTTP endpoint.
        for client_id, state in expected.states.items():
            served = client_features(worker, client_id, last_event_time)
            assert served["version"] == state.version, client_id
            values = served["features"]
            assert isinstance(values, dict)
            assert_features_close(
                [math.nan if values[n] is None else float(values[n]) for n in FEATURE_NAMES],
                _row(offline, client_id),
                f"table {client_id}",
            )
        assert worker.get("/clients/nobody/features")[0] == 404
        assert worker.get("/clients/client-00000/features?as_of=yesterday")[0] == 422

        # Redis: each hash as of its own as_of (the client's latest event).
        with redis.Redis.from_url(redis_url, decode_responses=True) as client:
            hashes = {c: client.hgetall(f"{unique}:client:{c}") for c in expected.states}
        for client_id, state in expected.states.items():
            as_of, online = features_from_fields(hashes[client_id])
            assert as_of == state.watermark
            assert hashes[client_id]["version"] == str(state.version)
            assert_features_close(online, compute_features(state, as_of), f"redis {client_id}")
        # The line above uses the offline end state at the client's own as_of; that it
        # equals build_features(history, as_of) is checked on a sample (a full replay each).
        for client_id in random.Random(3).sample(sorted(expected.states), 5):
            as_of, online = features_from_fields(hashes[client_id])
            at_as_of = build_features(history, as_of=as_of)
            assert_features_close(online, _row(at_as_of, client_id), f"redis {client_id}")

        # Bad input: every malformed and late message in the DLQ, with its headers.
        injected = [m for m in messages if m.injected == "malformed"]
        late = expected.outcomes[ApplyResult.LATE]
        assert len(injected) > 0
        assert late > 0
        dead = consume(kafka_bootstrap, f"{unique}-dlq", expected=len(injected) + late)
        assert len(dead) == len(injected) + late
        assert {m.value for m in injected} <= {d.value for d in dead}
        reasons = [d.headers["profitstream.error.reason"] for d in dead]
        assert reasons.count(b"late") == late
        for record in dead:
            assert record.headers["profitstream.source.topic"] in (
                f"{unique}-activity".encode(), f"{unique}-billing".encode())  # fmt: skip
            assert int(record.headers["profitstream.source.partition"]) in range(4)
            assert int(record.headers["profitstream.source.offset"]) >= 0
            assert record.headers["profitstream.error"]
        dead_letters = metric(worker, "profitstream_dead_letters_total")
        assert sum(dead_letters.values()) == len(injected) + late

        # Duplicates counted once: as many as the offline builder saw, and no more applied.
        outcomes = metric(worker, "profitstream_event_outcomes_total")
        assert expected.outcomes[ApplyResult.DUPLICATE] > 0
        assert outcomes['{outcome="duplicate"}'] == expected.outcomes[ApplyResult.DUPLICATE]
        assert outcomes['{outcome="applied"}'] == expected.outcomes[ApplyResult.APPLIED]
        assert worker.get("/health")[0] == 200
