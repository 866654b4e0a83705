"""What each accepted command does to the control state: one pure function per type.

A transition takes the state, the command's parsed args and the record's broker time, and
returns the next state with a one-line message for the audit trail, or raises
``RejectedCommandError`` (``invalid``) when the command does not apply to the state. The fold
(``models_store.control.fold``) runs its checks first, then exactly one transition, and
stamps the revision itself (``revision`` is left as the transition found it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from models_store.control.commands import (
    CommandArgs,
    DeployArgs,
    EraseClientArgs,
    ExperimentPromoteArgs,
    ExperimentRampArgs,
    ExperimentStartArgs,
    ExperimentStopArgs,
    RegisterArgs,
    RetireArgs,
    RollbackArgs,
    Seed,
)
from models_store.control.rejections import ALREADY_ERASED, invalid
from models_store.control.state import ControlState, Deployment, client_digest
from models_store.experiments.assignment import next_share
from models_store.experiments.design import Experiment

# Any: each transition takes its own args type, and the table keys it by that type.
Transition = Callable[[ControlState, Any, float], tuple[ControlState, str]]


def seed(state: ControlState, record: Seed) -> tuple[ControlState, str]:
    """A worker's ``PROFITSTREAM_MODEL`` as the first champion of a log that never had one."""
    model = record.args.model
    champion = state.deployment.champion
    if champion is not None or state.previous:
        # Unsigned: it may start a deployment, never change one.
        raise invalid(
            f"the control log already deploys {champion}: a seed only starts an empty "
            "log; deploy another model with `profitstream models deploy`"
        )
    if model in state.retired:
        raise invalid(f"{model} is retired")
    seeded = replace(
        state,
        deployment=Deployment(state.revision, model, None),
        registered=state.registered | {model},
    )
    return seeded, f"{model} is the first champion (seeded by {record.issued_by})"


def transition(
    state: ControlState, args: CommandArgs, record_time: float
) -> tuple[ControlState, str]:
    """The state after a signed command with ``args``, by its type's transition."""
    return TRANSITIONS[type(args)](state, args, record_time)


def _deployable(state: ControlState, model: str) -> None:
    if model in state.retired:
        raise invalid(f"{model} is retired")
    if model not in state.registered:
        raise invalid(f"{model} is not approved: `profitstream models approve {model}` first")


def _no_experiment(state: ControlState, action: str) -> None:
    experiment = state.deployment.experiment
    if experiment is not None:
        raise invalid(
            f"experiment {experiment.experiment_id} is running: stop or promote "
            f"it before you {action}"
        )


def _running(state: ControlState, experiment_id: str) -> Experiment:
    experiment = state.deployment.experiment
    if experiment is None or experiment.experiment_id != experiment_id:
        running = "none" if experiment is None else experiment.experiment_id
        raise invalid(f"experiment {experiment_id} is not running (running: {running})")
    return experiment


def _champion_becomes(state: ControlState, model: str) -> ControlState:
    previous = state.previous
    if state.deployment.champion is not None:
        previous = (*previous, state.deployment.champion)
    return replace(state, deployment=Deployment(state.revision, model, None), previous=previous)


def _register(state: ControlState, args: RegisterArgs, _: float) -> tuple[ControlState, str]:
    if args.model in state.retired:
        raise invalid(f"{args.model} is retired and cannot be registered again")
    if args.model in state.registered:
        raise invalid(f"{args.model} is already registered")
    return replace(state, registered=state.registered | {args.model}), f"{args.model} registered"


def _deploy(state: ControlState, args: DeployArgs, _: float) -> tuple[ControlState, str]:
    _deployable(state, args.model)
    _no_experiment(state, "deploy")
    if args.model == state.deployment.champion:
        raise invalid(f"{args.model} is already the champion")
    return _champion_becomes(state, args.model), f"{args.model} is the champion"


def _rollback(state: ControlState, args: RollbackArgs, _: float) -> tuple[ControlState, str]:
    _no_experiment(state, "roll back")
    if args.model is None:
        if not state.previous:
            raise invalid("there is no previous champion to roll back to")
        target, previous = state.previous[-1], state.previous[:-1]
        if target in state.retired:
            raise invalid(f"the previous champion {target} is retired; name a version")
        rolled = replace(
            state, deployment=Deployment(state.revision, target, None), previous=previous
        )
        return rolled, f"rolled back to {target}"
    _deployable(state, args.model)
    if args.model == state.deployment.champion:
        raise invalid(f"{args.model} is already the champion")
    return _champion_becomes(state, args.model), f"rolled back to {args.model}"


def _retire(state: ControlState, args: RetireArgs, _: float) -> tuple[ControlState, str]:
    _deployable(state, args.model)
    experiment = state.deployment.experiment
    if args.model == state.deployment.champion:
        raise invalid(f"{args.model} is the champion: deploy another version first")
    if experiment is not None and experiment.challenger == args.model:
        raise invalid(f"{args.model} is the challenger of {experiment.experiment_id}")
    previous = tuple(model for model in state.previous if model != args.model)
    return replace(
        state, retired=state.retired | {args.model}, previous=previous
    ), f"{args.model} retired"


def _start(
    state: ControlState, args: ExperimentStartArgs, record_time: float
) -> tuple[ControlState, str]:
    _no_experiment(state, "start another")
    if args.experiment_id in state.ended_experiments:
        raise invalid(f"experiment id {args.experiment_id} was used before: pick a new one")
    champion = state.deployment.champion
    if champion is None:
        raise invalid("there is no champion to compare with: deploy one first")
    _deployable(state, args.challenger)
    if args.challenger == champion:
        raise invalid(f"{args.challenger} is the champion itself")
    share = args.share
    if args.mode == "shadow":
        share = 0.0  # the shadow scores everyone and emits nothing on the main topic
    elif args.schedule and "share" not in args.model_fields_set:
        share = args.schedule[0]
    experiment = Experiment(
        experiment_id=args.experiment_id,
        challenger=args.challenger,
        mode=args.mode,
        share=share,
        schedule=args.schedule,
        salt=args.salt,
        metric=args.metric,
        min_samples=args.min_samples,
        alpha=args.alpha,
        max_duration_days=args.max_duration_days,
        auto_promote=args.auto_promote,
        guardrails=args.guardrails.model_dump(),
        started_at=record_time,
        started_revision=state.revision + 1,
    )
    deployment = Deployment(state.revision, champion, experiment)
    what = "in shadow" if args.mode == "shadow" else f"for {share:.0%} of clients"
    return replace(state, deployment=deployment), (
        f"experiment {args.experiment_id} started: {args.challenger} {what}"
    )


def _ramp(state: ControlState, args: ExperimentRampArgs, _: float) -> tuple[ControlState, str]:
    experiment = _running(state, args.experiment_id)
    if experiment.mode == "shadow":
        raise invalid(f"experiment {args.experiment_id} runs in shadow: it has no split")
    share = args.share
    if share is None:
        share = next_share(experiment.schedule, experiment.share)
        if share is None:
            raise invalid(f"experiment {args.experiment_id} is at the end of its schedule")
    if share == experiment.share:
        raise invalid(f"experiment {args.experiment_id} already runs at {share:.0%}")
    ramped = replace(state.deployment, experiment=replace(experiment, share=share))
    return replace(state, deployment=ramped), (
        f"experiment {args.experiment_id}: {experiment.share:.0%} -> {share:.0%}"
    )


def _stop(state: ControlState, args: ExperimentStopArgs, _: float) -> tuple[ControlState, str]:
    experiment = _running(state, args.experiment_id)
    stopped = replace(
        state,
        deployment=replace(state.deployment, experiment=None),
        ended_experiments=state.ended_experiments | {experiment.experiment_id},
    )
    return stopped, f"experiment {args.experiment_id} stopped: {args.reason}"


def _promote(
    state: ControlState, args: ExperimentPromoteArgs, _: float
) -> tuple[ControlState, str]:
    experiment = _running(state, args.experiment_id)
    _deployable(state, experiment.challenger)
    promoted = _champion_becomes(state, experiment.challenger)
    promoted = replace(
        promoted, ended_experiments=state.ended_experiments | {experiment.experiment_id}
    )
    return promoted, (
        f"experiment {args.experiment_id}: {experiment.challenger} promoted ({args.reason})"
    )


def _erase(state: ControlState, args: EraseClientArgs, _: float) -> tuple[ControlState, str]:
    if args.client_id in state.erased:
        raise invalid(ALREADY_ERASED)
    return replace(state, erased=state.erased | {args.client_id}), (
        f"client {client_digest(args.client_id)[:16]} erased"
    )


# The command types' args classes are the keys (``Command.parsed_args`` picks the class by
# ``type``), so the dispatch reads the args the transition is given.
TRANSITIONS: dict[type[CommandArgs], Transition] = {
    RegisterArgs: _register,
    DeployArgs: _deploy,
    RollbackArgs: _rollback,
    RetireArgs: _retire,
    ExperimentStartArgs: _start,
    ExperimentRampArgs: _ramp,
    ExperimentStopArgs: _stop,
    ExperimentPromoteArgs: _promote,
    EraseClientArgs: _erase,
}
