"""The control plane on a live broker (Tansu, and Apache Kafka in CI) with real workers.

- Two workers of one app; a model is deployed, then rolled back, while events flow: every
  prediction names the deployment its partition had switched to at its triggering
  event's offset (``model_switch`` audit records), no event is scored twice, none lost.
- Every kind of rejected command lands in the audit trail and the DLQ with its reason.
- ``erase_client`` completes without a further event: the CLI waits for the worker's
  ``erasure`` report and names what was erased; the client leaves no trace in the table,
  the changelog's compacted view, Redis or the predictions topic (a tombstone), and is
  never scored again; an unknown client is "nothing to erase", a second erasure "already
  erased".
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from features.simulation.messages import SimulatedMessage
from models_store.control.commands import Role
from models_store.control.signing import Principal, issue, load_keyring, new_key, sign
from models_store.control.state import client_digest
from models_store.scoring.prediction import Prediction
from streams.cli.audit_lookup import model_at
from streams.stack.processes import free_port, wait_until
from tests.services.cli import assert_one_line_error, run_cli
from tests.services.control_plane import (
    V1,
    V2,
    audit,
    command,
    control_env,
)
from tests.services.event_log import metric, produce_log, rebuild, simulated_log
from tests.services.kafka_clients import Record, consume, produce
from tests.services.worker_process import running_worker


def _positions(
    bootstrap: str, unique: str, counts: dict[str, int]
) -> dict[str, tuple[str, int, int]]:
    """event_id -> (topic, partition, offset) of every produced input message."""
    positions = {}
    for stream, count in counts.items():
        topic = f"{unique}-{stream}"
        records: list[Record] = consume(bootstrap, topic, count, timeout_s=60)
        assert len(records) == count
        for record in records:
            event_id = json.loads(record.value or b"{}")["event_id"]
            positions[event_id] = (topic, record.partition, record.offset)
    return positions


def _predictions(
    bootstrap: str, unique: str, worker_metric: float, tombstones: int = 0
) -> list[Prediction]:
    """The predictions on the topic (``tombstones`` erasure tombstones beside them)."""
    expected = int(worker_metric) + tombstones
    records = consume(bootstrap, f"{unique}-predictions", expected, timeout_s=60)
    assert len(records) == expected
    assert sum(r.value is None for r in records) == tombstones
    ordered = sorted(records, key=lambda r: (r.partition, r.offset))
    return [Prediction.model_validate_json(r.value) for r in ordered if r.value is not None]


class SlowProducer(threading.Thread):
    """Produces a log in slices while the test publishes commands; it holds before the
    last third until ``release`` is set, so that part is produced after the last command."""

    def __init__(self, bootstrap: str, unique: str, messages: list[SimulatedMessage]) -> None:
        super().__init__(daemon=True)
        self.args = (bootstrap, unique, messages)
        self.produced = 0
        self.release = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        bootstrap, unique, messages = self.args
        slices = 30
        step = len(messages) // slices + 1
        for index, start in enumerate(range(0, len(messages), step)):
            if index == 2 * slices // 3:
                self.release.wait(120)
            produce_log(bootstrap, unique, messages[start : start + step])
            self.produced = start + step
            time.sleep(0.2)
        self.done.set()


def test_deploy_and_rollback_switch_two_workers_at_recorded_offsets(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str,
    control_registry: Path, control_keys: Path,
) -> None:  # fmt: skip
    env = control_env(worker_env, control_registry, control_keys,
                      PROFITSTREAM_PREDICTION_DELTA="0",
                      PROFITSTREAM_BATCH_MAX_EVENTS="300")  # fmt: skip
    second = {**env, "PROFITSTREAM_DATA_DIR": env["PROFITSTREAM_DATA_DIR"] + "-b",
              "PROFITSTREAM_WEB_PORT": str(free_port())}  # fmt: skip
    messages = simulated_log(80, 10, malformed=0, duplicate=0, late=0, seed=9)
    counts = Counter(m.stream for m in messages)
    with running_worker(env) as first, running_worker(second) as other:
        producer = SlowProducer(kafka_bootstrap, unique, messages)
        producer.start()
        try:
            wait_until(lambda: producer.produced >= len(messages) // 4, timeout_s=60,
                       what="a quarter of the log")  # fmt: skip
            assert command(env, kafka_bootstrap, "register", model=V2)["outcome"] == "accepted"
            deployed = command(env, kafka_bootstrap, "deploy", model=V2)
            assert deployed["outcome"] == "accepted", deployed
            revision = deployed["after"]["deployment_revision"]
            # Both workers score with v2 before it is rolled back (events keep flowing).
            wait_until(lambda: len({r["worker"] for r in audit(env, kafka_bootstrap)
                                    if r["kind"] == "model_switch"
                                    and r["deployment_revision"] == revision}) == 2,
                       timeout_s=60, what="both workers to switch to v2")  # fmt: skip
            rolled = command(env, kafka_bootstrap, "rollback", model=None)
            assert rolled["outcome"] == "accepted", rolled
            assert rolled["after"]["champion"] == V1
        finally:
            producer.release.set()
            producer.join(120)
        assert producer.done.is_set()
        workers = (first, other)

        def processed() -> float:
            return sum(sum(metric(w, "profitstream_batch_events_sum").values()) for w in workers)

        wait_until(lambda: processed() >= len(messages), timeout_s=240,
                   what="both workers to process every message")  # fmt: skip
        emitted = sum(
            sum(metric(w, "profitstream_predictions_emitted_total").values()) for w in workers
        )
        read = [sum(metric(w, "profitstream_events_consumed_total").values()) for w in workers]
        assert all(count > 0 for count in read), f"one worker read nothing: {read}"
        # An erasure with two workers: done once both answered, each for its partitions.
        victim = messages[0].key.decode()
        erased = run_cli("clients", "erase", victim, env=env)
        assert erased.returncode == 0, erased
        assert erased.stdout.startswith(f"erased {victim}"), erased.stdout
    reports = [r for r in audit(env, kafka_bootstrap) if r["kind"] == "erasure"]
    assert len({r["worker"] for r in reports}) == 2
    partitions = int(env["PROFITSTREAM_TOPIC_PARTITIONS"])
    # Complete once the reports together cover every partition (a rebalance during the
    # erasure makes the new owner sweep, and report, a partition again).
    assert {p for r in reports for p in r["swept"]} == set(range(partitions))
    assert [len(r["table"]) for r in reports if r["found"]] == [1]

    records = audit(env, kafka_bootstrap)
    switches: dict[tuple[str, int], list[tuple[int, int, str]]] = defaultdict(list)
    for record in records:
        if record["kind"] == "model_switch":
            for part in record["partitions"]:
                switches[(part["topic"], part["partition"])].append(
                    (part["from_offset"], record["deployment_revision"], record["champion"])
                )
    assert len({r["worker"] for r in records if r["kind"] == "model_switch"}) == 2
    for history in switches.values():
        # A partition's deployments only move forward, at increasing offsets.
        assert history == sorted(history)
        assert len({revision for _, revision, _ in history}) == len(history)

    positions = _positions(kafka_bootstrap, unique, counts)
    predictions = _predictions(kafka_bootstrap, unique, emitted, tombstones=len(reports))
    versions: Counter[str] = Counter()
    for prediction in predictions:
        assert prediction.event_id is not None
        topic, partition, offset = positions[prediction.event_id]
        before = [s for s in switches[(topic, partition)] if s[0] <= offset]
        assert before, f"no deployment recorded for {topic}/{partition}@{offset}"
        champion = max(before)[2]
        assert f"{prediction.model.name}@{prediction.model.version}" == champion, (
            prediction.event_id, topic, partition, offset, switches[(topic, partition)],
        )  # fmt: skip
        versions[champion] += 1
    # v1 before the deploy and after the rollback, v2 in between.
    assert versions[V1] > 0
    assert versions[V2] > 0
    # Nothing scored twice: one prediction per client and triggering event.
    assert max(Counter((p.client_id, p.event_id) for p in predictions).values()) == 1
    # Nothing lost: every client's last prediction is of its final state.
    expected = rebuild(messages)
    last = {p.client_id: p for p in predictions}
    assert set(last) == set(expected.states)
    for client_id, prediction in last.items():
        assert prediction.features_as_of.timestamp() == expected.states[client_id].watermark

    # The audit trail alone says which model scored a client at a time.
    client_id = next(iter(last))
    answer = model_at(records, client_id, datetime.now(UTC), 4)
    assert f"scored by {V1}" in answer, answer


def test_every_rejected_command_kind_is_audited_and_dead_lettered(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str,
    control_registry: Path, control_keys: Path,
) -> None:  # fmt: skip
    env = control_env(worker_env, control_registry, control_keys)
    keyring = load_keyring(control_keys)
    admin, operator = keyring.principals["alice"], keyring.principals["otto"]
    now = datetime.now(UTC)
    control = env["PROFITSTREAM_TOPICS__CONTROL"]

    def signed(kind: str, by: Principal, issued_at: datetime = now, **args: Any) -> dict[str, Any]:
        return issue(kind, args, by, issued_at=issued_at)

    good = signed("register", admin, model=V2)
    unsigned = {k: v for k, v in signed("register", admin, model=V2).items() if k != "signature"}
    tampered = {**signed("register", admin, model=V2), "args": {"model": V1}}
    forged = sign(signed("deploy", admin, model=V1), bytes.fromhex(new_key()))
    stranger = Principal("mallory", Role.ADMIN, bytes.fromhex(new_key()))
    expired = signed("register", admin, now - timedelta(minutes=30), model=V2)
    wrong_role = signed("deploy", operator, model=V2)
    bad_args = signed("deploy", admin, model="not a ref")
    cases = [
        (good, None),
        (good, "replayed"),
        (unsigned, "unsigned"),
        (tampered, "bad_signature"),
        (forged, "bad_signature"),
        (signed("register", stranger, model=V2), "unknown_principal"),
        (expired, "expired"),
        (wrong_role, "forbidden"),
        (bad_args, "malformed"),
        ({"not": "a command"}, "unsigned"),
    ]
    raw_cases = [(b"{not json", "malformed")]
    with running_worker(env):
        produce(kafka_bootstrap, control, [(b"profitability", json.dumps(doc).encode())
                                           for doc, _ in cases])  # fmt: skip
        produce(kafka_bootstrap, control, [(b"profitability", raw) for raw, _ in raw_cases])
        expected = [reason for _, reason in cases] + [reason for _, reason in raw_cases]

        def audited() -> list[dict[str, Any]]:
            # The worker's seed (its PROFITSTREAM_MODEL) comes first, before any command.
            return [r for r in audit(env, kafka_bootstrap)
                    if r["kind"] == "command" and r["type"] != "seed"]  # fmt: skip

        wait_until(lambda: len(audited()) >= len(expected), timeout_s=60,
                   what="an audit record for every command")  # fmt: skip
        records = sorted(audited(), key=lambda r: r["offset"])
        stale = signed("deploy", admin, model=V2)
        stale["expected_revision"] = 0
        stale_value = json.dumps(sign(stale, admin.key)).encode()
        produce(kafka_bootstrap, control, [(b"profitability", stale_value)])
        wait_until(lambda: len(audited()) > len(expected), timeout_s=60, what="the stale one")
        stale_record = max(audited(), key=lambda r: r["offset"])
    assert [r["reason"] for r in records] == expected
    assert records[0]["outcome"] == "accepted"
    assert records[0]["after"]["registered"] == sorted([V1, V2])
    for record in records[1:]:
        assert record["outcome"] == "rejected"
        assert record["before"] == record["after"]
        assert record["message"]
    assert records[6]["issued_by"] == "alice"  # who, even when refused
    assert stale_record["reason"] == "stale"

    dead = consume(kafka_bootstrap, env["PROFITSTREAM_TOPICS__DLQ"], len(expected), 60)
    by_offset = {int(d.headers["profitstream.source.offset"]): d for d in dead}
    for record in records[1:]:
        letter = by_offset[record["offset"]]
        assert letter.headers["profitstream.error.reason"] == f"control_{record['reason']}".encode()
        assert letter.headers["profitstream.source.topic"] == control.encode()
        assert letter.headers["profitstream.error"].decode() == record["message"][:1024]


def test_an_erased_client_leaves_no_trace(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str,
    control_registry: Path, control_keys: Path,
) -> None:  # fmt: skip
    """No event follows the command: the erasure completes on its own, and the CLI says
    what was erased once it has; unknown and already erased clients succeed too."""
    env = control_env(worker_env, control_registry, control_keys, PROFITSTREAM_PREDICTION_DELTA="0")
    messages = simulated_log(30, 8, malformed=0, duplicate=0, late=0, seed=4)
    half = len(messages) // 2
    victim = messages[0].key.decode()
    store_key = f"{unique}:client:{victim}"
    with running_worker(env) as worker:
        produce_log(kafka_bootstrap, unique, messages[:half])
        wait_until(lambda: sum(metric(worker, "profitstream_batch_events_sum").values()) >= half,
                   timeout_s=120, what="the first half")  # fmt: skip
        with redis.Redis.from_url(redis_url) as client:
            assert client.exists(store_key)
        assert worker.get(f"/clients/{victim}/features")[0] == 200
        assert worker.get(f"/clients/{victim}/prediction")[0] == 200
        emitted_before = sum(metric(worker, "profitstream_predictions_emitted_total").values())

        started = time.monotonic()
        erased = run_cli("clients", "erase", victim, env=env)
        cli_s = time.monotonic() - started
        assert erased.returncode == 0, erased
        # Gone from every store the moment the CLI says so, with no event since.
        assert worker.get(f"/clients/{victim}/features")[0] == 404
        assert worker.get(f"/clients/{victim}/prediction")[0] == 404
        with redis.Redis.from_url(redis_url) as client:
            assert not client.exists(store_key)
        said = " ".join(erased.stdout.split())
        assert said.startswith(f"erased {victim} (control offset"), said
        for named in ("table partition", "changelog tombstone", "Redis hash deleted (1)",
                      "predictions tombstone sent"):  # fmt: skip
            assert named in said, said

        unknown = run_cli("clients", "erase", "nobody-at-all", env=env)
        assert unknown.returncode == 0, unknown
        assert "nothing to erase" in unknown.stdout, unknown.stdout
        again = run_cli("clients", "erase", victim, env=env)
        assert again.returncode == 0, again
        assert "already erased" in again.stdout, again.stdout

        trail = audit(env, kafka_bootstrap)
        command_record = next(r for r in trail if r["kind"] == "command"
                              and r["type"] == "erase_client" and r["outcome"] == "accepted"
                              and r["args"]["client_sha256"] == client_digest(victim))  # fmt: skip
        report = next(r for r in trail if r["kind"] == "erasure"
                      and r["offset"] == command_record["offset"])  # fmt: skip
        assert victim not in json.dumps(command_record) + json.dumps(report)
        assert report["client_sha256"] == client_digest(victim)
        every = list(range(int(env["PROFITSTREAM_TOPIC_PARTITIONS"])))
        assert (report["found"], report["swept"], report["redis_deleted"]) == (True, every, 1)
        assert len(report["table"]) == 1  # the partition its events came in
        nobody = [r for r in trail if r["kind"] == "erasure"
                  and r["client_sha256"] == client_digest("nobody-at-all")]  # fmt: skip
        assert [(r["found"], r["swept"], r["table"]) for r in nobody] == [(False, every, [])]
        erased_at = datetime.fromisoformat(command_record["record_time"])
        seconds = (datetime.fromisoformat(report["at"]) - erased_at).total_seconds()
        print(f"erasure: command stored -> erased in every store {seconds:.2f}s; "
              f"CLI process {cli_s:.1f}s")  # fmt: skip
        print("".join(run.stdout for run in (erased, unknown, again)))
        assert seconds < 10, "the erasure waited for something"
        # Nothing was scored meanwhile: the erasure needed no event.
        assert sum(metric(worker, "profitstream_predictions_emitted_total").values()) == (
            emitted_before
        )

        produce_log(kafka_bootstrap, unique, messages[half:])
        wait_until(
            lambda: sum(metric(worker, "profitstream_batch_events_sum").values()) >= len(messages),
            timeout_s=120, what="the second half",
        )  # fmt: skip
        outcomes = metric(worker, "profitstream_event_outcomes_total")
        emitted = sum(metric(worker, "profitstream_predictions_emitted_total").values())
        assert worker.get(f"/clients/{victim}/features")[0] == 404
    with redis.Redis.from_url(redis_url) as client:
        assert not client.exists(store_key)
    later = [m for m in messages[half:] if m.key.decode() == victim]
    assert later, "the victim has no later events: the test would prove nothing"
    assert outcomes['{outcome="erased"}'] == len(later)

    changelog = f"{unique}-client-state-changelog"
    compacted: dict[bytes, bytes | None] = {}
    for record in sorted(consume(kafka_bootstrap, changelog, 10**9, timeout_s=15),
                         key=lambda r: (r.partition, r.offset)):  # fmt: skip
        compacted[record.key or b""] = record.value
    key = json.dumps(victim).encode()  # the table's keys are JSON strings
    assert key in compacted  # it was there...
    assert compacted[key] is None  # ...and its last word is a tombstone

    # The predictions topic: the victim's last word is a tombstone (so a compacted topic
    # forgets it), after which nothing names it; the unknown client got one too.
    records = consume(kafka_bootstrap, f"{unique}-predictions", int(emitted) + 2, timeout_s=60)
    assert len(records) == int(emitted) + 2
    ordered = sorted(records, key=lambda r: (r.partition, r.offset))
    tombstones = [r.key or b"" for r in ordered if r.value is None]
    assert sorted(tombstones) == sorted([victim.encode(), b"nobody-at-all"])
    last = [r for r in ordered if r.key == victim.encode()][-1]
    assert last.value is None
    assert last.offset == report["predictions_tombstone"]["offset"]
    predictions = [Prediction.model_validate_json(r.value) for r in ordered if r.value]
    assert all(p.client_id != victim or p.scored_at < erased_at for p in predictions), (
        "a prediction for the erased client after its erasure"
    )
    others = {p.client_id for p in predictions if p.scored_at > erased_at}
    assert others, "nothing was scored after the erasure: the test would prove nothing"


def test_an_erasure_no_worker_answers_fails_in_one_line(
    worker_env: dict[str, str], kafka_bootstrap: str, control_registry: Path, control_keys: Path
) -> None:
    env = control_env(worker_env, control_registry, control_keys)
    started = time.monotonic()
    result = run_cli("clients", "erase", "client-00001", "--wait", "3", env=env)
    assert result.returncode == 2, result
    # Apache Kafka has no control topic without a worker; Tansu creates it when asked.
    assert_one_line_error(result, "worker")
    assert "no worker audited it within 3s" in result.stderr or "does not exist" in result.stderr
    assert time.monotonic() - started < 60
