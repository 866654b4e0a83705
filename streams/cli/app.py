"""The `profitstream` command line."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from models_store.errors import ModelStoreError
from streams.cli.audit import audit
from streams.cli.clients import clients_cli
from streams.cli.context import (
    load_settings,
    make_console,
    parse_option_as_of,
    parse_option_end,
    print_json,
)
from streams.cli.experiment import experiment_cli
from streams.cli.keys import control_cli
from streams.cli.models import models_cli
from streams.cli.monitor import monitor_cli
from streams.cli.predictions import predictions_cli
from streams.errors import ProfitstreamError
from streams.settings import Settings, mask_url_password
from streams.stack import embedded

cli = typer.Typer(
    name="profitstream",
    help="Predict MSP client profitability from Kafka events; emit a prediction when it changes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stack_cli = typer.Typer(help="The embedded local stack: Tansu (Kafka) and valkey (Redis).")
cli.add_typer(stack_cli, name="stack")
cli.add_typer(models_cli, name="models")
cli.add_typer(experiment_cli, name="experiment")
cli.add_typer(clients_cli, name="clients")
cli.add_typer(control_cli, name="control")
cli.add_typer(predictions_cli, name="predictions")
cli.add_typer(monitor_cli, name="monitor")
cli.command("audit")(audit)

out = make_console()
err = make_console(stderr=True)
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON document on stdout")]


@cli.callback()
def main_options(
    ctx: typer.Context,
    broker: Annotated[
        str | None, typer.Option(help="kafka://host:port[,...] (env PROFITSTREAM_BROKER)")
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="redis://host:port/db (env PROFITSTREAM_REDIS_URL)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="State, logs and the stack (env PROFITSTREAM_DATA_DIR)")
    ] = None,
    app_id: Annotated[
        str | None, typer.Option(help="Faust app id / consumer group (env PROFITSTREAM_APP_ID)")
    ] = None,
) -> None:
    """Options shared by every command."""
    ctx.obj = {"broker": broker, "redis_url": redis_url, "data_dir": data_dir, "app_id": app_id}


@cli.command()
def config(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print the effective settings (secrets masked) and where the broker and Redis are."""
    settings = load_settings(ctx)
    settings_shown = settings.display()
    resolved = resolved_endpoints(settings)
    if as_json:
        print_json({"settings": settings_shown, "resolved": resolved})
        return
    table = Table(title="profitstream settings", show_lines=False)
    table.add_column("setting", overflow="fold")
    table.add_column("value", overflow="fold")
    for key, value in settings_shown.items():
        table.add_row(key, "" if value is None else escape(str(value)))
    for label, value in resolved.items():
        shown = f"[yellow]{escape(value['error'])}[/]" if value["error"] else value["value"]
        table.add_row(f"{label} (resolved)", shown)
    out.print(table)


def resolved_endpoints(settings: Settings) -> dict[str, dict[str, str | None]]:
    """Where the broker, Redis and the registry resolve to (or why they do not)."""
    from streams.cli.endpoints import kafka_bootstrap, redis_url

    resolved: dict[str, dict[str, str | None]] = {}
    for label, resolve in (("kafka bootstrap", kafka_bootstrap), ("redis", redis_url)):
        try:
            value = resolve(settings)
            shown = ",".join(value) if isinstance(value, list) else mask_url_password(value)
            resolved[label] = {"value": shown, "error": None}
        except ProfitstreamError as exc:
            resolved[label] = {"value": None, "error": str(exc)}
    resolved["model registry"] = {"value": settings.registry_uri, "error": None}
    return resolved


@stack_cli.command("up")
def stack_up(
    ctx: typer.Context,
    kafka_port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port")] = 0,
    redis_port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port")] = 0,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each server")] = 30,
) -> None:
    """Start the embedded broker and Redis on loopback (already running ones are kept)."""
    settings = load_settings(ctx)
    with err.status("starting the embedded stack..."):
        servers = embedded.up(
            settings.stack_dir,
            ports={"kafka": kafka_port, "redis": redis_port},
            timeout_s=timeout,
        )
    for server in servers:
        verb = "started" if server.started_now else "already running"
        out.print(f"{server.kind.title}: {verb} at {server.url}")
    out.print(f"state, pid files and logs: {settings.stack_dir.resolve()}")


@stack_cli.command("down")
def stack_down(ctx: typer.Context) -> None:
    """Stop the embedded broker and Redis (the broker keeps its data in memory only)."""
    settings = load_settings(ctx)
    for server in embedded.down(settings.stack_dir):
        state = "stopped" if server.running else "was not running"
        out.print(f"{server.kind.title}: {state}")


@stack_cli.command("status")
def stack_status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Say what runs where; exit code 1 unless both servers run."""
    settings = load_settings(ctx)
    servers = embedded.status(settings.stack_dir)
    if as_json:
        print_json({"stack_dir": str(settings.stack_dir.resolve()), "servers": [
            {"server": server.kind.title, "running": server.running, "address": server.url,
             "pid": server.record.pid if server.record and server.running else None,
             "log": server.record.log_path if server.record else None}
            for server in servers
        ]})  # fmt: skip
    else:
        out.print(_stack_table(settings.stack_dir, servers))
    if not all(server.running for server in servers):
        raise typer.Exit(1)


def _stack_table(stack_dir: Path, servers: list[embedded.ServerStatus]) -> Table:
    table = Table(title=f"embedded stack under {stack_dir.resolve()}")
    for column in ("server", "state", "address", "pid", "log"):
        table.add_column(column, overflow="fold")
    for server in servers:
        record = server.record
        table.add_row(
            server.kind.title,
            "[green]running[/]" if server.running else "[red]stopped[/]",
            server.url or "-",
            str(record.pid) if record and server.running else "-",
            str(record.log_path) if record else "-",
        )
    return table


@cli.command()
def worker(
    ctx: typer.Context,
    web_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="env PROFITSTREAM_WEB_PORT")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
) -> None:
    """Run a stream worker against the configured broker (or the running embedded stack)."""
    from streams.cli.worker import run_worker

    run_worker(load_settings(ctx, web_port=web_port, log_level=log_level))


@cli.command()
def simulate(
    ctx: typer.Context,
    clients: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    months: Annotated[int, typer.Option(min=1, max=120, help="30-day periods")] = 12,
    seed: Annotated[int, typer.Option()] = 7,
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="first day (UTC)")
    ] = datetime(2024, 1, 1),
    kind: Annotated[
        str, typer.Option(help="contract | transactional | mixed (half and half)")
    ] = "contract",
    out: Annotated[Path | None, typer.Option(help="write the event log here (.parquet)")] = None,
    malformed: Annotated[float, typer.Option(min=0, max=0.5, help="fraction added")] = 0.0,
    duplicates: Annotated[float, typer.Option(min=0, max=0.5, help="fraction re-sent")] = 0.0,
    late: Annotated[float, typer.Option(min=0, max=0.5, help="fraction delayed")] = 0.0,
    oracle_draws: Annotated[int, typer.Option(min=0, help="0 skips the oracle")] = 16,
    to_kafka: Annotated[bool, typer.Option(help="replay to the input topics")] = False,
    rate: Annotated[float, typer.Option(min=0, help="events/s for --to-kafka; 0 = max")] = 0.0,
) -> None:
    """Simulate an MSP portfolio: an event log with a known best-possible accuracy."""
    from features.simulation.portfolio import PORTFOLIO_KINDS
    from streams.cli.simulate import SimulationRequest, run_simulation

    if kind not in PORTFOLIO_KINDS:
        raise ProfitstreamError(f"--kind {kind!r}: use {', '.join(PORTFOLIO_KINDS)}")
    request = SimulationRequest(
        clients=clients, months=months, seed=seed, kind=kind,
        start=start.replace(tzinfo=UTC),
        malformed=malformed, duplicates=duplicates, late=late, oracle_draws=oracle_draws,
        out=out, to_kafka=to_kafka, rate=rate,
    )  # fmt: skip
    run_simulation(request, load_settings(ctx), err)


@cli.command()
def train(
    ctx: typer.Context,
    events: Annotated[Path, typer.Option(help="event log (.parquet), as `simulate --out` writes")],
    horizon: Annotated[str, typer.Option(help="label horizon in days, e.g. 90d")] = "90d",
    cutoffs: Annotated[
        str, typer.Option(help="30d (every 30 days), monthly, or YYYY-MM-DD,YYYY-MM-DD,...")
    ] = "30d",
    target: Annotated[str, typer.Option(help="margin_ratio | margin_abs")] = "margin_ratio",
    level: Annotated[float, typer.Option(min=0.5, max=0.99, help="interval level")] = 0.9,
    split: Annotated[
        str,
        typer.Option(
            help="auto (time when the history fits it, else clients) | time | clients "
            "(docs/models.md)"
        ),
    ] = "auto",
    validation_cutoffs: Annotated[
        int | None, typer.Option(min=1, help="default: up to 3, as the history allows")
    ] = None,
    test_cutoffs: Annotated[
        int | None, typer.Option(min=1, help="default: up to 3, as the history allows")
    ] = None,
    seed: Annotated[int, typer.Option()] = 7,
    budget: Annotated[str, typer.Option(help="search budget: standard | quick")] = "standard",
    name: Annotated[str, typer.Option(help="model name in the registry")] = "profitability",
    version: Annotated[
        str | None, typer.Option(help="MAJOR.MINOR.PATCH (default: next patch)")
    ] = None,
    oracle: Annotated[
        Path | None, typer.Option(help="simulator oracle rows (default: beside --events)")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="history end: a date (the history holds the days before it) or an ISO-8601 "
            "time with an offset"
        ),
    ] = None,
    report_dir: Annotated[Path | None, typer.Option(help="default DATA_DIR/reports/NAME-V")] = None,
    register: Annotated[bool, typer.Option(help="register the bundle when done")] = True,
    tier_bounds: Annotated[
        str | None,
        typer.Option(
            help="risk-tier bounds in the target's unit, LOSS,AT_RISK,HEALTHY ascending (default: "
            "0,0.25,0.5 for the ratio; 0 and the portfolio's quartiles for money)"
        ),
    ] = None,
) -> None:
    """Train XGBoost + Random Forest on an event history; report; register the version."""
    from streams.cli.train import TrainOptions, run_training

    if target not in ("margin_ratio", "margin_abs"):
        raise ProfitstreamError(f"--target {target!r}: use margin_ratio or margin_abs")
    if budget not in ("standard", "quick"):
        raise ProfitstreamError(f"--budget {budget!r}: use standard or quick")
    if split not in ("auto", "time", "clients"):
        raise ProfitstreamError(f"--split {split!r}: use auto, time or clients")
    options = TrainOptions(
        events=events, horizon=horizon, cutoffs=cutoffs, target=target,  # type: ignore[arg-type]
        level=level, split=split, validation_cutoffs=validation_cutoffs,  # type: ignore[arg-type]
        test_cutoffs=test_cutoffs, seed=seed, budget=budget, name=name, version=version,
        oracle=oracle, report_dir=report_dir, register=register,
        until=None if until is None else parse_option_end(until, "--until"),
        tier_bounds=None if tier_bounds is None else parse_tier_bounds(tier_bounds),
    )  # fmt: skip
    run_training(options, load_settings(ctx), err)


def parse_tier_bounds(text: str) -> tuple[float, float, float]:
    """``--tier-bounds 0,0.25,0.5`` -> three ascending numbers, or one clear error."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not values[0] <= values[1] <= values[2]:
        raise ProfitstreamError(
            f"--tier-bounds {text!r}: give three ascending numbers such as 0,0.25,0.5"
        )
    return values[0], values[1], values[2]


@cli.command("import")
def import_exports(
    mapping: Annotated[
        Path, typer.Argument(help="TOML mapping: which file is which kind, which column is what")
    ],
    destination: Annotated[Path, typer.Option("--out", help="the event log to write (.parquet)")],
    rejected: Annotated[
        Path | None,
        typer.Option(help="report of rejected rows, .csv or .jsonl (default OUT.rejected.csv)"),
    ] = None,
) -> None:
    """Turn tabular exports (CSV/Parquet) into a validated event log for train, score, replay."""
    from streams.cli.import_data import ImportRequest, run_import

    run_import(ImportRequest(mapping=mapping, out=destination, rejected=rejected), out, err)


@cli.command()
def score(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Option("--in", help="feature rows or an event log (.parquet or .csv)")
    ],
    destination: Annotated[Path, typer.Option("--out", help="predictions (.parquet or .csv)")],
    model: Annotated[
        str | None,
        typer.Option(
            help="NAME@VERSION, NAME@champion, NAME@challenger or NAME@ALIAS (default: the "
            "deployed champion, else PROFITSTREAM_MODEL)"
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="for an event log: a date (everything before that UTC day, as a training "
            "cutoff) or an ISO-8601 time with an offset, e.g. 2025-01-10T12:00:00Z"
        ),
    ] = None,
) -> None:
    """Batch predictions with interval, risk tier and drivers, as the stream would emit them."""
    from streams.cli.score import ScoreRequest, run_scoring

    when = None if as_of is None else parse_option_as_of(as_of, "--as-of")
    request = ScoreRequest(source=source, destination=destination, model=model, as_of=when)
    run_scoring(request, load_settings(ctx), err)


@cli.command()
def schemas(
    out_dir: Annotated[Path, typer.Option("--out", help="docs directory to write into")] = Path(
        "docs"
    ),
) -> None:
    """Write the topic contracts: OUT/events.md and OUT/schemas/<topic>.schema.json for the
    inputs, predictions, control, audit and monitoring topics."""
    from features.contract_docs import events_markdown, schema_files
    from models_store.control.audit_records import audit_schema_file
    from models_store.control.commands import control_schema_file
    from models_store.experiments.records import monitoring_schema_file
    from models_store.scoring.prediction import prediction_schema_file

    files = {**schema_files(), **dict([prediction_schema_file(), control_schema_file(),
                                       audit_schema_file(), monitoring_schema_file()])}  # fmt: skip
    try:
        (out_dir / "schemas").mkdir(parents=True, exist_ok=True)
        (out_dir / "events.md").write_text(events_markdown())
        for name, text in files.items():
            (out_dir / "schemas" / name).write_text(text)
    except OSError as exc:
        raise ProfitstreamError(f"cannot write the contract under {out_dir}: {exc}") from exc
    out.print(f"wrote {out_dir / 'events.md'} and {len(files)} JSON Schema files")


def main() -> None:
    """Console-script entry point: expected failures print one line, never a traceback."""
    command = typer.main.get_command(cli)
    try:
        # Standalone mode: click reports usage errors and exits with their codes itself.
        command.main(prog_name="profitstream")
    except (ProfitstreamError, ModelStoreError) as exc:
        # Escaped: a message may hold brackets (NAME[@VERSION]) that rich would take as markup.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
