"""The mapping file: every kind of event has a kind of export, and a mapping that cannot
work is refused before a row is read, with one line naming the key to fix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from features.imports.kinds import KINDS, STREAM_OF_TYPE, fields_of
from features.imports.mapping import MappingError, check_columns, parse_mapping

INVOICES = """
[sources.invoices]
file = "invoices.csv"
[sources.invoices.columns]
client_id = "Customer"
time = "Date"
invoice_id = "Number"
amount = "Total"
"""


def test_every_event_type_of_the_contract_has_a_kind_that_makes_it() -> None:
    when = datetime(2024, 3, 1, tzinfo=UTC)
    sample = {"identifier": "x-1", "text": "t", "choice": "c", "choices": ["c"], "number": 1.0,
              "integer": 1, "boolean": True, "time": when}  # fmt: skip
    made = set()
    for kind in KINDS.values():
        values = {spec.name: sample[spec.type] for spec in fields_of(kind)}
        for event in ("signed", "renewed", "cancelled"):  # the contracts' one choice that counts
            made |= {planned.type for planned in kind.build({**values, "event": event})}
    assert made == set(STREAM_OF_TYPE)


def test_a_good_mapping_plans_each_source_in_order() -> None:
    text = (
        'timezone = "Europe/Paris"\n'
        + INVOICES
        + """
[sources.work]
file = "time.parquet"
kind = "time_entries"
id = ["Entry"]
[sources.work.columns]
client_id = "Customer"
time = "Date"
technician_id = "Tech"
hours = "Hours"
[sources.work.constants]
billable = true
labour_cost_rate = 45.5
"""
    )
    invoices, work = parse_mapping(text)
    assert (invoices.name, invoices.kind.name, work.kind.name) == ("invoices", "invoices",
                                                                   "time_entries")  # fmt: skip
    assert work.constants == {"billable": True, "labour_cost_rate": 45.5}
    assert work.needed_columns == ["Customer", "Date", "Tech", "Hours", "Entry"]
    assert str(work.cell_format.timezone) == "Europe/Paris"
    check_columns(work, ["Customer", "Date", "Tech", "Hours", "Entry", "Other"])
    with pytest.raises(MappingError, match=r"sources.work: time.parquet has no column 'Entry'; "
                       r"its columns are 'Customer', 'Date'"):  # fmt: skip
        check_columns(work, ["Customer", "Date", "Tech", "Hours"])


@pytest.mark.parametrize(("text", "message"), [
    ("[sources", "not valid TOML"),
    ("timezone = 'UTC'", "sources: Field required"),
    (INVOICES.replace('file = "invoices.csv"', 'file = "x.csv"\nkind = "bills"'),
     "sources.invoices: unknown kind 'bills'; set kind = one of invoices, payments, purchases"),
    (INVOICES.replace('amount = "Total"', 'amout = "Total"'),
     "sources.invoices.columns: amout is not a field of invoices"),
    (INVOICES.replace('amount = "Total"', ""),
     'sources.invoices: map amount to a column (columns.amount = "...") or set constants.amount'),
    (INVOICES.replace("invoices", "payments"),
     "sources.payments: payments needs one of days_late or due_time"),
    (INVOICES.replace('amount = "Total"', "") + "[sources.invoices.constants]\namount = 'lots'\n",
     "sources.invoices.constants.amount: unreadable: 'lots' is not a number"),
    (INVOICES + "[sources.invoices.constants]\namount = 1\n",
     "sources.invoices: amount is both a column and a constant"),
    ('timezone = "Mars/Olympus"\n' + INVOICES,
     "timezone = 'Mars/Olympus' is not an IANA time zone"),
    (INVOICES.replace('file = "invoices.csv"', 'file = "i.csv"\ncolour = "red"'),
     "sources.invoices.colour: unknown key"),
    (INVOICES.replace('file = "invoices.csv"', 'file = "i.csv"\nid = []'),
     "sources.invoices.id: name at least one column"),
])  # fmt: skip
def test_a_mapping_that_cannot_work_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
