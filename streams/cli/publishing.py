"""What the commands that publish to the control topic share (`models
approve|deploy|rollback|retire`, `experiment ...`, `clients erase`): the broker
connection, and the deployed state as the audit trail says (`score` and `audit` read it too).

Each command is signed as ``PROFITSTREAM_CONTROL_PRINCIPAL``, published to the control
topic, and followed until a worker's audit record says what became of it: the exit code
is 0 when it was accepted, 1 when it was rejected, 2 when no worker answered in time.

Every model reference the CLI takes goes through ``resolve_ref``: ``NAME@champion`` and
``NAME@challenger`` are what the control log deploys (the audit trail's latest state),
anything else is looked up in the registry.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from streams.cli.context import load_settings, make_console
from streams.cli.endpoints import kafka_bootstrap
from streams.errors import ProfitstreamError
from streams.kafka.preflight import aiokafka_security_kwargs, check_kafka

if TYPE_CHECKING:
    from streams.cli.control_client import Published
    from streams.settings import Settings

out = make_console()
err = make_console(stderr=True)

WaitOption = Annotated[
    float, typer.Option("--wait", min=0, help="seconds to wait for a worker's audit record")
]

# `NAME@champion` / `NAME@challenger` name what the control log deploys, not registry aliases.
DEPLOYMENT_ROLES = ("champion", "challenger")


def broker_connection(settings: Settings) -> tuple[list[str], dict[str, Any]]:
    """Bootstrap servers and client options; a one-line error unless a broker answers."""
    bootstrap = kafka_bootstrap(settings)
    check_kafka(bootstrap, settings.security)
    return bootstrap, aiokafka_security_kwargs(settings.security)


def connection(ctx: typer.Context) -> tuple[Settings, list[str], dict[str, Any]]:
    """The command line's settings, and ``broker_connection`` for them."""
    settings = load_settings(ctx)
    return settings, *broker_connection(settings)


def audit_trail(settings: Settings) -> list[dict[str, Any]]:
    """The audit trail's records, oldest first (empty before any worker wrote one)."""
    # Here, not at the top: aiokafka and the signing code take a noticeable part of a
    # second to import, and every command imports this module (through the root app).
    from streams.cli.control_client import audit_records, read_topic

    bootstrap, options = broker_connection(settings)
    return audit_records(asyncio.run(read_topic(bootstrap, options, settings.topics.audit)))


def deployment_state(settings: Settings) -> dict[str, Any] | None:
    """The control state after the trail's latest command record (a seed counts), or None
    when no worker has audited any."""
    from streams.cli.control_client import current_state  # import cost: see audit_trail

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
    # Here, not at the top: the registry code is only needed once a reference is resolved,
    # and importing it would slow the start-up of every other command.
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
    from streams.cli.control_client import publish  # import cost: see audit_trail

    settings, bootstrap, options = connection(ctx)
    published = asyncio.run(publish(settings, bootstrap, options, kind, args, key, wait_s))
    audit = audited(published, kind, wait_s)
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


def audited(published: Published, kind: str, wait_s: float) -> dict[str, Any]:
    """The published command's audit record; a one-line error (exit 2: no worker answered)
    without one."""
    if published.audit is None:
        raise ProfitstreamError(
            f"published {kind} {published.command['command_id']} at control offset "
            f"{published.offset}; no worker audited it within {wait_s:.0f}s: is a worker "
            "running? `profitstream audit` shows it once one has"
        )
    return published.audit
