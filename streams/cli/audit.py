"""`profitstream audit`: the audit trail as a table or JSON, and which model scored a
client at a time (`streams.cli.audit_lookup`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from streams.cli.context import load_settings, make_console, parse_instant, print_json
from streams.cli.publishing import audit_trail
from streams.errors import ProfitstreamError

out = make_console()

# The control command that approves a version is named `register` on the wire.
SHOWN_TYPE = {"register": "approve (register)"}


def audit(
    ctx: typer.Context,
    client: Annotated[
        str | None, typer.Option(help="with --at: which model scored this client then")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="ISO-8601 time with an offset (e.g. 2026-11-29T09:00:00Z), with --client"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the records (or the answer) as one JSON document")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="the last N records")] = 50,
) -> None:
    """The audit trail: every control command and its outcome, and every model switch."""
    # When the command runs, not at the top: the lookup and aiokafka are slow to import,
    # and the root app imports this module for every command.
    from streams.cli.audit_lookup import scored_by

    settings = load_settings(ctx)
    if client is not None or at is not None:
        if client is None or at is None:
            raise ProfitstreamError("--client and --at go together: --client C --at T")
        when = parse_instant(at, "--at")  # before the broker: a typo fails at once
        answer = scored_by(audit_trail(settings), client, when, settings.topic_partitions)
        if as_json:
            print_json(answer.document())
        else:
            out.print(answer.sentence(), highlight=False)
        return
    records = audit_trail(settings)
    shown = records[-limit:]
    if as_json:
        print_json(shown)
        return
    out.print(_audit_table(shown, len(records)))


def _audit_table(shown: list[dict[str, Any]], total: int) -> Table:
    """The trail for people: one row per command, model switch or erasure."""
    from streams.cli.control_client import erasure_summary  # import cost: see audit

    table = Table(title=f"audit trail ({total} records, last {len(shown)})")
    for column in ("time", "what", "who", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for record in shown:
        if record.get("kind") == "command":
            kind = str(record.get("type"))
            table.add_row(
                record["record_time"][:19], SHOWN_TYPE.get(kind, kind),
                str(record.get("issued_by")),
                "[green]accepted[/]" if record["outcome"] == "accepted"
                else f"[red]rejected: {escape(str(record['reason']))}[/]",
                escape(str(record["message"])),
            )  # fmt: skip
        elif record.get("kind") == "erasure":
            table.add_row(
                str(record.get("at"))[:19], "erasure", str(record.get("worker")),
                "erased" if record.get("found") else "nothing found",
                escape(f"control offset {record.get('offset')}: client sha256 "
                       f"{str(record.get('client_sha256'))[:16]}..., "
                       f"{erasure_summary([record]) or 'no state held'}"),
            )  # fmt: skip
        else:
            parts = ", ".join(f"{p['topic']}/{p['partition']}@{p['from_offset']}"
                              for p in record["partitions"])  # fmt: skip
            table.add_row(
                record["at"][:19], "model_switch", record["worker"], "",
                f"revision {record['deployment_revision']} ({record['champion']}) from {parts}",
            )  # fmt: skip
    return table
