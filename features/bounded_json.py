"""JSON from untrusted bytes, within bounds on size and nesting depth (pure).

``json.loads`` recurses once per nested array or object: a message of 100,000 opening
brackets raises ``RecursionError``, which is not a ``ValueError`` and so escapes the
handlers written for bad JSON. ``check_bounds`` measures the depth first, with a linear
scan that does not recurse (strings are skipped, escapes included), so a document that
is too large or too deep is refused with a one-line ``JsonBoundsError`` before any parser
sees it.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

KIB = 1024
MIB = 1024 * KIB


class JsonBoundsError(ValueError):
    """A document larger or more deeply nested than allowed."""


# A JSON string, escapes included. An unterminated one runs to the end of the input, so
# each quote is matched once and the scan stays linear on any bytes.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in _BRACKETS)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nesting_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in ``raw`` (0 for a scalar), brackets inside
    strings ignored. Exact for valid JSON; for anything else, what a parser reading left
    to right could reach at most."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def size_text(size: int) -> str:
    """A byte count for a message: ``512 bytes``, ``16.0 KiB``, ``2.1 MiB``."""
    if size < KIB:
        return f"{size} bytes"
    if size < MIB:
        return f"{size / KIB:.1f} KiB"
    return f"{size / MIB:.1f} MiB"


def check_bounds(raw: bytes, *, max_bytes: int, max_depth: int) -> None:
    """Raise ``JsonBoundsError`` if ``raw`` is over ``max_bytes`` or nests deeper than
    ``max_depth``."""
    if len(raw) > max_bytes:
        raise JsonBoundsError(f"{size_text(len(raw))}; at most {size_text(max_bytes)} allowed")
    # Every nesting level opens a bracket: with few of them there is nothing to measure.
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise JsonBoundsError(f"nested {depth} deep; at most {max_depth} allowed")


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:32]} is out of range for a number")
    return value


def load_bounded(raw: bytes, *, max_bytes: int, max_depth: int) -> Any:
    """``raw`` decoded as strict JSON (UTF-8, finite numbers only) within the bounds.

    Raises ``JsonBoundsError`` when out of bounds, another ``ValueError`` when not JSON
    (``json.JSONDecodeError``, ``UnicodeDecodeError``, NaN or an infinite number).
    """
    check_bounds(raw, max_bytes=max_bytes, max_depth=max_depth)
    text = raw.decode("utf-8")  # strict: json.loads would also guess UTF-16 or UTF-32
    return json.loads(text, parse_constant=_constant, parse_float=_finite)


def error_text(exc: ValueError) -> str:
    """A ``load_bounded`` error on one short line."""
    if isinstance(exc, JsonBoundsError):
        return str(exc)
    return f"not JSON: {' '.join(str(exc).split())[:200]}"
