"""`profitstream clients erase`: the right to erasure, as a signed ``erase_client`` command
that waits until the workers report every table partition cleared."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from streams.cli.context import make_console
from streams.cli.publishing import WaitOption, audited, connection
from streams.errors import ProfitstreamError

if TYPE_CHECKING:
    from streams.cli.control_client import Published
    from streams.settings import Settings

out = make_console()
err = make_console(stderr=True)

clients_cli = typer.Typer(help="Client data: erase a client (right to erasure).",
                          no_args_is_help=True)  # fmt: skip


@clients_cli.command("erase")
def erase_client(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(help="the client to forget")],
    wait: WaitOption = 30,
) -> None:
    """Erase a client: its state (table, changelog, Redis) and its latest prediction (a
    tombstone) go, it is never scored again. Waits until the workers have reported every
    table partition cleared, then says what was erased."""
    # When the command runs, not at the top: the control fold and aiokafka are slow to
    # import, and the root app imports this module for every command.
    from models_store.control.rejections import ALREADY_ERASED
    from streams.cli.control_client import audit_records, erasure_command, publish, read_topic

    started = time.monotonic()
    settings, bootstrap, options = connection(ctx)
    trail = audit_records(asyncio.run(read_topic(bootstrap, options, settings.topics.audit)))
    earlier = erasure_command(trail, client_id)
    if earlier is not None:  # nothing sent: a second command would only be rejected
        _say(f"already erased: {client_id} at {earlier['record_time']} (control offset "
             f"{earlier['offset']}); nothing to do")  # fmt: skip
        return
    args = {"client_id": client_id}
    published = asyncio.run(
        publish(settings, bootstrap, options, "erase_client", args, "erase", wait)
    )
    audit = audited(published, "erase_client", wait)
    if audit["outcome"] != "accepted":
        if audit["reason"] == "invalid" and audit["message"] == ALREADY_ERASED:
            _say(f"already erased: {client_id} (control offset {published.offset} changed "
                 "nothing)")  # fmt: skip
            return
        reason, message = escape(str(audit["reason"])), escape(str(audit["message"]))
        err.print(f"[bold red]rejected[/] ({reason}): {message}", highlight=False)
        raise typer.Exit(1)
    left = max(0.0, wait - (time.monotonic() - started))
    _say(_erasure_reported(settings, bootstrap, options, client_id, published, left, wait))


def _say(text: str) -> None:
    """One line on stdout, as is (no markup, no wrapping: scripts read it too)."""
    out.print(escape(text), highlight=False, soft_wrap=True)


def _erasure_reported(
    settings: Settings,
    bootstrap: list[str],
    options: dict[str, Any],
    client_id: str,
    published: Published,
    left_s: float,
    wait_s: float,
) -> str:
    """What the workers' ``erasure`` records of the command say, once they cover every
    table partition; a one-line error when they do not within ``left_s``."""
    # Import cost: see erase_client.
    from streams.cli.control_client import erasure_reports, erasure_summary, unswept

    audit_topic = settings.topics.audit
    reports = asyncio.run(erasure_reports(bootstrap, options, audit_topic, published.offset,
                                          published.trail_end, left_s))  # fmt: skip
    missing = unswept(reports)
    if missing is None or missing:
        which = "no worker reported it" if missing is None else \
            f"no worker reported table partition(s) {', '.join(map(str, missing))}"  # fmt: skip
        raise ProfitstreamError(
            f"erase_client of {client_id} accepted at control offset {published.offset}, but "
            f"{which} within {wait_s:.0f}s: are the workers running? `profitstream audit` "
            "shows the erasure records as they come"
        )
    erased = erasure_summary(reports)
    if erased is None:
        workers = ", ".join(sorted({str(r["worker"]) for r in reports}))
        return (f"nothing to erase: no worker held {client_id} (control offset "
                f"{published.offset}, every table partition answered by {workers}); its "
                "future events will be dropped")  # fmt: skip
    return (f"erased {client_id} (control offset {published.offset}): {erased}; its future "
            "events will be dropped")  # fmt: skip
