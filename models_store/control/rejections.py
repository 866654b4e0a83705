"""Why the fold refuses a control record, and the error that carries the reason (pure).

The checks and the transitions raise ``RejectedCommandError``; ``ControlFold.apply`` turns it
into a rejected ``FoldResult``, so a refused record never stops the fold.
"""

from __future__ import annotations

from enum import StrEnum

# An unforeseen error's text is shown in the audit record: bounded, since it may quote
# whatever the record carried.
INTERNAL_MESSAGE_CHARS = 300
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


class RejectedCommandError(Exception):
    """A control record the fold refuses: the first failed check's reason and message."""

    def __init__(self, reason: Rejection, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def invalid(message: str) -> RejectedCommandError:
    """A command that does not apply to the state (e.g. deploying a retired version)."""
    return RejectedCommandError(Rejection.INVALID, message)


def internal(exc: Exception) -> RejectedCommandError:
    """A record a check or transition raised on where none was foreseen."""
    text = " ".join(str(exc).split())[:INTERNAL_MESSAGE_CHARS]
    return RejectedCommandError(
        Rejection.INTERNAL, f"the fold failed on it: {type(exc).__name__}: {text}"
    )
