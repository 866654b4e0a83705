"""What every `profitstream` command shares: consoles that do not wrap in a pipe, one JSON
document on stdout for ``--json``, one parser for the times a user types, and the settings
from the environment and the global flags."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from features.as_of import parse_as_of, parse_end
from streams.errors import ProfitstreamError
from streams.settings import Settings

# Outside a terminal nothing knows the reader's width: rich's default of 80 columns would
# fold table cells (paths, sha256) that scripts and logs want whole.
PIPE_WIDTH = 1000
TIME_EXAMPLE = "2026-11-29T09:00:00Z"


def output_width(is_terminal: bool, columns: str | None) -> int | None:
    """The console width: ``COLUMNS`` when set, the terminal's own (None) in a terminal,
    else ``PIPE_WIDTH``."""
    if columns and columns.isdigit():
        return int(columns)
    return None if is_terminal else PIPE_WIDTH


def make_console(stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr) that wraps only in a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    is_terminal = stream is not None and stream.isatty()
    return Console(stderr=stderr, width=output_width(is_terminal, os.environ.get("COLUMNS")))


def print_json(document: Any) -> None:
    """``document`` as one JSON document on stdout (plain text: no colour, no wrapping)."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def parse_instant(text: str, option: str) -> datetime:
    """An ISO-8601 time with a UTC offset (``Z``, ``+00:00``, ``+02:00``...), as UTC.

    A time without an offset is refused rather than guessed: the product prints every
    time with one, and a local time read as UTC would silently shift the answer.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ProfitstreamError(
            f"{option} {text!r} is not an ISO-8601 time; write e.g. {TIME_EXAMPLE}"
        ) from None
    if moment.utcoffset() is None:
        raise ProfitstreamError(
            f"{option} {text!r} has no UTC offset; add one, e.g. "
            f"{moment:%Y-%m-%dT%H:%M:%S}Z or {moment:%Y-%m-%dT%H:%M:%S}+00:00"
        )
    return moment.astimezone(UTC)


def parse_option_as_of(text: str, option: str) -> float:
    """An as-of instant by the product's one rule (``features.as_of``), or one clear error."""
    try:
        return parse_as_of(text)
    except ValueError as exc:
        raise ProfitstreamError(f"{option} {exc}") from None


def parse_option_end(text: str, option: str) -> float:
    """A history end (``features.as_of.parse_end``), or one clear error."""
    try:
        return parse_end(text)
    except ValueError as exc:
        raise ProfitstreamError(f"{option} {exc}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad setting by its environment variable."""
    parts = []
    for error in exc.errors():
        loc = "__".join(str(part) for part in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"PROFITSTREAM_{loc}: {message}")
    return "invalid setting " + "; ".join(parts)


def load_settings(ctx: typer.Context, **extra: Any) -> Settings:
    """Settings from the environment, overridden by the CLI flags that were given."""
    overrides = {k: v for k, v in {**(ctx.obj or {}), **extra}.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ProfitstreamError(describe_validation_error(exc)) from exc
