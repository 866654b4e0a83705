"""CLI failures a user can cause: one line saying what and how to fix, exit code != 0."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from streams.stack.processes import free_port
from tests.services.cli import assert_one_line_error, run_cli


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_malformed_broker_url(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path), "--broker", "http://x:1", "worker")
    assert_one_line_error(result, "PROFITSTREAM_BROKER", "kafka:// scheme")


def test_unreachable_broker(tmp_path: Path) -> None:
    result = run_cli(
        "worker",
        env={
            "PROFITSTREAM_DATA_DIR": str(tmp_path),
            "PROFITSTREAM_BROKER": f"kafka://127.0.0.1:{free_port()}",
            "PROFITSTREAM_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        },
    )
    assert_one_line_error(result, "cannot reach a Kafka broker", "profitstream stack up")


def test_nothing_configured_and_no_stack(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path), "worker")
    assert_one_line_error(result, "no Kafka broker configured", "PROFITSTREAM_BROKER")


def test_unreachable_redis(kafka_bootstrap: str, tmp_path: Path) -> None:
    result = run_cli(
        "--broker",
        f"kafka://{kafka_bootstrap}",
        "--redis-url",
        f"redis://127.0.0.1:{free_port()}/0",
        "--data-dir",
        str(tmp_path),
        "worker",
    )
    assert_one_line_error(result, "cannot reach Redis", "PROFITSTREAM_REDIS_URL")


def _worker_on_live_services(
    kafka_bootstrap: str, redis_url: str, data_dir: Path, web_port: int
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "--broker", f"kafka://{kafka_bootstrap}", "--redis-url", redis_url,
        "--data-dir", str(data_dir), "worker", "--web-port", str(web_port),
    )  # fmt: skip


def test_worker_web_port_in_use(
    kafka_bootstrap: str, redis_url: str, held_port: int, tmp_path: Path
) -> None:
    result = _worker_on_live_services(kafka_bootstrap, redis_url, tmp_path, held_port)
    assert_one_line_error(result, f"127.0.0.1:{held_port}", "already in use", "--web-port")


def test_stack_port_in_use(held_port: int, tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path), "stack", "up", "--kafka-port", str(held_port))
    assert_one_line_error(result, f"127.0.0.1:{held_port}", "already in use", "--kafka-port")
    assert run_cli("--data-dir", str(tmp_path), "stack", "status").returncode == 1


def test_missing_broker_binary(tmp_path: Path) -> None:
    result = run_cli(
        "--data-dir",
        str(tmp_path),
        "stack",
        "up",
        env={"CALF_TANSU_BIN": str(tmp_path / "no-such-tansu")},
    )
    assert_one_line_error(result, "Tansu broker binary not found", "CALF_TANSU_BIN")


def test_config_masks_secrets(tmp_path: Path) -> None:
    result = run_cli(
        "--data-dir",
        str(tmp_path),
        "config",
        env={
            "PROFITSTREAM_REDIS_URL": "redis://:hunter2@cache:6379/0",
            "PROFITSTREAM_SECURITY__SASL_PASSWORD": "pw-123",
            "PROFITSTREAM_BROKER": "kafka://k1:9092",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "pw-123" not in result.stdout
    assert "redis://:***@cache:6379/0" in result.stdout
    assert "k1:9092" in result.stdout
    assert str(tmp_path / "registry") in result.stdout  # the default model registry


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_data_dir(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _worker_on_live_services(kafka_bootstrap, redis_url, blocker / "data", free_port())
    assert_one_line_error(result, "cannot create the data dir", "PROFITSTREAM_DATA_DIR")


def test_schemas_into_a_path_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "docs"
    blocker.write_text("not a directory")
    result = run_cli("schemas", "--out", str(blocker))
    assert_one_line_error(result, "cannot write the contract", str(blocker))


def test_schemas_writes_the_contract(tmp_path: Path) -> None:
    result = run_cli("schemas", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "events.md").read_text().startswith("# Event contract")
    assert sorted(p.name for p in (tmp_path / "schemas").iterdir()) == [
        "billing.schema.json",
        "client-activity.schema.json",
        "profitability-audit.schema.json",
        "profitability-control.schema.json",
        "profitability-monitoring.schema.json",
        "profitability-predictions.schema.json",
    ]
    for path in (tmp_path / "schemas").iterdir():  # what is generated is what is committed
        assert path.read_text() == (DOCS / "schemas" / path.name).read_text(), path.name


def test_simulate_writes_the_log_and_the_oracle_beside_it(tmp_path: Path) -> None:
    out = tmp_path / "history.parquet"
    result = run_cli(
        "simulate", "--clients", "30", "--months", "6", "--out", str(out),
        "--malformed", "0.02", "--oracle-draws", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    history = pd.read_parquet(out)
    assert {"arrival", "stream", "key", "value", "event_time", "injected"} <= set(history.columns)
    assert (history["injected"] == "malformed").sum() > 0
    figures = json.loads((tmp_path / "history.oracle.json").read_text())
    assert 0 < figures["oracle_expected_r2"] < 1
    assert figures["injected"]["malformed"] == 0.02


def test_simulate_a_transactional_portfolio_with_the_oracle_of_its_margin(tmp_path: Path) -> None:
    out = tmp_path / "shop.parquet"
    result = run_cli("simulate", "--clients", "200", "--months", "9", "--kind", "transactional",
                     "--out", str(out), "--oracle-draws", "2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "200 transactional clients" in result.stderr
    figures = json.loads((tmp_path / "shop.oracle.json").read_text())
    assert figures["kind"] == "transactional"
    assert figures["margin_abs"]["no_revenue_share"] > 0.4
    rows = pd.read_parquet(tmp_path / "shop.oracle.margin_abs.parquet")
    assert len(rows) == figures["margin_abs"]["pairs"]
    assert set(pd.read_parquet(tmp_path / "shop.oracle.parquet")["client_id"]) <= set(
        rows["client_id"]
    )
    assert_one_line_error(
        run_cli("simulate", "--clients", "2", "--kind", "retail", "--out", str(out)),
        "--kind 'retail'",
        "contract, transactional, mixed",
    )


def test_simulate_with_nothing_to_do_or_a_missing_directory(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("simulate", "--clients", "2"), "nothing to do", "--out")
    missing = tmp_path / "nope" / "history.parquet"
    assert_one_line_error(
        run_cli("simulate", "--clients", "2", "--out", str(missing)), "does not exist"
    )
