"""`profitstream train` as a user runs it: simulate, train, register, report; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from models_store.registry import open_registry
from tests.services.cli import assert_one_line_error, run_cli

QUICK = ("--budget", "quick", "--test-cutoffs", "2", "--validation-cutoffs", "2")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.parquet"
    result = run_cli("simulate", "--clients", "120", "--months", "16", "--seed", "5",
                     "--out", str(path), "--oracle-draws", "4")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return path


def test_train_registers_reports_and_versions(history: Path, tmp_path: Path) -> None:
    env = {"PROFITSTREAM_DATA_DIR": str(tmp_path / "data")}
    result = run_cli("train", "--events", str(history), *QUICK, env=env, timeout_s=600)
    assert result.returncode == 0, result.stderr
    output = result.stderr
    for fragment in ("held-out test cutoffs", "baseline: persistence", "oracle (simulator",
                     "interval: held-out coverage", "registered profitability@1.0.0"):  # fmt: skip
        assert fragment in output, fragment
    report = tmp_path / "data" / "reports" / "profitability-1.0.0"
    figures = json.loads((report / "report.json").read_text())
    assert figures["oracle"]["label_max_abs_difference"] < 1e-9
    assert (report / "report.html").stat().st_size > 10_000
    registry = open_registry(str(tmp_path / "data" / "registry"))
    assert [card.version for card in registry.cards("profitability")] == ["1.0.0"]

    again = run_cli("train", "--events", str(history), *QUICK, "--no-register", env=env,
                    timeout_s=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "not registered: `profitstream models register" in again.stderr
    bundle = again.stderr.split("models register ")[1].split("`")[0]
    registered = run_cli("models", "register", bundle, env=env)
    assert registered.returncode == 0, registered.stderr
    assert "profitability@1.0.1" in registered.stdout  # the next patch version


def test_bad_input_is_one_line_each(history: Path, tmp_path: Path) -> None:
    env = {"PROFITSTREAM_DATA_DIR": str(tmp_path / "data")}
    missing = run_cli("train", "--events", str(tmp_path / "nope.parquet"), env=env)
    assert_one_line_error(missing, "no event history at", "simulate --out")
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"arrival": [], "stream": [], "key": [], "value": []}).to_parquet(empty)
    assert_one_line_error(run_cli("train", "--events", str(empty), env=env), "no valid events")
    not_parquet = tmp_path / "history.parquet"
    not_parquet.write_text("arrival,stream\n")
    assert_one_line_error(run_cli("train", "--events", str(not_parquet), env=env),
                          "not a readable Parquet event log")  # fmt: skip
    long = run_cli("train", "--events", str(history), "--horizon", "900d", env=env)
    assert_one_line_error(long, "900-day horizon", "options that fit: --horizon")
    target = run_cli("train", "--events", str(history), "--target", "profit", env=env)
    assert_one_line_error(target, "use margin_ratio or margin_abs")
    cutoffs = run_cli("train", "--events", str(history), "--cutoffs", "2031-01-01", env=env)
    assert_one_line_error(cutoffs, "outside the usable range")
    assert not (tmp_path / "data" / "registry").exists()  # nothing registered, not even empty


def test_the_absolute_margin_is_compared_with_the_oracle_of_a_transactional_portfolio(
    tmp_path: Path,
) -> None:
    history = tmp_path / "shop.parquet"
    simulated = run_cli("simulate", "--clients", "800", "--months", "14", "--seed", "5",
                        "--kind", "transactional", "--out", str(history),
                        "--oracle-draws", "2")  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    env = {"PROFITSTREAM_DATA_DIR": str(tmp_path / "data")}
    report = tmp_path / "report"
    result = run_cli("train", "--events", str(history), "--target", "margin_abs", *QUICK,
                     "--no-register", "--report-dir", str(report), env=env,
                     timeout_s=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "oracle (simulator" in result.stderr
    oracle = json.loads((report / "report.json").read_text())["oracle"]
    assert oracle["rows"] > 100
    assert oracle["label_max_abs_difference"] < 1e-9  # the oracle's truth is the label
    # Another horizon's labels are not the oracle's 90 days: nothing is compared.
    other = run_cli("train", "--events", str(history), "--target", "margin_abs", *QUICK,
                    "--horizon", "60d", "--no-register", "--report-dir",
                    str(tmp_path / "other"), env=env, timeout_s=600)  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert "oracle: not compared; it predicts 90 days, not 60" in other.stderr
    assert json.loads((tmp_path / "other" / "report.json").read_text())["oracle"] is None


@pytest.mark.parametrize(
    ("months", "options", "split"),
    [(12, (), "time"), (9, (), "clients"), (18, ("--horizon", "182d"), "clients")],
)
def test_quick_training_fits_a_short_history_with_defaults(
    months: int, options: tuple[str, ...], split: str, tmp_path: Path
) -> None:
    """Issue 16: 12 and 9 months with a 90-day horizon, and 18 months with a 182-day one,
    train with the default split, which says which kind it chose and why."""
    path = tmp_path / "history.parquet"
    simulated = run_cli("simulate", "--clients", "200", "--months", str(months), "--seed", "11",
                        "--out", str(path), "--oracle-draws", "0")  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    env = {"PROFITSTREAM_DATA_DIR": str(tmp_path / "data")}
    result = run_cli("train", "--events", str(path), "--budget", "quick", *options,
                     "--no-register", env=env, timeout_s=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"split: {split} (auto: the {months * 30}-day history" in result.stderr
    bundle = Path(result.stderr.split("models register ")[1].split("`")[0])
    card = json.loads((bundle / "card.json").read_text())
    assert card["training_data"]["split"] == split
    assert card["training_data"]["rows"]["test"] >= 50
