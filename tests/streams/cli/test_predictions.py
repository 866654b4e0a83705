"""`profitstream predictions export` against the live broker: predictions, a later one for
the same client, tombstones and a record that is no prediction are produced to a
compacted predictions topic by an independent client (librdkafka); the export keeps
exactly each client's last prediction, none for a tombstoned client, in every format."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from confluent_kafka import Producer

from models_store.scoring.emission import Reason
from models_store.scoring.prediction import Driver, Interval, ModelId, Prediction
from streams.cli.predictions import Reading, latest_predictions, output_format, read_latest
from streams.errors import ProfitstreamError
from streams.kafka.topic_admin import ensure_topics, product_topics
from streams.settings import Settings, TopicNames
from streams.stack.processes import free_port
from tests.services.cli import assert_one_line_error, run_cli

AT = datetime(2025, 3, 1, tzinfo=UTC)


def _prediction(client_id: str, margin: float, n: int) -> Prediction:
    moment = AT + timedelta(hours=n)
    return Prediction(
        prediction_id=f"{n:032x}", client_id=client_id, predicted_margin=margin,
        horizon_days=90, interval=Interval(lower=margin - 0.2, upper=margin + 0.2, level=0.9),
        risk_tier="healthy" if margin >= 0.25 else "at_risk",
        drivers=[Driver(feature="revenue_30d", value=None, contribution=-0.01)],
        model=ModelId(name="profitability", version="1.0.0"), event_id=f"e-{n}",
        event_time=moment, features_as_of=moment, scored_at=moment, latency_ms=12.5,
        reason=Reason.FIRST,
    )  # fmt: skip


def _topic(bootstrap: str, unique: str, partitions: int = 3) -> tuple[str, dict[str, str]]:
    """The predictions topic as a worker creates it (compacted), and a CLI environment."""
    settings = Settings.model_validate({
        "app_id": unique, "topic_partitions": partitions,
        "topics": {name: f"{unique}-{name}" for name in TopicNames.model_fields},
    })  # fmt: skip
    spec = next(s for s in product_topics(settings) if s.role == "predictions")
    assert spec.configs["cleanup.policy"] == "compact"
    asyncio.run(ensure_topics([spec], [bootstrap], {}))
    env = {"PROFITSTREAM_BROKER": f"kafka://{bootstrap}",
           "PROFITSTREAM_TOPICS__PREDICTIONS": spec.name}  # fmt: skip
    return spec.name, env


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    """Produce in order, acknowledged; one key always lands in one partition."""
    errors: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors


def test_the_export_keeps_each_clients_last_prediction_and_drops_the_erased(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    topic, env = _topic(kafka_bootstrap, unique)
    a1, b1, c1, d1 = (_prediction(c, 0.3, n) for n, c in enumerate("abcd"))
    a2, d2 = _prediction("a", 0.1, 10), _prediction("d", 0.4, 11)
    _produce(kafka_bootstrap, topic, [
        (b"a", a1.to_json()), (b"b", b1.to_json()), (b"c", c1.to_json()), (b"d", d1.to_json()),
        (b"a", a2.to_json()),  # a later prediction: it replaces a1
        (b"c", None),  # c erased
        (b"d", None), (b"d", d2.to_json()),  # the last record decides
        (b"e", b"not a prediction"),
        (b"f", b1.to_json()),  # another client's payload under f's key
    ])  # fmt: skip
    expected = [a2, b1, d2]

    exported = run_cli("predictions", "export", env=env)
    assert exported.returncode == 0, exported
    assert "Traceback" not in exported.stderr
    lines = exported.stdout.splitlines()
    assert [Prediction.model_validate_json(line) for line in lines] == expected
    assert lines[0] == a2.to_json().decode()  # as the worker wrote it
    (summary,) = exported.stderr.splitlines()
    assert summary.startswith(
        f"exported 3 latest predictions to stdout: 10 records of {topic} read from 3 partitions"
        " up to offsets "
    ), summary
    assert summary.endswith("left out 1 erased (tombstone), 2 unreadable"), summary
    offsets = summary.split(" up to offsets ")[1].split(" in ")[0]
    assert sum(int(p.split(":")[1]) for p in offsets.split()) == 10, summary

    as_csv = run_cli("predictions", "export", "--out", str(tmp_path / "latest.csv"), env=env)
    assert as_csv.returncode == 0, as_csv
    assert as_csv.stdout == ""
    table = pd.read_csv(tmp_path / "latest.csv", dtype={"client_id": str, "event_id": str})
    assert list(table.columns) == list(a2.flat())
    assert table.astype(object).where(table.notna(), None).to_dict("records") == [
        p.flat() for p in expected
    ]
    as_parquet = run_cli("predictions", "export", "--out", str(tmp_path / "latest.parquet"),
                         env=env)  # fmt: skip
    assert as_parquet.returncode == 0, as_parquet
    frame = pd.read_parquet(tmp_path / "latest.parquet")
    assert frame.astype(object).where(frame.notna(), None).to_dict("records") == [
        p.flat() for p in expected
    ]
    as_jsonl = run_cli("predictions", "export", "--out", str(tmp_path / "latest.jsonl"), env=env)
    assert as_jsonl.returncode == 0, as_jsonl
    assert (tmp_path / "latest.jsonl").read_text().splitlines() == lines
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.csv",
        "latest.jsonl",
        "latest.parquet",
    ]  # no partial file left behind


def test_what_the_export_cannot_do_is_one_line(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    topic, env = _topic(kafka_bootstrap, unique)
    assert_one_line_error(
        run_cli("predictions", "export", "--out", str(tmp_path / "x.xlsx"), env=env),
        "--out", "use a .jsonl, .csv or .parquet file",
    )  # fmt: skip
    nobody = {**env, "PROFITSTREAM_BROKER": f"kafka://127.0.0.1:{free_port()}"}
    started = time.monotonic()
    assert_one_line_error(run_cli("predictions", "export", env=nobody),
                          "cannot reach a Kafka broker at 127.0.0.1:")  # fmt: skip
    assert time.monotonic() - started < 60
    missing = {**env, "PROFITSTREAM_TOPICS__PREDICTIONS": f"{unique}-nothing"}
    assert_one_line_error(run_cli("predictions", "export", env=missing),
                          f"topic {unique}-nothing does not exist")  # fmt: skip
    unwritable = run_cli("predictions", "export", "--out", str(tmp_path / "no" / "x.csv"),
                         env=env)  # fmt: skip
    assert_one_line_error(unwritable, "cannot write", "x.csv")
    # Never a hang: a read that cannot finish in time stops with one line (in-process here,
    # with a timeout below what the CLI accepts, so that no broker is quick enough).
    started = time.monotonic()
    with pytest.raises(ProfitstreamError) as raised:
        read_latest([kafka_bootstrap], {}, topic, timeout_s=0.001)
    assert str(raised.value).startswith(f"reading {topic} took longer than --timeout 0.001s")
    assert "\n" not in str(raised.value)
    assert time.monotonic() - started < 30


def test_an_export_of_many_predictions(kafka_bootstrap: str, unique: str, tmp_path: Path) -> None:
    """2,000 clients, 10 predictions each (every tenth client erased last): how long the
    export takes, and that it still keeps exactly the last one of each."""
    topic, env = _topic(kafka_bootstrap, unique, partitions=4)
    clients = [f"client-{n:05d}" for n in range(2000)]
    records: list[tuple[bytes, bytes | None]] = []
    last: dict[str, Prediction] = {}
    for round_ in range(10):
        for n, client in enumerate(clients):
            prediction = _prediction(client, 0.01 * round_, round_ * 10_000 + n)
            records.append((client.encode(), prediction.to_json()))
            last[client] = prediction
    erased = clients[::10]
    records += [(client.encode(), None) for client in erased]
    _produce(kafka_bootstrap, topic, records)

    started = time.monotonic()
    exported = run_cli("predictions", "export", "--out", str(tmp_path / "all.jsonl"), env=env)
    seconds = time.monotonic() - started
    assert exported.returncode == 0, exported
    found = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    kept = sorted(set(clients) - set(erased))
    assert [p["client_id"] for p in found] == kept
    assert found == [json.loads(last[c].to_json()) for c in kept]
    print(f"export: {len(records):,} records -> {len(found):,} predictions, CLI process "
          f"{seconds:.2f}s; {exported.stderr.strip()}")  # fmt: skip


# --- pure --------------------------------------------------------------------------------------


def test_the_last_record_of_a_key_decides() -> None:
    reading = Reading()
    x1, x2, y1 = _prediction("x", 0.3, 1), _prediction("x", 0.5, 2), _prediction("y", 0.3, 3)
    reading.take([(b"x", x1.to_json()), (b"y", y1.to_json()), (b"x", x2.to_json()),
                  (b"y", None), (None, x1.to_json()), (b"z", b"[" * 10_000)])  # fmt: skip
    latest = latest_predictions(reading.last)
    assert (latest.predictions, latest.erased, latest.unreadable) == ({"x": x2}, 1, 2)
    assert reading.records == 6


@pytest.mark.parametrize(
    ("name", "fmt"),
    [(None, ".jsonl"), ("a.jsonl", ".jsonl"), ("a.CSV", ".csv"), ("a.parquet", ".parquet")],
)
def test_the_format_follows_the_extension(name: str | None, fmt: str) -> None:
    assert output_format(None if name is None else Path(name)) == fmt
