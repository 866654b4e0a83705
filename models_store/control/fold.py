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
A command that passes every check is applied by its one transition
(``models_store.control.transitions``), which raises ``invalid`` itself.

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
from typing import Any

from pydantic import ValidationError

from features.bounded_json import KIB, error_text, load_bounded
from models_store.control.commands import REQUIRED_ROLE, ROLE_RANK, SEED_TYPE, Command, Seed
from models_store.control.rejections import RejectedCommandError, Rejection, internal
from models_store.control.signing import Keyring, signature_matches
from models_store.control.state import ControlState
from models_store.control.transitions import seed, transition

MAX_COMMAND_BYTES = 256 * KIB  # a command is a few hundred bytes
MAX_COMMAND_DEPTH = 64  # a command nests 3 deep (command, args, guardrails)
DEFAULT_MAX_AGE_S = 300.0
DEFAULT_MAX_SKEW_S = 60.0


@dataclass(frozen=True)
class ControlRecord:
    """One message of the control topic."""

    offset: int
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class FoldResult:
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


@dataclass
class ControlFold:
    """The control log folded so far, and the replay memory (ids and nonces seen)."""

    keyring: Keyring
    max_age_s: float = DEFAULT_MAX_AGE_S
    max_skew_s: float = DEFAULT_MAX_SKEW_S
    state: ControlState = field(default_factory=ControlState)
    next_offset: int = 0
    _command_ids: dict[str, int] = field(default_factory=dict)
    _nonces: dict[tuple[str, str], int] = field(default_factory=dict)

    def apply(self, record: ControlRecord) -> FoldResult:
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
            rejected = exc if isinstance(exc, RejectedCommandError) else internal(exc)
            self.next_offset = record.offset + 1
            shown = None if document is None else _without_signature(document)
            return FoldResult(
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
        return FoldResult(
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
        """The state after ``document``, or ``RejectedCommandError`` with the first failed check."""
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
        return transition(self.state, command.parsed_args(), record_time)

    def _seed(self, document: dict[str, Any], record_time: float) -> tuple[ControlState, str]:
        """An unsigned ``seed`` record: well-formed and in its time window, then its transition."""
        try:
            record = Seed.model_validate(document)
        except ValidationError as exc:
            raise RejectedCommandError(Rejection.MALFORMED, _one_line(exc)) from None
        self._check_window(record.issued_at, record_time)
        return seed(self.state, record)

    # -- checks -------------------------------------------------------------------------

    @staticmethod
    def _document(value: bytes) -> dict[str, Any]:
        try:
            document = load_bounded(value, max_bytes=MAX_COMMAND_BYTES, max_depth=MAX_COMMAND_DEPTH)
        except ValueError as exc:
            raise RejectedCommandError(Rejection.MALFORMED, error_text(exc)) from None
        if not isinstance(document, dict):
            raise RejectedCommandError(Rejection.MALFORMED, "a command must be a JSON object")
        return document

    def _authentic(self, document: dict[str, Any]) -> Command:
        if not document.get("signature"):
            raise RejectedCommandError(Rejection.UNSIGNED, "the command carries no signature")
        issuer = document.get("issued_by")
        principal = self.keyring.get(issuer) if isinstance(issuer, str) else None
        if principal is None:
            raise RejectedCommandError(
                Rejection.UNKNOWN_PRINCIPAL, f"issued_by {issuer!r} is not a known principal"
            )
        if not signature_matches(document, principal.key):
            raise RejectedCommandError(
                Rejection.BAD_SIGNATURE, f"the signature does not match {issuer}'s key"
            )
        try:
            command = Command.model_validate(document)
            command.parsed_args()
        except ValidationError as exc:
            raise RejectedCommandError(Rejection.MALFORMED, _one_line(exc)) from None
        return command

    def _check_window(self, issued_at: datetime, record_time: float) -> None:
        age = record_time - issued_at.timestamp()
        if age > self.max_age_s:
            raise RejectedCommandError(
                Rejection.EXPIRED,
                f"issued {age:.0f}s before it reached the "
                f"broker; commands are valid for {self.max_age_s:.0f}s",
            )
        if age < -self.max_skew_s:
            raise RejectedCommandError(
                Rejection.EXPIRED,
                f"issued {-age:.0f}s after the broker stored it: the issuer's clock is wrong",
            )

    def _check_replay(self, command: Command) -> None:
        if command.command_id in self._command_ids:
            first = self._command_ids[command.command_id]
            raise RejectedCommandError(
                Rejection.REPLAYED,
                f"command {command.command_id} was already processed at offset {first}",
            )
        if (command.issued_by, command.nonce) in self._nonces:
            first = self._nonces[(command.issued_by, command.nonce)]
            raise RejectedCommandError(Rejection.REPLAYED, f"nonce already used at offset {first}")

    def _check_role(self, command: Command) -> None:
        principal = self.keyring.get(command.issued_by)
        assert principal is not None  # _authentic found it
        needed = REQUIRED_ROLE[command.type]
        if ROLE_RANK[principal.role] < ROLE_RANK[needed]:
            raise RejectedCommandError(
                Rejection.FORBIDDEN,
                f"{command.type.value} needs the role "
                f"{needed.value}; {principal.name} is {principal.role.value}",
            )

    def _check_revision(self, command: Command) -> None:
        expected = command.expected_revision
        if expected is not None and expected != self.state.revision:
            raise RejectedCommandError(
                Rejection.STALE,
                f"written against revision {expected}, the "
                f"state is at revision {self.state.revision}",
            )


def _advanced(before: ControlState, after: ControlState) -> ControlState:
    """The state after an accepted command: one revision on, and the deployment stamped
    with that revision when the command changed it."""
    state = replace(after, revision=before.revision + 1)
    if after.deployment != before.deployment:
        state = replace(state, deployment=replace(after.deployment, revision=state.revision))
    return state


def _one_line(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'command'}: {error['msg']}"
        for error in exc.errors()
    )


def _without_signature(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "signature"}
