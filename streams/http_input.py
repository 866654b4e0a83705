"""What the worker's HTTP views take from a request, checked at the edge (pure).

Every function here turns hostile input into a reason for a 4xx answer instead of letting
it reach code that raises: a number XGBoost turns into infinity, JSON nested deep enough
to exhaust the recursion limit, a header that is not ASCII. (``as_of`` in a query is read
by ``features.as_of``, the product's one as-of rule.)
"""

from __future__ import annotations

import hmac
import math
import re
from dataclasses import dataclass
from typing import Any

from features.bounded_json import KIB, error_text, load_bounded, size_text
from features.definitions import FEATURE_NAMES
from features.events import IDENTIFIER_PATTERN

# XGBoost reads features as float32 (±3.4e38; beyond it a value becomes infinite and the
# booster refuses the row). 1e15 is far inside, and far beyond any real amount or count.
MAX_FEATURE_MAGNITUDE = 1e15
# A what-if body holds one object of ~70 numbers (~5 KiB) and nests 2 deep.
MAX_BODY_BYTES = 64 * KIB
MAX_BODY_DEPTH = 8
MAX_CLIENT_ID_CHARS = 128

_CLIENT_ID = re.compile(IDENTIFIER_PATTERN)
_DIGITS = re.compile(r"[0-9]+")

FieldErrors = list[dict[str, Any]]


@dataclass(frozen=True)
class WhatIf:
    """A checked what-if request: the feature vector (NaN for undefined) and its client."""

    vector: list[float]
    client_id: str | None


def client_id_error(client_id: str) -> str | None:
    """Why ``client_id`` (from a path) names no client the contract admits, or None."""
    if _CLIENT_ID.match(client_id):
        return None
    return (
        f"not a client id: 1 to {MAX_CLIENT_ID_CHARS} of A-Z a-z 0-9 . _ : @ / -, "
        "starting with a letter or digit"
    )


def bearer_error(header: str | None, expected: bytes) -> str | None:
    """Why an ``Authorization`` header does not carry the token (``expected`` is
    ``Bearer <token>`` as bytes), or None when it does."""
    if header is None:
        return "missing bearer token"
    # aiohttp decodes header bytes as UTF-8 with surrogateescape, and str.encode() (or
    # compare_digest on str) raises on what is not ASCII: no bearer token is (RFC 6750).
    if not header.isascii():
        return "malformed Authorization header: not ASCII"
    if not hmac.compare_digest(header.encode(), expected):
        return "wrong bearer token"
    return None


def declared_size(content_length: str | None) -> int:
    """The body size a ``Content-Length`` header announces (0 when absent or malformed)."""
    if content_length is None or not _DIGITS.fullmatch(content_length):
        return 0
    digits = content_length.lstrip("0")
    # More digits than any real size: capped before int(), which raises over 4,300 digits.
    return int(digits or "0") if len(digits) <= 18 else 10**18


def body_size_error(size: int) -> str | None:
    """Why a what-if body of ``size`` bytes is too large, or None."""
    if size > MAX_BODY_BYTES:
        return f"{size_text(size)}; at most {size_text(MAX_BODY_BYTES)} allowed"
    return None


def read_what_if(raw: bytes) -> WhatIf | FieldErrors:
    """A what-if body, parsed as bounded, strict JSON (UTF-8, finite numbers, at most
    ``MAX_BODY_DEPTH`` deep, measured before parsing) and checked, or its field errors."""
    try:
        body = load_bounded(raw, max_bytes=MAX_BODY_BYTES, max_depth=MAX_BODY_DEPTH)
    except ValueError as exc:
        return [{"loc": ["body"], "msg": error_text(exc)}]
    vector, errors = check_feature_vector(body)
    if errors:
        return errors
    client_id = body.get("client_id")  # checked: a client id or None
    return WhatIf(vector, client_id)


def _value_error(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number or null"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be finite"
    # Compared as is (exact for int and float): float(10**400) would raise OverflowError.
    if not -MAX_FEATURE_MAGNITUDE <= value <= MAX_FEATURE_MAGNITUDE:
        return f"must be within ±{MAX_FEATURE_MAGNITUDE:.0e}"
    return None


def check_feature_vector(body: object) -> tuple[list[float], FieldErrors]:
    """The feature vector of a what-if request ``{"features": {name: number|null}}`` (and
    an optional ``client_id``), or the field errors: missing, unknown, not a number, not
    finite, out of range."""
    if not isinstance(body, dict) or not isinstance(body.get("features"), dict):
        return [], [{"loc": ["body", "features"], "msg": "an object of feature: number"}]
    given: dict[str, Any] = body["features"]
    errors = [{"loc": ["body", "features", name], "msg": "missing"}
              for name in FEATURE_NAMES if name not in given]  # fmt: skip
    errors += [{"loc": ["body", "features", name[:80]], "msg": "not a feature of this model"}
               for name in given if name not in FEATURE_NAMES]  # fmt: skip
    vector = []
    for name in FEATURE_NAMES:
        value = given.get(name)
        reason = None if value is None else _value_error(value)
        if reason is not None:
            errors.append({"loc": ["body", "features", name], "msg": reason})
        else:  # None is undefined, as the stream has it
            vector.append(math.nan if value is None else float(value))
    client_id = body.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or client_id_error(client_id)):
        errors.append({"loc": ["body", "client_id"], "msg": "a client id string or null"})
    extra = sorted(set(body) - {"features", "client_id"})
    errors += [{"loc": ["body", name[:80]], "msg": "unknown field"} for name in extra]
    return vector, errors
