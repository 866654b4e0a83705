"""`profitstream monitor status`: each model version's realised and estimated accuracy,
interval coverage and drift, from the workers' records on the monitoring topic
(``models_store.monitoring.status``)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from streams.cli.context import make_console, print_json
from streams.cli.publishing import connection
from streams.errors import ProfitstreamError

out = make_console()
SINCE_HELP = "read the records of the last hours (workers republish their figures hourly)"

monitor_cli = typer.Typer(
    help="Model quality: realised vs estimated accuracy, coverage, drift.", no_args_is_help=True
)


def _read(ctx: typer.Context, since_hours: float, timeout_s: float) -> list[bytes]:
    # Here, not at the top: aiokafka is slow to import (see streams.cli.experiment).
    from aiokafka.errors import KafkaError

    from streams.cli.control_client import read_since

    settings, bootstrap, options = connection(ctx)
    topic = settings.topics.monitoring
    since_ms = int((time.time() - since_hours * 3600) * 1000)
    try:
        return asyncio.run(
            asyncio.wait_for(read_since(bootstrap, options, topic, since_ms), timeout_s)
        )
    except TimeoutError:
        raise ProfitstreamError(
            f"reading {topic} took longer than --timeout {timeout_s:g}s; pass a longer "
            "--timeout or a shorter --since-hours, or check the broker"
        ) from None
    except KafkaError as exc:
        raise ProfitstreamError(
            f"reading {topic} from {','.join(bootstrap)} failed: {type(exc).__name__}: {exc}; "
            "check the broker and the PROFITSTREAM_SECURITY__* settings"
        ) from exc


@monitor_cli.command("status")
def monitor_status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="the rows as one JSON document")] = False,
    since_hours: Annotated[float, typer.Option(min=0.01, help=SINCE_HELP)] = 2.0,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds to read the topic")] = 30.0,
) -> None:
    """Per model version and arm: estimated vs realised MAE, bias, coverage, outcomes seen,
    drift top-5."""
    from models_store.monitoring.status import StatusFold
    from streams.cli.control_client import json_objects

    fold = StatusFold()
    for record in json_objects(_read(ctx, since_hours, timeout)):
        fold.add(record)
    statuses = fold.statuses()
    if not statuses:
        raise ProfitstreamError(
            f"no accuracy record on the monitoring topic in the last {since_hours:g} hours: "
            "workers publish one per model they score with, every "
            "PROFITSTREAM_MONITOR_INTERVAL_S; deploy a model (`profitstream models deploy`) "
            "or pass a longer --since-hours"
        )
    if as_json:
        print_json({"models": [s.as_dict() for s in statuses], "ignored": dict(fold.ignored)})
        return
    out.print(_table([s.as_dict() for s in statuses]))


def _number(value: Any, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="model quality (realised over each worker's last N outcomes)")
    for column in ("model", "arm", "target", "outcomes seen", "MAE realised", "MAE est. "
                   "(same)", "MAE est. (now)", "MAE card", "bias", "RMSE", "coverage",
                   "drift top-5"):  # fmt: skip
        table.add_column(column, justify="left" if column in {"model", "arm", "target",
                         "drift top-5"} else "right", overflow="fold")  # fmt: skip
    for row in rows:
        coverage = _number(row["coverage"], 3)
        if row["coverage"] is not None and row["interval_level"] is not None:
            state = {True: " [red]broken[/]", False: " [green]ok[/]", None: " (window not full)"}
            coverage = f"{coverage} of {row['interval_level']:g}{state[row['coverage_broken']]}"
        now = _number(row["estimated_mae"]) if row["has_estimate"] else "no estimate"
        drift = "—" if not row["drift_top"] else ", ".join(row["drift_top"])
        table.add_row(row["model"], row["arm"], row["target"] or "—",
                      f"{row['outcomes_seen']:,} ({row['window_outcomes']:,} in windows)",
                      _number(row["mae"]), _number(row["estimated_mae_outcomes"]), now,
                      _number(row["reference_mae"]), _number(row["bias"]), _number(row["rmse"]),
                      coverage, drift)  # fmt: skip
    return table
