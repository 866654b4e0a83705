"""Rows to events: rejected rows are reported with their reason while the rest import,
event ids are deterministic, and a purchase log (one row = an invoice and its payment)
maps as its rows say, whatever their order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.events import parse_event
from features.imports.conversion import SourceResult, convert, event_id_of, event_log
from features.imports.mapping import MappingError, parse_mapping
from features.offline import build_features

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PURCHASES = """
timezone = "America/New_York"
[sources.purchases]
file = "purchases.csv"
[sources.purchases.columns]
client_id = "Customer ID"
time = "InvoiceDate"
invoice_id = "Invoice"
amount = "Total"
"""
HEADER = ["Invoice", "Customer ID", "InvoiceDate", "Total"]


def _import(mapping: str, rows: list[list[str]], seen: dict[str, tuple[str, int]] | None = None
            ) -> SourceResult:  # fmt: skip
    (plan,) = parse_mapping(mapping)
    frame = pd.DataFrame(rows, columns=HEADER, dtype=str)
    return convert(plan, frame, now=NOW, seen={} if seen is None else seen)


def test_a_purchase_is_an_invoice_and_its_payment_in_the_mapped_time_zone() -> None:
    result = _import(PURCHASES, [["536365", "17850", "2024-12-01 08:26", "139.12"]])
    assert result.rejections == []
    invoice, payment = (json.loads(event.value) for event in result.events)
    assert invoice["type"] == "invoice_issued"
    assert payment["type"] == "payment_received"
    # New York is 5 hours behind UTC in December.
    assert invoice["event_time"] == payment["event_time"] == "2024-12-01T13:26:00Z"
    assert invoice["payload"] == {"invoice_id": "536365", "amount": 139.12}  # kind: recurring
    assert payment["payload"] == {"invoice_id": "536365", "amount": 139.12, "days_late": 0}
    for event in result.events:
        assert event.key == b"17850"
        parse_event(event.value, event.stream, key=event.key, now=NOW)


def test_rejected_rows_are_reported_with_their_reason_and_the_rest_import() -> None:
    rows = [
        ["1", "acme", "2024-12-01T09:00:00Z", "10.50"],  # fine
        ["2", "acme", "2024-12-01T09:00:00Z", "-3.00"],  # a return: negative money
        ["3", "", "2024-12-01T09:00:00Z", "5"],  # no client
        ["4", "acme", "2024-12-01T09:00:00Z", "12,50"],  # a decimal comma not declared
        ["5", "acme", "yesterday", "5"],  # not a time
        ["6", "acme", "2099-01-01T00:00:00Z", "5"],  # after the contract's clock
        ["1", "acme", "2024-12-01T09:00:00Z", "10.50"],  # row 1 again
        ["7", "acme corp", "2024-12-01T09:00:00Z", "5"],  # not an identifier
        ["8", "bolt", "2024-12-02T09:00:00+01:00", "1e3"],  # fine
    ]
    result = _import(PURCHASES, rows)
    reasons = {r.row: r.reason for r in result.rejections}
    assert reasons == {2: "invalid", 3: "missing", 4: "unreadable", 5: "unreadable",
                       6: "future", 7: "duplicate", 8: "invalid"}  # fmt: skip
    details = {r.row: r.detail for r in result.rejections}
    assert "amount: Input should be greater than or equal to 0" in details[2]
    assert "'Customer ID' is empty" in details[3]
    assert "'12,50' is not a number" in details[4]
    assert "row 1 of purchases" in details[7]
    assert "client_id" in details[8]
    assert {r.source for r in result.rejections} == {"purchases"}
    assert {r.file for r in result.rejections} == {"purchases.csv"}
    assert result.imported_rows == 2
    assert sorted(e.row for e in result.events) == [1, 1, 9, 9]
    amounts = [json.loads(e.value)["payload"]["amount"] for e in result.events]
    assert amounts == [10.5, 10.5, 1000.0, 1000.0]


def test_a_row_is_taken_whole_or_not_at_all() -> None:
    mapping = PURCHASES + 'paid_time = "Paid"\n'
    (plan,) = parse_mapping(mapping)
    frame = pd.DataFrame([["1", "acme", "2024-12-01T09:00:00Z", "5", "someday"]],
                         columns=[*HEADER, "Paid"])  # fmt: skip
    result = convert(plan, frame, now=NOW, seen={})
    assert result.events == []
    assert [r.reason for r in result.rejections] == ["unreadable"]


def test_event_ids_are_deterministic_and_name_the_kind_and_the_row() -> None:
    rows = [["1", "acme", "2024-12-01T09:00:00Z", "10.50"]]
    first, again = _import(PURCHASES, rows), _import(PURCHASES, rows)
    assert [e.value for e in first.events] == [e.value for e in again.events]
    invoice_id = first.events[0].event_id
    assert invoice_id == event_id_of("purchases", "invoice_issued", "acme", ("1",))
    assert invoice_id.startswith("purchases.invoice-issued.")
    # The invoice id names the row: another amount for invoice 1 is the same event.
    changed = _import(PURCHASES, [["1", "acme", "2024-12-01T09:00:00Z", "11"]])
    assert changed.events[0].event_id == invoice_id
    # Another client's invoice 1 is another event.
    other = _import(PURCHASES, [["1", "bolt", "2024-12-01T09:00:00Z", "10.50"]])
    assert other.events[0].event_id != invoice_id


def test_an_import_after_another_rejects_what_the_first_took() -> None:
    seen: dict[str, tuple[str, int]] = {}
    _import(PURCHASES, [["1", "acme", "2024-12-01T09:00:00Z", "10.50"]], seen)
    second = _import(PURCHASES, [["1", "acme", "2024-12-01T09:00:00Z", "10.50"],
                                 ["2", "acme", "2024-12-01T10:00:00Z", "3"]], seen)  # fmt: skip
    assert [(r.row, r.reason) for r in second.rejections] == [(1, "duplicate")]
    assert len(second.events) == 2


def test_content_names_rows_of_kinds_without_an_id_unless_the_mapping_names_columns() -> None:
    contacts = """
[sources.contacts]
file = "contacts.csv"
[sources.contacts.columns]
client_id = "Customer ID"
time = "InvoiceDate"
channel = "Total"
"""
    same = [["x", "acme", "2024-12-01T09:00:00Z", "phone"]] * 2
    assert [r.reason for r in _import(contacts, same).rejections] == ["duplicate"]
    numbered = contacts.replace('[sources.contacts.columns]', 'id = ["Invoice"]\n'
                                '[sources.contacts.columns]')  # fmt: skip
    two = [["a", "acme", "2024-12-01T09:00:00Z", "phone"],
           ["b", "acme", "2024-12-01T09:00:00Z", "phone"]]  # fmt: skip
    assert len(_import(numbered, two).events) == 2


def test_a_time_without_an_offset_needs_a_time_zone() -> None:
    mapping = PURCHASES.replace('timezone = "America/New_York"', "")
    with pytest.raises(MappingError, match=r"column 'InvoiceDate' holds a time without a UTC "
                       r"offset \('2024-12-01 08:26'\); set timezone ="):  # fmt: skip
        _import(mapping, [["1", "acme", "2024-12-01 08:26", "1"]])
    # With offsets, none is needed.
    assert _import(mapping, [["1", "acme", "2024-12-01T08:26:00-05:00", "1"]]).rejections == []


PURCHASE = st.tuples(
    st.sampled_from(["acme", "bolt", "crux", "0042"]),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2025, 12, 1)),
    st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda m: timezone(timedelta(minutes=m))
    ),
    st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(PURCHASE, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_any_purchase_log_imports_row_for_row_in_any_order(
    purchases: list[tuple[str, datetime, timezone, Decimal]], rng: object
) -> None:
    rows = [[f"inv-{n}", client, when.replace(tzinfo=zone).isoformat(), str(amount)]
            for n, (client, when, zone, amount) in enumerate(purchases)]  # fmt: skip
    result = _import(PURCHASES, rows)
    assert result.rejections == []
    by_invoice = {json.loads(e.value)["payload"]["invoice_id"]: json.loads(e.value)
                  for e in result.events if e.event_type == "invoice_issued"}  # fmt: skip
    for n, (client, when, zone, amount) in enumerate(purchases):
        event = by_invoice[f"inv-{n}"]
        assert event["client_id"] == client
        assert event["payload"]["amount"] == float(amount)
        instant = datetime.fromisoformat(event["event_time"])
        assert instant == when.replace(tzinfo=zone)
    shuffled = list(rows)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    log = event_log(result.events)
    again = event_log(_import(PURCHASES, shuffled).events)
    columns = ["arrival", "stream", "key", "value"]
    pd.testing.assert_frame_equal(log[columns], again[columns])
    as_of = max(w.replace(tzinfo=z) for _, w, z, _ in purchases).timestamp()
    pd.testing.assert_frame_equal(build_features(log, as_of, 1e12),
                                  build_features(again, as_of, 1e12), check_exact=True)  # fmt: skip
