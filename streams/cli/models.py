"""`profitstream models`: list, show and register model versions in the configured registry;
approve, deploy, roll back and retire them with signed control commands.

Two verbs, one meaning each: *register* puts a bundle in the registry (`train`,
`models register`); *approve* tells the control log a registered version may be deployed
(the control command is named ``register`` on the wire, for compatibility).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from streams.cli.context import load_settings, make_console, print_json
from streams.cli.publishing import (
    DEPLOYMENT_ROLES,
    WaitOption,
    deployment_state,
    exact_ref,
    publish_command,
    resolve_ref,
)

if TYPE_CHECKING:
    from models_store.registry.base import ModelRegistry
    from models_store.registry.card import ModelCard

models_cli = typer.Typer(
    help="The model registry (PROFITSTREAM_MODEL_REGISTRY): list, show and register versions; "
    "approve, deploy, roll back and retire them (signed control commands).",
    no_args_is_help=True,
)
out = make_console()
METRIC_ORDER = ("r2", "mae", "rmse", "bias")


def open_configured_registry(ctx: typer.Context) -> ModelRegistry:
    """The registry the settings name (PROFITSTREAM_MODEL_REGISTRY, else DATA_DIR/registry)."""
    # streams.cli.app imports this module to add the commands: import it when one runs (and
    # the registry code only then, to keep every other command's start-up as it was).
    from models_store.registry import open_registry

    return open_registry(load_settings(ctx).registry_uri)


@models_cli.command("list")
def list_models(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="only the versions of this model")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the versions as one JSON document")
    ] = False,
) -> None:
    """Every registered version: quality on held-out data, and the aliases pointing at it."""
    registry = open_configured_registry(ctx)
    cards = registry.cards(name)
    aliases: dict[str, list[str]] = {}
    for each in sorted({card.name for card in cards}):
        for alias, version in registry.aliases(each).items():
            aliases.setdefault(f"{each}@{version}", []).append(alias)
    if as_json:
        listed = [_listed(card, aliases.get(card.ref, [])) for card in cards]
        print_json({"registry": registry.location, "models": listed})
        return
    if not cards:
        out.print(
            f"no models registered in {registry.location}; train one with `profitstream train` "
            "or add a bundle with `profitstream models register BUNDLE_DIR`",
            highlight=False,
        )
        return
    table = Table(title=f"models in {registry.location}")
    for column in ("name", "version", "created", "target", "horizon", "R²", "MAE", "aliases"):
        table.add_column(column, overflow="fold")
    for card in cards:
        figures = headline_metrics(card)
        table.add_row(
            card.name,
            card.version,
            f"{card.created_at:%Y-%m-%d %H:%M}",
            card.target,
            f"{card.horizon_days} d",
            _figure(figures.get("r2")),
            _figure(figures.get("mae")),
            ", ".join(aliases.get(card.ref, [])),
        )
    out.print(table)


def _listed(card: ModelCard, aliases: list[str]) -> dict[str, Any]:
    """One row of `models list --json`."""
    return {
        "name": card.name,
        "version": card.version,
        "ref": card.ref,
        "created_at": card.created_at.isoformat(),
        "target": card.target,
        "horizon_days": card.horizon_days,
        "metrics": headline_metrics(card),
        "aliases": aliases,
    }


@models_cli.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(help="NAME, NAME@VERSION, NAME@champion, NAME@challenger or NAME@ALIAS")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print the card as raw JSON")] = False,
) -> None:
    """Print a version's model card: data, features, quality, interval, artifacts.
    NAME@champion and NAME@challenger are what the control log deploys now."""

    settings = load_settings(ctx)
    exact = resolve_ref(settings, ref)
    registry = open_configured_registry(ctx)
    card = registry.card(exact)
    if as_json:
        sys.stdout.write(card.to_json())
        return
    aliases = [alias for alias, v in registry.aliases(card.name).items() if v == card.version]
    role = ref.partition("@")[2]
    if role in DEPLOYMENT_ROLES:
        aliases.append(f"{role} (control log)")
    out.print(card_view(card, aliases))


@models_cli.command("register")
def register(
    ctx: typer.Context,
    bundle: Annotated[Path, typer.Argument(help="a bundle directory: card.json + its artifacts")],
) -> None:
    """Verify a bundle against its card and register it as a new, immutable version."""
    registry = open_configured_registry(ctx)
    card = registry.register(bundle)
    out.print(f"registered {card.ref} in {registry.location}", highlight=False)


@models_cli.command("approve")
def approve(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (or NAME@ALIAS) in the registry")],
    wait: WaitOption = 30,
) -> None:
    """Approve a registered version for deployment and experiments (operator; the control
    command `register`). Approving an approved version changes nothing and succeeds."""

    settings = load_settings(ctx)
    model = resolve_ref(settings, ref)
    state = deployment_state(settings)
    if state is not None and _approved(state, model):
        out.print(
            f"{model} is already approved (control revision {state['revision']}); nothing to do",
            highlight=False,
        )
        return
    publish_command(ctx, "register", {"model": model}, model.split("@")[0], wait,
                    accepted_text=f"{model} approved: it may be deployed or challenge the "
                    "champion")  # fmt: skip


def _approved(state: dict[str, Any], model: str) -> bool:
    """Whether the control state lets ``model`` be deployed (approved, or seeded, and not
    retired: approving a retired version is the fold's to refuse)."""
    return model in state.get("registered", ()) and model not in state.get("retired", ())


@models_cli.command("deploy")
def deploy(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="an approved NAME@VERSION (or NAME@ALIAS)")],
    wait: WaitOption = 30,
) -> None:
    """Make a version the champion on every worker, without a restart (admin)."""
    _publish_for_model(ctx, "deploy", ref, wait)


@models_cli.command("rollback")
def rollback(
    ctx: typer.Context,
    ref: Annotated[
        str | None, typer.Argument(help="a version to go back to (default: the previous champion)")
    ] = None,
    wait: WaitOption = 30,
) -> None:
    """Go back to the previous champion, or to a named approved version (admin)."""
    model = None if ref is None else exact_ref(ctx, ref)
    key = "rollback" if model is None else model.split("@")[0]
    publish_command(ctx, "rollback", {"model": model}, key, wait)


@models_cli.command("retire")
def retire(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION that may no longer be deployed")],
    wait: WaitOption = 30,
) -> None:
    """Forbid deploying a version again (it stays in the registry; admin)."""
    _publish_for_model(ctx, "retire", ref, wait)


def _publish_for_model(ctx: typer.Context, kind: str, ref: str, wait: float) -> None:
    """Publish a command whose one argument is the exact version ``ref`` resolves to
    (keyed by the model's name)."""
    model = exact_ref(ctx, ref)
    publish_command(ctx, kind, {"model": model}, model.split("@")[0], wait)


def headline_metrics(card: ModelCard) -> dict[str, float]:
    """Held-out figures of the deployed blend (else of the first model the card reports)."""
    if "blend" in card.metrics:
        return card.metrics["blend"]
    return next(iter(card.metrics.values()), {})


def card_view(card: ModelCard, aliases: list[str]) -> Group:
    """A model card for people: key facts, held-out metrics, artifacts with their sha256."""
    from models_store.registry.card import feature_set_digest

    data = card.training_data
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    rows = {
        "description": card.description or "-",
        "created": f"{card.created_at:%Y-%m-%d %H:%M:%S %Z}".strip(),
        "aliases": ", ".join(aliases) or "-",
        "target": f"{card.target}, {card.horizon_days} days ahead",
        "features": f"{len(card.features)} (digest {feature_set_digest(card.feature_names)[:12]})",
        "training data": (
            f"{data.events:,} events, {data.clients:,} clients, "
            f"{data.history_start:%Y-%m-%d} to {data.history_end:%Y-%m-%d}"
        ),
        "cutoffs": (
            f"{len(data.train_cutoffs)} train, {len(data.validation_cutoffs)} validation, "
            f"{len(data.test_cutoffs)} test; rows "
            + ", ".join(f"{split} {rows:,}" for split, rows in data.rows.items())
        ),
        "split": data.split + (f" ({data.split_reason})" if data.split_reason else ""),
        "fingerprint": data.fingerprint,
        "blend": ", ".join(f"{part} {weight:.2f}" for part, weight in card.blend.items()),
        "interval": _interval(card),
        "libraries": ", ".join(f"{lib} {version}" for lib, version in card.libraries.items()),
    }
    for component, parameters in card.hyperparameters.items():
        rows[f"{component} parameters"] = ", ".join(f"{k}={v}" for k, v in parameters.items())
    for key, value in rows.items():
        facts.add_row(key, value)

    metrics = Table(title="held-out metrics", title_justify="left")
    names = [m for m in METRIC_ORDER if any(m in f for f in card.metrics.values())]
    names += sorted({m for f in card.metrics.values() for m in f} - set(names))
    metrics.add_column("model")
    for metric in names:
        metrics.add_column(metric, justify="right")
    for model, figures in card.metrics.items():
        metrics.add_row(model, *(_figure(figures.get(metric)) for metric in names))

    artifacts = Table(title="artifacts", title_justify="left")
    for column in ("artifact", "path", "format", "bytes", "sha256"):
        artifacts.add_column(column, overflow="fold")
    for key, entry in card.artifacts.items():
        artifacts.add_row(key, entry.path, entry.format, f"{entry.bytes:,}", entry.sha256)
    return Group(Panel(facts, title=card.ref, title_align="left", expand=False), metrics, artifacts)


def _interval(card: ModelCard) -> str:
    intervals = card.intervals
    text = (
        f"{intervals.method}, {intervals.level:.0%} level, half-width {intervals.quantile:.4g} "
        f"({intervals.calibration_rows:,} calibration rows)"
    )
    if intervals.test_coverage is not None:
        text += f", test coverage {intervals.test_coverage:.1%}"
    return text


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
