"""`profitstream experiment ...`, `clients erase`, `control keygen`, `audit`, and the
publishing behind `models approve|deploy|rollback|retire`: signed control commands.

Each command is signed as ``PROFITSTREAM_CONTROL_PRINCIPAL``, published to the control
topic, and followed until a worker's audit record says what became of it: the exit code
is 0 when it was accepted, 1 when it was rejected, 2 when no worker answered in time.

Every model reference the CLI takes goes through ``resolve_ref``: ``NAME@champion`` and
``NAME@challenger`` are what the control log deploys (the audit trail's latest state),
anything else is looked up in the registry.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from streams.cli.context import load_settings, make_console, parse_instant, print_json
from streams.errors import ProfitstreamError

if TYPE_CHECKING:
    from streams.cli.control_client import Published
    from streams.settings import Settings

out = make_console()
err = make_console(stderr=True)

experiment_cli = typer.Typer(
    help="A/B and shadow experiments: start, ramp, stop, promote, status.", no_args_is_help=True
)
clients_cli = typer.Typer(help="Client data: erase a client (right to erasure).",
                          no_args_is_help=True)  # fmt: skip
control_cli = typer.Typer(help="Control-plane keys: create a principal.", no_args_is_help=True)

WaitOption = Annotated[
    float, typer.Option("--wait", min=0, help="seconds to wait for a worker's audit record")
]


# `NAME@champion` / `NAME@challenger` name what the control log deploys, not registry aliases.
DEPLOYMENT_ROLES = ("champion", "challenger")
# The control command that approves a version is named `register` on the wire.
SHOWN_TYPE = {"register": "approve (register)"}


def broker_connection(settings: Settings) -> tuple[list[str], dict[str, Any]]:
    """Bootstrap servers and client options; a one-line error unless a broker answers."""
    from streams.cli.endpoints import kafka_bootstrap
    from streams.kafka.preflight import aiokafka_security_kwargs, check_kafka

    bootstrap = kafka_bootstrap(settings)
    check_kafka(bootstrap, settings.security)
    return bootstrap, aiokafka_security_kwargs(settings.security)


def _connection(ctx: typer.Context) -> tuple[Any, list[str], dict[str, Any]]:

    settings = load_settings(ctx)
    return settings, *broker_connection(settings)


def audit_trail(settings: Settings) -> list[dict[str, Any]]:
    """The audit trail's records, oldest first (empty before any worker wrote one)."""
    from streams.cli.control_client import audit_records, read_topic

    bootstrap, options = broker_connection(settings)
    return audit_records(asyncio.run(read_topic(bootstrap, options, settings.topics.audit)))


def deployment_state(settings: Settings) -> dict[str, Any] | None:
    """The control state after the trail's latest command record (a seed counts), or None
    when no worker has audited any."""
    from streams.cli.control_client import current_state

    state = current_state(audit_trail(settings))
    return None if state["revision"] is None else state


def role_model(state: dict[str, Any], role: str) -> str | None:
    """The exact model the state gives ``role``: the champion, or the running experiment's
    challenger."""
    if role == "champion":
        return state.get("champion")
    experiment = state.get("experiment") or {}
    return experiment.get("challenger")


def deployed_model(settings: Settings, role: str) -> tuple[str, int]:
    """The exact model the control log gives ``role``, and the revision that says so."""
    state = deployment_state(settings)
    if state is None:
        raise ProfitstreamError(
            f"nothing is deployed yet: no worker has audited the control log (topic "
            f"{settings.topics.audit} is empty), so there is no @{role}; start a worker "
            "(its PROFITSTREAM_MODEL seeds the log) or name a version, NAME@X.Y.Z"
        )
    model = role_model(state, role)
    if model is None:
        missing, fix = (
            ("no champion is deployed", "`profitstream models deploy NAME@X.Y.Z` deploys one")
            if role == "champion"
            else ("no experiment is running", "`profitstream experiment start` starts one")
        )
        raise ProfitstreamError(
            f"{missing} (control revision {state['revision']}), so there is no @{role}; "
            f"{fix}, or name a version, NAME@X.Y.Z"
        )
    return model, int(state["revision"])


def resolve_ref(settings: Settings, ref: str) -> str:
    """The exact ``name@version`` a model reference names.

    ``NAME@champion`` / ``NAME@challenger``: what the control log deploys now (commands
    must name exact versions, so the log never depends on what an alias says later);
    ``NAME``, ``NAME@X.Y.Z`` or another alias: what the registry holds. Either way the
    version must be in the registry.
    """
    from models_store.registry import open_registry
    from models_store.registry.base import parse_ref

    parsed = parse_ref(ref)
    if parsed.alias in DEPLOYMENT_ROLES:
        try:
            model, _ = deployed_model(settings, parsed.alias)
        except ProfitstreamError as exc:
            # Say why a model reference needed the broker at all.
            raise ProfitstreamError(f"{ref} (what the control log deploys): {exc}") from exc
        deployed_name = model.partition("@")[0]
        if deployed_name != parsed.name:
            raise ProfitstreamError(
                f"the deployed {parsed.alias} is {model}, not a version of {parsed.name}; "
                f"ask for {deployed_name}@{parsed.alias}"
            )
        ref = model
    name, version = open_registry(settings.registry_uri).resolve(ref)
    return f"{name}@{version}"


def exact_ref(ctx: typer.Context, ref: str) -> str:
    """``resolve_ref`` with the settings of the command line."""

    return resolve_ref(load_settings(ctx), ref)


def publish_command(
    ctx: typer.Context,
    kind: str,
    args: dict[str, Any],
    key: str,
    wait_s: float,
    accepted_text: str | None = None,
) -> None:
    """Sign, publish, wait for the audit record; print the outcome and exit accordingly
    (``accepted_text``, when given, says what an acceptance means instead of the fold)."""
    from streams.cli.control_client import publish

    settings, bootstrap, options = _connection(ctx)
    published = asyncio.run(publish(settings, bootstrap, options, kind, args, key, wait_s))
    audit = _audited(published, kind, wait_s)
    if audit["outcome"] != "accepted":
        reason, message = escape(str(audit["reason"])), escape(str(audit["message"]))
        err.print(f"[bold red]rejected[/] ({reason}): {message}", highlight=False)
        raise typer.Exit(1)
    after = audit["after"]
    out.print(
        f"[green]accepted[/]: {escape(accepted_text or str(audit['message']))} (revision "
        f"{after['revision']}, champion {after['champion']})",
        highlight=False,
    )


def _audited(published: Published, kind: str, wait_s: float) -> dict[str, Any]:
    """The published command's audit record; a one-line error (exit 2: no worker answered)
    without one."""
    if published.audit is None:
        raise ProfitstreamError(
            f"published {kind} {published.command['command_id']} at control offset "
            f"{published.offset}; no worker audited it within {wait_s:.0f}s: is a worker "
            "running? `profitstream audit` shows it once one has"
        )
    return published.audit


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
    from streams.cli.control_client import (
        audit_records,
        experiment_results,
        read_key_partition,
        read_topic,
    )

    settings, bootstrap, options = _connection(ctx)
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


@clients_cli.command("erase")
def erase_client(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(help="the client to forget")],
    wait: WaitOption = 30,
) -> None:
    """Erase a client: its state (table, changelog, Redis) and its latest prediction (a
    tombstone) go, it is never scored again. Waits until the workers have reported every
    table partition cleared, then says what was erased."""
    from models_store.control.rejections import ALREADY_ERASED
    from streams.cli.control_client import audit_records, erasure_command, publish, read_topic

    started = time.monotonic()
    settings, bootstrap, options = _connection(ctx)
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
    audit = _audited(published, "erase_client", wait)
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


@control_cli.command("keygen")
def keygen(
    name: Annotated[str, typer.Argument(help="the principal's name")],
    role: Annotated[str, typer.Option(help="viewer | operator | admin")],
    keys: Annotated[Path, typer.Option(help="the keys file to create or add to")],
) -> None:
    """Add a principal with a fresh random key to a keys file (created with mode 600)."""
    from models_store.control.commands import Role
    from models_store.control.signing import new_key, parse_keyring

    if role not in {r.value for r in Role}:
        raise ProfitstreamError(f"--role {role!r}: use viewer, operator or admin")
    document: dict[str, Any] = {"principals": {}}
    if keys.exists():
        try:
            document = json.loads(keys.read_text())
        except ValueError as exc:
            raise ProfitstreamError(f"{keys} is not JSON: {exc}") from exc
        parse_keyring(document, keys.parent)  # refuse to extend a broken file
    if name in document["principals"]:
        raise ProfitstreamError(f"{name!r} is already in {keys}; pick another name")
    document["principals"][name] = {"role": role, "key": new_key()}
    descriptor = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(document, file, indent=2)
    out.print(f"added {name} ({role}) to {keys}", highlight=False)


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
    from streams.cli.control_client import erasure_summary

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
