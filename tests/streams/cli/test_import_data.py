"""`profitstream import` as a user runs it: the documented examples (docs/examples/import)
import to an event log that train and score read, with the rejected rows reported, the
same log each time; a mapping or an export that cannot work is one `error:` line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from features.imports.mapping import parse_mapping
from features.offline import build_features
from models_store.training.dataset import load_history
from streams.cli.import_data import read_source
from streams.cli.score import TEXT_COLUMNS, event_log, rows_from_history
from tests.services.cli import assert_one_line_error, run_cli

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples" / "import"
PURCHASES = """timezone = "UTC"
[sources.purchases]
file = "purchases.csv"
[sources.purchases.columns]
client_id = "Customer"
time = "Date"
invoice_id = "Invoice"
amount = "Total"
"""


def _import(mapping: Path, out: Path, *extra: str) -> pd.DataFrame:
    result = run_cli("import", str(mapping), "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return pd.read_parquet(out)


def test_the_retail_example_imports_as_documented(tmp_path: Path) -> None:
    log = _import(EXAMPLES / "retail.toml", tmp_path / "retail.parquet")
    assert len(log) == 14  # 7 purchases, each an invoice and its payment
    assert list(log["arrival"]) == list(range(14))
    assert log["event_time"].is_monotonic_increasing
    assert set(log["stream"]) == {"billing"}
    report = pd.read_csv(tmp_path / "retail.rejected.csv")
    assert list(report.columns) == ["source", "file", "row", "reason", "detail"]
    assert [(r.row, r.reason) for r in report.itertuples()] == [(5, "invalid"), (7, "missing")]
    # train's reading of the log takes every event.
    history = load_history(log)
    assert len(history.events) == 14
    features = build_features(log, datetime(2025, 6, 1, tzinfo=UTC))
    assert list(features.index) == ["12583", "13047", "17850"]
    assert features.loc["17850", "revenue_180d"] == pytest.approx(22.20)  # April's purchase


def test_the_msp_example_imports_and_score_reads_it_as_parquet_or_csv(tmp_path: Path) -> None:
    report_path = tmp_path / "rejected.jsonl"
    log = _import(EXAMPLES / "msp.toml", tmp_path / "msp.parquet", "--rejected", str(report_path))
    assert len(log) == 41
    assert set(log["stream"]) == {"activity", "billing"}
    report = [json.loads(line) for line in report_path.read_text().splitlines()]
    assert [(r["source"], r["row"], r["reason"]) for r in report] == [
        ("invoices", 9, "invalid"), ("tickets", 6, "invalid"), ("surveys", 3, "invalid")
    ]  # fmt: skip
    assert "kind" in report[0]["detail"]
    as_of = datetime(2025, 4, 1, tzinfo=UTC).timestamp()
    expected = rows_from_history(log, as_of)
    assert list(expected["client_id"]) == ["acme", "bolt"]
    # The same log as CSV (key and value as pandas writes bytes) is read by score the same.
    log.to_csv(tmp_path / "msp.csv", index=False)
    from_csv = event_log(pd.read_csv(tmp_path / "msp.csv", dtype=TEXT_COLUMNS))
    pd.testing.assert_frame_equal(rows_from_history(from_csv, as_of), expected, check_exact=True)
    # Importing the same export again gives the same log, event ids included.
    pd.testing.assert_frame_equal(_import(EXAMPLES / "msp.toml", tmp_path / "again.parquet"), log)


def _write(directory: Path, mapping: str, csv: str) -> Path:
    (directory / "purchases.csv").write_text(csv)
    (directory / "mapping.toml").write_text(mapping)
    return directory / "mapping.toml"


GOOD_CSV = "Invoice,Customer,Date,Total\n1,acme,2025-01-01T09:00:00Z,10\n"


@pytest.mark.parametrize(("mapping", "csv", "fragments"), [
    (PURCHASES.replace('"Total"', '"Amount"'), GOOD_CSV,
     ("sources.purchases: purchases.csv has no column 'Amount'; its columns are 'Invoice'",)),
    (PURCHASES.replace('file = "purchases.csv"', 'file = "purchases.csv"\nkind = "sales"'),
     GOOD_CSV, ("unknown kind 'sales'; set kind = one of invoices",)),
    (PURCHASES.replace("[sources.purchases]\n", "[sources.purchases\n"), GOOD_CSV,
     ("mapping.toml: not valid TOML",)),
    (PURCHASES.replace('timezone = "UTC"', ""), GOOD_CSV.replace("T09:00:00Z", " 09:00"),
     ("column 'Date' holds a time without a UTC offset ('2025-01-01 09:00'); set timezone =",)),
    (PURCHASES.replace("purchases.csv", "nowhere.csv"), GOOD_CSV,
     ("sources.purchases: no file", "nowhere.csv")),
    (PURCHASES, GOOD_CSV.replace(",10\n", ",-10\n"),
     ("no row made a valid event; the reasons are in", "mapping.rejected.csv")),
])  # fmt: skip
def test_an_import_that_cannot_work_is_one_error_line(
    tmp_path: Path, mapping: str, csv: str, fragments: tuple[str, ...]
) -> None:
    path = _write(tmp_path, mapping, csv)
    result = run_cli("import", str(path), "--out", str(tmp_path / "mapping.parquet"))
    assert_one_line_error(result, *fragments)
    assert result.returncode == 2
    assert not (tmp_path / "mapping.parquet").exists()


def test_wrong_files_on_the_command_line_are_one_error_line(tmp_path: Path) -> None:
    path = _write(tmp_path, PURCHASES, GOOD_CSV)
    assert_one_line_error(run_cli("import", str(tmp_path / "none.toml"), "--out", "x.parquet"),
                          "cannot read the mapping")  # fmt: skip
    assert_one_line_error(run_cli("import", str(path), "--out", str(tmp_path / "log.csv")),
                          "the event log is a .parquet file")  # fmt: skip
    latin = tmp_path / "purchases.csv"
    latin.write_bytes(GOOD_CSV.replace("acme", "caf\xe9").encode("latin-1"))
    assert_one_line_error(run_cli("import", str(path), "--out", str(tmp_path / "log.parquet")),
                          "is not utf-8 text", 'set encoding = "latin-1"')  # fmt: skip


def test_a_spreadsheets_byte_order_mark_is_no_part_of_the_first_column(tmp_path: Path) -> None:
    (tmp_path / "purchases.csv").write_bytes(b"\xef\xbb\xbf" + GOOD_CSV.encode())
    (plan,) = parse_mapping(PURCHASES)
    frame = read_source(tmp_path / "purchases.csv", plan)
    assert list(frame.columns) == ["Invoice", "Customer", "Date", "Total"]
    assert frame.loc[0, "Invoice"] == "1"
