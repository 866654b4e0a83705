"""`profitstream experiment ...`: start, shadow, ramp, stop and promote A/B and shadow
experiments with signed control commands (published as `streams.cli.publishing` says), and
`experiment status`: an experiment's settings and the monitor's latest result as tables."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.table import Table

from streams.cli.context import make_console, print_json
from streams.cli.publishing import WaitOption, connection, exact_ref, publish_command
from streams.errors import ProfitstreamError

out = make_console()

experiment_cli = typer.Typer(
    help="A/B and shadow experiments: start, ramp, stop, promote, status.", no_args_is_help=True
)


@experiment_cli.command("start")
def experiment_start(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument(help="a new id, e.g. 2026-11-xgb-depth6")],
    challenger: Annotated[str, typer.Option(help="NAME@VERSION (or alias) to compare")],
    salt: Annotated[str | None, typer.Option(help="assignment salt (default: the id)")] = None,
    share: Annotated[
        float | None, typer.Option(min=0, max=1, help="challenger's share of clients")
    ] = None,
    schedule: Annotated[
        str | None, typer.Option(help="ramp steps, e.g. 0.05,0.25,0.5,1 (starts at the first)")
    ] = None,
    min_samples: Annotated[int, typer.Option(min=1, help="closed horizons per arm")] = 200,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.2, help="false promotion rate")] = 0.05,
    max_duration_days: Annotated[float, typer.Option(min=1)] = 180,
    auto_promote: Annotated[bool, typer.Option(help="promote a significant winner")] = True,
    max_error_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.01,
    max_latency_ms: Annotated[float, typer.Option(min=1)] = 5000,
    max_drift_ratio: Annotated[float, typer.Option(min=1.01)] = 2.0,
    wait: WaitOption = 30,
) -> None:
    """Start an A/B experiment: the challenger scores its share of clients (sticky)."""
    args: dict[str, Any] = {
        "experiment_id": experiment_id, "challenger": exact_ref(ctx, challenger), "mode": "ab",
        "salt": salt or experiment_id, "min_samples": min_samples, "alpha": alpha,
        "max_duration_days": max_duration_days, "auto_promote": auto_promote,
        "guardrails": {"max_error_rate": max_error_rate, "max_latency_ms": max_latency_ms,
                       "max_drift_ratio": max_drift_ratio},
    }  # fmt: skip
    if schedule:
        try:
            args["schedule"] = [float(step) for step in schedule.split(",")]
        except ValueError:
            raise ProfitstreamError(
                f"--schedule {schedule!r}: use shares like 0.05,0.25,1"
            ) from None
    if share is not None:
        args["share"] = share
    publish_command(ctx, "experiment_start", args, args["challenger"].split("@")[0], wait)


@experiment_cli.command("shadow")
def experiment_shadow(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument(help="a new id")],
    challenger: Annotated[str, typer.Option(help="NAME@VERSION (or alias) to run in shadow")],
    min_samples: Annotated[int, typer.Option(min=1, help="closed horizons per arm")] = 200,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.2, help="false promotion rate")] = 0.05,
    max_duration_days: Annotated[float, typer.Option(min=1)] = 180,
    auto_promote: Annotated[
        bool, typer.Option(help="promote a significant winner straight from shadow")
    ] = False,
    wait: WaitOption = 30,
) -> None:
    """Run a challenger in shadow: it scores every client the champion emits for, its
    predictions go to the shadow topic only, and their outcomes are compared."""
    ref = exact_ref(ctx, challenger)
    args = {"experiment_id": experiment_id, "challenger": ref, "mode": "shadow",
            "salt": experiment_id, "min_samples": min_samples, "alpha": alpha,
            "max_duration_days": max_duration_days, "auto_promote": auto_promote}  # fmt: skip
    publish_command(ctx, "experiment_start", args, ref.split("@")[0], wait)


@experiment_cli.command("ramp")
def experiment_ramp(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument()],
    share: Annotated[
        float | None, typer.Option(min=0, max=1, help="new share (default: the next step)")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(help="ramp up even if the monitor's latest result has a broken guardrail"),
    ] = False,
    wait: WaitOption = 30,
) -> None:
    """Change the challenger's share, or advance it to the schedule's next step (refused
    while a guardrail is broken, unless --force)."""
    args: dict[str, Any] = {"experiment_id": experiment_id}
    if share is not None:
        args["share"] = share
    if not force:
        _refuse_if_guardrail_broken(ctx, experiment_id, share)
    publish_command(ctx, "experiment_ramp", args, experiment_id, wait)


def _refuse_if_guardrail_broken(
    ctx: typer.Context, experiment_id: str, share: float | None
) -> None:
    """Ramping up waits for guardrails that hold (the monitor's latest result says)."""
    _, latest = _latest_result(ctx, experiment_id)
    if latest is None or (share is not None and share <= latest["share"]):
        return
    broken = [check["name"] for check in latest["guardrails"] if check["breached"]]
    if broken:
        raise ProfitstreamError(
            f"experiment {experiment_id}: {', '.join(broken)} broken in the monitor's result "
            f"of {latest['at']}; `profitstream experiment status {experiment_id}` shows why, "
            "--force ramps up anyway"
        )


def _latest_result(
    ctx: typer.Context, experiment_id: str | None
) -> tuple[tuple[dict[str, Any], bool] | None, dict[str, Any] | None]:
    """(the experiment's settings and whether it runs, or None; its latest result)."""
    # When a command runs, not at the top: aiokafka is slow to import, and the root app
    # imports this module for every command.
    from streams.cli.control_client import (
        audit_records,
        experiment_results,
        read_key_partition,
        read_topic,
    )

    settings, bootstrap, options = connection(ctx)
    records = audit_records(asyncio.run(read_topic(bootstrap, options, settings.topics.audit)))
    experiment, running = _experiment_of(records, experiment_id)
    if experiment is None:
        return None, None
    name = experiment["experiment_id"]
    since_ms = int(experiment["started_at"] * 1000)
    raw = asyncio.run(
        read_key_partition(bootstrap, options, settings.topics.monitoring, name, since_ms)
    )
    results = experiment_results(raw, name)
    return (experiment, running), (results[-1] if results else None)


@experiment_cli.command("stop")
def experiment_stop(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option()] = "stopped by an operator",
    wait: WaitOption = 30,
) -> None:
    """End the experiment: the champion scores every client again."""
    args = {"experiment_id": experiment_id, "reason": reason}
    publish_command(ctx, "experiment_stop", args, experiment_id, wait)


@experiment_cli.command("promote")
def experiment_promote(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option()] = "promoted by an operator",
    wait: WaitOption = 30,
) -> None:
    """Make the challenger the champion and end the experiment (admin)."""
    args = {"experiment_id": experiment_id, "reason": reason}
    publish_command(ctx, "experiment_promote", args, experiment_id, wait)


@experiment_cli.command("status")
def experiment_status(
    ctx: typer.Context,
    experiment_id: Annotated[
        str | None, typer.Argument(help="default: the running experiment, else the last one")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="settings, state and latest result as one JSON document")
    ] = False,
) -> None:
    """An experiment's configuration and the monitor's latest result: per-arm errors, the
    sequential test, guardrails, the verdict."""
    found, latest = _latest_result(ctx, experiment_id)
    if found is None:
        named = f"experiment {experiment_id} was never started" if experiment_id else \
            "no experiment was ever started"  # fmt: skip
        raise ProfitstreamError(f"{named}; `profitstream experiment start` starts one")
    experiment, running = found
    if as_json:
        print_json({"experiment": experiment, "state": "running" if running else "ended",
                    "result": latest})  # fmt: skip
        return
    out.print(_configuration_table(experiment, running))
    if latest is None:
        out.print(
            "no experiment_result yet: the worker that owns the control partition publishes "
            "one every PROFITSTREAM_MONITOR_INTERVAL_S while the experiment runs",
            highlight=False,
        )
        return
    for table in _result_tables(latest):
        out.print(table)


def _experiment_of(
    records: list[dict[str, Any]], experiment_id: str | None
) -> tuple[dict[str, Any] | None, bool]:
    """The experiment's settings as the fold recorded them, and whether it still runs."""
    running = None
    found = None
    for record in records:
        if record.get("kind") != "command" or record.get("outcome") != "accepted":
            continue
        current = record["after"].get("experiment")
        running = current
        if current and (experiment_id is None or current["experiment_id"] == experiment_id):
            found = current
    if running is not None and experiment_id in (None, running["experiment_id"]):
        return running, True
    return found, False


def _configuration_table(experiment: dict[str, Any], running: bool) -> Table:
    state = "running" if running else "ended"
    table = Table(title=f"experiment {experiment['experiment_id']} ({state})")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    for key in ("challenger", "mode", "share", "schedule", "salt", "min_samples", "alpha",
                "max_duration_days", "auto_promote", "guardrails"):  # fmt: skip
        table.add_row(key, str(experiment.get(key)))
    return table


def _number(value: Any, digits: int = 4) -> str:
    return (
        "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)
    )


def _result_tables(result: dict[str, Any]) -> list[Table]:
    verdict = result["verdict"]
    test = result.get("test") or {}
    summary = Table(title=f"result at {result['at']} (deployment revision "
                    f"{result['deployment_revision']})")  # fmt: skip
    summary.add_column("")
    summary.add_column("value", overflow="fold")
    summary.add_row("verdict", f"{verdict['action']}: {verdict['reason']}")
    summary.add_row("actions", str(result["actions"]))
    summary.add_row("test decision", str(test.get("decision", "no outcomes yet")))
    summary.add_row("always-valid p-value", _number(test.get("p_value")))
    effect, half = test.get("effect"), test.get("half_width")
    if effect is not None and half is not None:
        summary.add_row("MAE champion - challenger", f"{effect:.4f} ± {half:.4f}")
    arms = Table(title="arms")
    for column in ("arm", "outcomes", "MAE", "bias", "coverage", "scored", "error rate",
                   "p95 call ms", "drift"):  # fmt: skip
        arms.add_column(column, justify="right" if column != "arm" else "left")
    for arm in ("champion", "challenger"):
        outcome, health = result["outcomes"][arm], result["health"][arm]
        arms.add_row(arm, str(outcome["n"]), _number(outcome["mae"]), _number(outcome["bias"]),
                     _number(outcome["coverage"], 3), str(health["scored"]),
                     _number(health["error_rate"], 3), _number(health["latency_p95_ms"]),
                     _number(health["drift"]))  # fmt: skip
    guardrails = Table(title="guardrails (challenger)")
    for column in ("guardrail", "value", "limit", "state"):
        guardrails.add_column(column)
    for check in result["guardrails"]:
        state = {None: "not enough data", True: "[red]broken[/]", False: "[green]holds[/]"}
        guardrails.add_row(check["name"], _number(check["value"]), _number(check["limit"]),
                           state[check["breached"]])  # fmt: skip
    return [summary, arms, guardrails]
