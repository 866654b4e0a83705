"""The deployment state machine: the control log folded, command by command (pure).

Every worker reads the single partition of `profitability-control` from its start and
feeds each record to ``ControlFold.apply``. The fold depends only on the records (their
bytes and broker timestamps), the keyring and the validity window, so every worker
reaches the same state after the same offset. A command is checked in this order, and
the first failure rejects it with that reason:

``malformed`` (not a JSON object) · ``unsigned`` · ``unknown_principal`` ·
``bad_signature`` · ``malformed`` (signed, but not a valid command) · ``expired``
(issued more than ``max_age_s`` before the broker stored it, or too far after) ·
``replayed`` (its command id or nonce was seen before: commands are applied once) ·
``forbidden`` (the principal's role is too low) · ``stale`` (written against another
revision) · ``invalid`` (not applicable to the state, e.g. deploying a retired version).
``malformed`` also covers a record over ``MAX_COMMAND_BYTES`` or nested deeper than
``MAX_COMMAND_DEPTH``. ``internal``: a check or transition raised where none was
foreseen; the record is rejected with the error's message instead of stopping the fold.

A ``seed`` record (``models_store.control.commands.Seed``) is how a worker's ``PROFITSTREAM_MODEL``
enters the log: unsigned, it is accepted only while no champion was ever deployed, so
the log alone, never a worker's configuration, decides what is deployed.

The time check uses the record's broker timestamp, not the clock of the worker folding
it, so a worker that folds the log a year later decides exactly as one that folded it live.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from features.bounded_json import KIB, error_text, load_bounded
from models_store.control.commands import (
    REQUIRED_ROLE,
    ROLE_RANK,
    SEED_TYPE,
    Command,
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
from models_store.control.signing import Keyring, signature_matches
from models_store.experiments.assignment import next_share
from models_store.experiments.design import Experiment

MAX_COMMAND_BYTES = 256 * KIB  # a command is a few hundred bytes
MAX_COMMAND_DEPTH = 64  # a command nests 3 deep (command, args, guardrails)
INTERNAL_MESSAGE_CHARS = 300
DEFAULT_MAX_AGE_S = 300.0
DEFAULT_MAX_SKEW_S = 60.0
# The rejection message of an ``erase_client`` for a client erased before: the CLI tells
# an operator "already erased" by it.
ALREADY_ERASED = "the client was erased before"


class Rejection(StrEnum):
    """Why a command was not applied."""

    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    UNKNOWN_PRINCIPAL = "unknown_principal"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    FORBIDDEN = "forbidden"
    STALE = "stale"
    INVALID = "invalid"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Deployment:
    """What scores clients: the champion and, while one runs, the experiment.

    ``revision`` is the revision of the command that last changed it; it tells workers
    (and the partition rows of the client table) when to switch.
    """

    revision: int
    champion: str | None
    experiment: Experiment | None


@dataclass(frozen=True)
class ControlState:
    """The folded control log."""

    revision: int = 0  # accepted commands so far
    deployment: Deployment = Deployment(0, None, None)
    previous: tuple[str, ...] = ()  # earlier champions, most recent last (rollback)
    registered: frozenset[str] = frozenset()
    retired: frozenset[str] = frozenset()
    ended_experiments: frozenset[str] = frozenset()
    erased: frozenset[str] = frozenset()  # client ids


def client_digest(client_id: str) -> str:
    """How audit records name an erased client: sha256 of its id, hex."""
    return hashlib.sha256(client_id.encode()).hexdigest()


@dataclass(frozen=True)
class ControlRecord:
    """One message of the control topic."""

    offset: int
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class Outcome:
    """What the fold did with one record: the audit record's content."""

    offset: int
    record_time: float
    accepted: bool
    reason: Rejection | None
    message: str
    command: dict[str, Any] | None  # the parsed document, signature left out
    before: ControlState
    after: ControlState
    size: int = 0  # of the record's value, bytes
    sha256: str = ""  # of the record's value, hex


class _RejectedError(Exception):
    def __init__(self, reason: Rejection, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _parse_time(value: Any) -> float:
    text = str(value).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


@dataclass
class ControlFold:
    """The control log folded so far, and the replay memory (ids and nonces seen)."""

    keyring: Keyring
    max_age_s: float = DEFAULT_MAX_AGE_S
    max_skew_s: float = DEFAULT_MAX_SKEW_S
    state: ControlState = ControlState()
    next_offset: int = 0
    _command_ids: dict[str, int] = field(default_factory=dict)
    _nonces: dict[tuple[str, str], int] = field(default_factory=dict)

    def apply(self, record: ControlRecord) -> Outcome:
        """Fold one record; return what happened to it.

        Never raises: whatever goes wrong on a record rejects it (``internal`` when no
        check foresaw it), and the fold moves past it. A raise would stop every worker on
        the same record, again on each restart, since the log is re-read from its start.
        """
        before = self.state
        record_time = record.timestamp_ms / 1000
        size, digest = len(record.value), hashlib.sha256(record.value).hexdigest()
        document: dict[str, Any] | None = None
        try:
            document = self._document(record.value)
            after, message = self._decide(document, record.offset, record_time)
            state = _advanced(before, after)
        except Exception as exc:  # the same bytes fail the same way on every worker
            rejected = exc if isinstance(exc, _RejectedError) else _internal(exc)
            self.next_offset = record.offset + 1
            shown = None if document is None else _without_signature(document)
            return Outcome(
                record.offset,
                record_time,
                False,
                rejected.reason,
                rejected.message,
                shown,
                before,
                before,
                size,
                digest,
            )
        self.state = state
        self.next_offset = record.offset + 1
        return Outcome(
            record.offset,
            record_time,
            True,
            None,
            message,
            _without_signature(document),
            before,
            self.state,
            size,
            digest,
        )

    def _decide(
        self, document: dict[str, Any], offset: int, record_time: float
    ) -> tuple[ControlState, str]:
        """The state after ``document``, or ``_RejectedError`` with the first failed check."""
        if document.get("type") == SEED_TYPE:
            return self._seed(document, record_time)
        command = self._authentic(document)
        self._check_window(command.issued_at, record_time)
        self._check_replay(command)
        self._check_role(command)
        # Seen from here on: a replay of a command that failed on the state is refused too.
        self._command_ids[command.command_id] = offset
        self._nonces[(command.issued_by, command.nonce)] = offset
        self._check_revision(command)
        return self._transition(command, record_time)

    def _seed(self, document: dict[str, Any], record_time: float) -> tuple[ControlState, str]:
        """A worker's ``PROFITSTREAM_MODEL`` as the first champion of a log that never had one."""
        try:
            seed = Seed.model_validate(document)
        except ValidationError as exc:
            raise _RejectedError(Rejection.MALFORMED, _one_line(exc)) from None
        self._check_window(seed.issued_at, record_time)
        state, model = self.state, seed.args.model
        champion = state.deployment.champion
        if champion is not None or state.previous:
            # Unsigned: it may start a deployment, never change one.
            raise _invalid(
                f"the control log already deploys {champion}: a seed only starts an empty "
                "log; deploy another model with `profitstream models deploy`"
            )
        if model in state.retired:
            raise _invalid(f"{model} is retired")
        seeded = replace(
            state,
            deployment=Deployment(state.revision, model, None),
            registered=state.registered | {model},
        )
        return seeded, f"{model} is the first champion (seeded by {seed.issued_by})"

    # -- checks -------------------------------------------------------------------------

    @staticmethod
    def _document(value: bytes) -> dict[str, Any]:
        try:
            document = load_bounded(value, max_bytes=MAX_COMMAND_BYTES, max_depth=MAX_COMMAND_DEPTH)
        except ValueError as exc:
            raise _RejectedError(Rejection.MALFORMED, error_text(exc)) from None
        if not isinstance(document, dict):
            raise _RejectedError(Rejection.MALFORMED, "a command must be a JSON object")
        return document

    def _authentic(self, document: dict[str, Any]) -> Command:
        if not document.get("signature"):
            raise _RejectedError(Rejection.UNSIGNED, "the command carries no signature")
        issuer = document.get("issued_by")
        principal = self.keyring.get(issuer) if isinstance(issuer, str) else None
        if principal is None:
            raise _RejectedError(
                Rejection.UNKNOWN_PRINCIPAL, f"issued_by {issuer!r} is not a known principal"
            )
        if not signature_matches(document, principal.key):
            raise _RejectedError(
                Rejection.BAD_SIGNATURE, f"the signature does not match {issuer}'s key"
            )
        try:
            command = Command.model_validate(document)
            command.parsed_args()
        except ValidationError as exc:
            raise _RejectedError(Rejection.MALFORMED, _one_line(exc)) from None
        return command

    def _check_window(self, issued_at: datetime, record_time: float) -> None:
        age = record_time - issued_at.timestamp()
        if age > self.max_age_s:
            raise _RejectedError(
                Rejection.EXPIRED,
                f"issued {age:.0f}s before it reached the "
                f"broker; commands are valid for {self.max_age_s:.0f}s",
            )
        if age < -self.max_skew_s:
            raise _RejectedError(
                Rejection.EXPIRED,
                f"issued {-age:.0f}s after the broker stored it: the issuer's clock is wrong",
            )

    def _check_replay(self, command: Command) -> None:
        if command.command_id in self._command_ids:
            first = self._command_ids[command.command_id]
            raise _RejectedError(
                Rejection.REPLAYED,
                f"command {command.command_id} was already processed at offset {first}",
            )
        if (command.issued_by, command.nonce) in self._nonces:
            first = self._nonces[(command.issued_by, command.nonce)]
            raise _RejectedError(Rejection.REPLAYED, f"nonce already used at offset {first}")

    def _check_role(self, command: Command) -> None:
        principal = self.keyring.get(command.issued_by)
        assert principal is not None  # _authentic found it
        needed = REQUIRED_ROLE[command.type]
        if ROLE_RANK[principal.role] < ROLE_RANK[needed]:
            raise _RejectedError(
                Rejection.FORBIDDEN,
                f"{command.type.value} needs the role "
                f"{needed.value}; {principal.name} is {principal.role.value}",
            )

    def _check_revision(self, command: Command) -> None:
        expected = command.expected_revision
        if expected is not None and expected != self.state.revision:
            raise _RejectedError(
                Rejection.STALE,
                f"written against revision {expected}, the "
                f"state is at revision {self.state.revision}",
            )

    # -- transitions --------------------------------------------------------------------

    def _transition(self, command: Command, record_time: float) -> tuple[ControlState, str]:
        args = command.parsed_args()
        state = self.state
        after: tuple[ControlState, str] = _TRANSITIONS[type(args)](state, args, record_time)
        return after


def _advanced(before: ControlState, after: ControlState) -> ControlState:
    """The state after an accepted command: one revision on, and the deployment stamped
    with that revision when the command changed it."""
    state = replace(after, revision=before.revision + 1)
    if after.deployment != before.deployment:
        state = replace(state, deployment=replace(after.deployment, revision=state.revision))
    return state


def _internal(exc: Exception) -> _RejectedError:
    text = " ".join(str(exc).split())[:INTERNAL_MESSAGE_CHARS]
    return _RejectedError(
        Rejection.INTERNAL, f"the fold failed on it: {type(exc).__name__}: {text}"
    )


def _one_line(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'command'}: {error['msg']}"
        for error in exc.errors()
    )


def _without_signature(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "signature"}


def _invalid(message: str) -> _RejectedError:
    return _RejectedError(Rejection.INVALID, message)


def _deployable(state: ControlState, model: str) -> None:
    if model in state.retired:
        raise _invalid(f"{model} is retired")
    if model not in state.registered:
        raise _invalid(f"{model} is not approved: `profitstream models approve {model}` first")


def _no_experiment(state: ControlState, action: str) -> None:
    experiment = state.deployment.experiment
    if experiment is not None:
        raise _invalid(
            f"experiment {experiment.experiment_id} is running: stop or promote "
            f"it before you {action}"
        )


def _running(state: ControlState, experiment_id: str) -> Experiment:
    experiment = state.deployment.experiment
    if experiment is None or experiment.experiment_id != experiment_id:
        running = "none" if experiment is None else experiment.experiment_id
        raise _invalid(f"experiment {experiment_id} is not running (running: {running})")
    return experiment


def _champion_becomes(state: ControlState, model: str) -> ControlState:
    previous = state.previous
    if state.deployment.champion is not None:
        previous = (*previous, state.deployment.champion)
    return replace(state, deployment=Deployment(state.revision, model, None), previous=previous)


def _register(state: ControlState, args: RegisterArgs, _: float) -> tuple[ControlState, str]:
    if args.model in state.retired:
        raise _invalid(f"{args.model} is retired and cannot be registered again")
    if args.model in state.registered:
        raise _invalid(f"{args.model} is already registered")
    return replace(state, registered=state.registered | {args.model}), f"{args.model} registered"


def _deploy(state: ControlState, args: DeployArgs, _: float) -> tuple[ControlState, str]:
    _deployable(state, args.model)
    _no_experiment(state, "deploy")
    if args.model == state.deployment.champion:
        raise _invalid(f"{args.model} is already the champion")
    return _champion_becomes(state, args.model), f"{args.model} is the champion"


def _rollback(state: ControlState, args: RollbackArgs, _: float) -> tuple[ControlState, str]:
    _no_experiment(state, "roll back")
    if args.model is None:
        if not state.previous:
            raise _invalid("there is no previous champion to roll back to")
        target, previous = state.previous[-1], state.previous[:-1]
        if target in state.retired:
            raise _invalid(f"the previous champion {target} is retired; name a version")
        rolled = replace(
            state, deployment=Deployment(state.revision, target, None), previous=previous
        )
        return rolled, f"rolled back to {target}"
    _deployable(state, args.model)
    if args.model == state.deployment.champion:
        raise _invalid(f"{args.model} is already the champion")
    return _champion_becomes(state, args.model), f"rolled back to {args.model}"


def _retire(state: ControlState, args: RetireArgs, _: float) -> tuple[ControlState, str]:
    _deployable(state, args.model)
    experiment = state.deployment.experiment
    if args.model == state.deployment.champion:
        raise _invalid(f"{args.model} is the champion: deploy another version first")
    if experiment is not None and experiment.challenger == args.model:
        raise _invalid(f"{args.model} is the challenger of {experiment.experiment_id}")
    previous = tuple(model for model in state.previous if model != args.model)
    return replace(
        state, retired=state.retired | {args.model}, previous=previous
    ), f"{args.model} retired"


def _start(
    state: ControlState, args: ExperimentStartArgs, record_time: float
) -> tuple[ControlState, str]:
    _no_experiment(state, "start another")
    if args.experiment_id in state.ended_experiments:
        raise _invalid(f"experiment id {args.experiment_id} was used before: pick a new one")
    champion = state.deployment.champion
    if champion is None:
        raise _invalid("there is no champion to compare with: deploy one first")
    _deployable(state, args.challenger)
    if args.challenger == champion:
        raise _invalid(f"{args.challenger} is the champion itself")
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
        raise _invalid(f"experiment {args.experiment_id} runs in shadow: it has no split")
    share = args.share
    if share is None:
        share = next_share(experiment.schedule, experiment.share)
        if share is None:
            raise _invalid(f"experiment {args.experiment_id} is at the end of its schedule")
    if share == experiment.share:
        raise _invalid(f"experiment {args.experiment_id} already runs at {share:.0%}")
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
        raise _invalid(ALREADY_ERASED)
    return replace(state, erased=state.erased | {args.client_id}), (
        f"client {client_digest(args.client_id)[:16]} erased"
    )


_TRANSITIONS: dict[type[CommandArgs], Any] = {
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
