"""`import` round-trips: a simulated portfolio written out as the tabular exports an MSP's
tools produce (every kind, CSV text and Parquet types, times with offsets, naive local
times, decimal commas, recoded values) imports to an event log whose features equal, bit
for bit, those of the same events sent as messages."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from features.imports.conversion import SourceResult, convert, event_log
from features.imports.mapping import parse_mapping
from features.offline import build_features
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.portfolio import simulate

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()  # 6 periods: no autumn clock change
NOW = datetime(2026, 1, 1, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
PLUS_TWO = timezone(timedelta(hours=2))

MAPPING = """
timezone = "UTC"

[sources.invoices]
file = "invoices.csv"
[sources.invoices.columns]
client_id = "Customer"
time = "Issued"
invoice_id = "Number"
amount = "Total"
kind = "Type"

[sources.payments]
file = "payments.csv"
[sources.payments.columns]
client_id = "Customer"
time = "Paid"
invoice_id = "Invoice"
amount = "Amount"
days_late = "Days late"

[sources.tickets]
file = "tickets.csv"
timezone = "Europe/Berlin"
time_format = "%d.%m.%Y %H:%M:%S"
[sources.tickets.columns]
client_id = "Account"
time = "Opened"
ticket_id = "Ticket"
priority = "Priority"
category = "Category"
resolved_time = "Resolved"
resolution_hours = "Hours"
sla_met = "Within SLA"

[sources.work]
file = "time_entries.parquet"
kind = "time_entries"
[sources.work.columns]
client_id = "client"
time = "logged_at"
technician_id = "tech"
hours = "hours"
billable = "billable"
labour_cost_rate = "rate"

[sources.contracts]
file = "contracts.csv"
[sources.contracts.columns]
client_id = "Customer"
time = "Date"
contract_id = "Contract"
event = "What"
monthly_recurring_value = "MRR"
term_months = "Term"
included_hours = "Hours"
services = "Services"
reason = "Reason"
[sources.contracts.recode]
event = { new = "signed", renewal = "renewed", churn = "cancelled" }

[sources.costs]
file = "costs.csv"
decimal_separator = ","
thousands_separator = "."
[sources.costs.columns]
client_id = "Customer"
time = "Date"
amount = "Amount"
category = "Category"

[sources.credits]
file = "credits.csv"
[sources.credits.columns]
client_id = "Customer"
time = "Date"
amount = "Amount"
reason = "Reason"

[sources.surveys]
file = "surveys.csv"
[sources.surveys.columns]
client_id = "Customer"
time = "Date"
score = "Score"

[sources.contacts]
file = "contacts.csv"
[sources.contacts.columns]
client_id = "Customer"
time = "Date"
channel = "Channel"

[sources.endpoints]
file = "endpoints.csv"
[sources.endpoints.columns]
client_id = "Customer"
time = "Date"
managed_endpoints = "Devices"

[sources.services]
file = "services.csv"
[sources.services.columns]
client_id = "Customer"
time = "Date"
service = "Service"
change = "Change"
"""


def _z(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _plus_two(ts: float) -> str:
    return datetime.fromtimestamp(ts, PLUS_TWO).isoformat()


def _berlin(ts: float) -> str:
    return datetime.fromtimestamp(ts, BERLIN).strftime("%d.%m.%Y %H:%M:%S")


def _comma(amount: float) -> str:
    """1234.5 as 1.234,5 (the float's shortest decimal form, German separators)."""
    return format(Decimal(repr(amount)), ",").translate(str.maketrans(",.", ".,"))


def exports(messages: list[Any]) -> dict[str, pd.DataFrame]:
    """The events of ``messages`` as the tables the mapping above reads."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tickets: dict[str, dict[str, Any]] = {}
    for message in messages:
        event = json.loads(message.value)
        kind, client, p = event["type"], event["client_id"], event["payload"]
        ts = datetime.fromisoformat(event["event_time"]).timestamp()
        if kind == "invoice_issued":
            rows["invoices"].append(
                {
                    "Customer": client,
                    "Issued": _plus_two(ts),
                    "Number": p["invoice_id"],
                    "Total": repr(p["amount"]),
                    "Type": p["kind"].upper(),
                }
            )
        elif kind == "payment_received":
            rows["payments"].append(
                {
                    "Customer": client,
                    "Paid": _z(ts),
                    "Invoice": p["invoice_id"],
                    "Amount": repr(p["amount"]),
                    "Days late": str(p["days_late"]),
                }
            )
        elif kind == "ticket_opened":
            tickets[p["ticket_id"]] = {
                "Account": client,
                "Opened": _berlin(ts),
                "Ticket": p["ticket_id"],
                "Priority": p["priority"],
                "Category": p["category"],
                "Resolved": "",
                "Hours": "",
                "Within SLA": "",
            }
        elif kind == "ticket_resolved":
            tickets[p["ticket_id"]].update(
                {
                    "Resolved": _berlin(ts),
                    "Hours": repr(p["resolution_hours"]),
                    "Within SLA": "yes" if p["sla_met"] else "no",
                }
            )
        elif kind == "time_logged":
            rows["work"].append(
                {
                    "client": client,
                    "logged_at": pd.Timestamp(ts, unit="s", tz="UTC"),
                    "tech": p["technician_id"],
                    "hours": p["hours"],
                    "billable": p["billable"],
                    "rate": p["labour_cost_rate"],
                }
            )
        elif kind.startswith("contract_"):
            what = {
                "contract_signed": "new",
                "contract_renewed": "renewal",
                "contract_cancelled": "churn",
            }[kind]
            rows["contracts"].append(
                {
                    "Customer": client,
                    "Date": _z(ts),
                    "Contract": p["contract_id"],
                    "What": what,
                    "MRR": repr(p.get("monthly_recurring_value", "")).strip("'"),
                    "Term": str(p.get("term_months", "")),
                    "Hours": str(p.get("included_hours", "")),
                    "Services": "; ".join(p.get("services", [])),
                    "Reason": p.get("reason", ""),
                }
            )
        elif kind == "cost_incurred":
            rows["costs"].append(
                {
                    "Customer": client,
                    "Date": _z(ts),
                    "Amount": _comma(p["amount"]),
                    "Category": p["category"],
                }
            )
        elif kind == "credit_issued":
            rows["credits"].append(
                {
                    "Customer": client,
                    "Date": _z(ts),
                    "Amount": repr(p["amount"]),
                    "Reason": p["reason"],
                }
            )
        elif kind == "satisfaction_survey":
            rows["surveys"].append({"Customer": client, "Date": _z(ts), "Score": str(p["score"])})
        elif kind == "contact":
            rows["contacts"].append(
                {"Customer": client, "Date": _z(ts), "Channel": p["channel"].title()}
            )
        elif kind == "endpoints_changed":
            rows["endpoints"].append(
                {"Customer": client, "Date": _z(ts), "Devices": str(p["managed_endpoints"])}
            )
        elif kind == "service_changed":
            rows["services"].append(
                {"Customer": client, "Date": _z(ts), "Service": p["service"], "Change": p["change"]}
            )
        else:
            raise AssertionError(kind)
    rows["tickets"] = list(tickets.values())
    return {name: pd.DataFrame(table) for name, table in rows.items()}


def import_frames(mapping: str, frames: dict[str, pd.DataFrame]) -> list[SourceResult]:
    seen: dict[str, tuple[str, int]] = {}
    return [convert(plan, frames[plan.name], now=NOW, seen=seen) for plan in parse_mapping(mapping)]


@pytest.fixture(scope="module")
def portfolio_messages() -> list[Any]:
    return simulated_messages(simulate(25, 6, seed=5, start=START))


def test_imported_exports_give_the_features_of_the_same_events(
    portfolio_messages: list[Any], tmp_path: Path
) -> None:
    frames = exports(portfolio_messages)
    frames["work"].to_parquet(tmp_path / "work.parquet")  # Parquet's own types, as read back
    frames["work"] = pd.read_parquet(tmp_path / "work.parquet")
    results = import_frames(MAPPING, frames)
    assert [r.rejections for r in results] == [[] for _ in results]
    imported = event_log([event for result in results for event in result.events])
    assert len(imported) == len(portfolio_messages)
    assert {r.plan.name for r in results if r.events} == set(frames)  # every kind took part

    # The same events as messages, in event-time order (the import's arrival order).
    reference = history_frame(sorted(portfolio_messages, key=lambda m: m.event_time))
    end = max(m.event_time for m in portfolio_messages)
    for as_of in (START + 40 * 86_400, START + 95 * 86_400.5, START + 150 * 86_400, end):
        expected = build_features(reference, as_of)
        got = build_features(imported, as_of)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert len(expected) == 25


def test_rows_in_any_order_make_the_same_log(portfolio_messages: list[Any]) -> None:
    frames = exports(portfolio_messages)
    first = event_log([e for r in import_frames(MAPPING, frames) for e in r.events])
    shuffled = {name: frame.sample(frac=1.0, random_state=3) for name, frame in frames.items()}
    again = event_log([e for r in import_frames(MAPPING, shuffled) for e in r.events])
    columns = ["arrival", "stream", "key", "value", "event_id"]
    pd.testing.assert_frame_equal(first[columns], again[columns])
