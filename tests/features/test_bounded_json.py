"""The bounded JSON loader: the depth scan is exact, and nothing but ValueError escapes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.bounded_json import (
    MIB,
    JsonBoundsError,
    check_bounds,
    error_text,
    load_bounded,
    nesting_depth,
)

# Characters that confuse a naive bracket counter, among ordinary ones.
_TRICKY = st.sampled_from('[]{}"\\/,: \n\t\u2028é€𝄞')
_TEXT = st.text(alphabet=_TRICKY | st.characters(exclude_categories=["Cs"]), max_size=12)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
# Timing depends on the (shared, 2-core) machine more than on the code.
_NO_DEADLINE = settings(deadline=None)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _encoded(value: Any, ascii_only: bool, indent: int | None) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()


@_NO_DEADLINE
@given(_DOCUMENTS, st.booleans(), st.sampled_from([None, 0, 2]))
def test_the_scan_measures_the_true_depth_of_any_json(
    value: Any, ascii_only: bool, indent: int | None
) -> None:
    raw = _encoded(value, ascii_only, indent)
    assert nesting_depth(raw) == _depth(value)
    assert load_bounded(raw, max_bytes=MIB, max_depth=64) == value


@_NO_DEADLINE
@given(_DOCUMENTS, st.integers(0, 6))
def test_a_document_is_refused_exactly_when_deeper_than_allowed(value: Any, limit: int) -> None:
    raw = _encoded(value, True, None)
    if _depth(value) > limit:
        with pytest.raises(JsonBoundsError, match=f"nested {_depth(value)} deep; at most"):
            check_bounds(raw, max_bytes=MIB, max_depth=limit)
    else:
        check_bounds(raw, max_bytes=MIB, max_depth=limit)


@_NO_DEADLINE
@given(st.binary(max_size=300) | st.text(alphabet=_TRICKY | st.sampled_from("0a-e."),
                                          max_size=300).map(str.encode))  # fmt: skip
def test_arbitrary_bytes_raise_nothing_but_value_error(raw: bytes) -> None:
    try:
        value = load_bounded(raw, max_bytes=MIB, max_depth=8)
    except ValueError as exc:
        error = error_text(exc)
    else:
        # Whatever parses was measured right, so the parser never went deeper than allowed.
        assert nesting_depth(raw) == _depth(value) <= 8
        return
    assert "\n" not in error


@settings(max_examples=20, deadline=None)  # up to 600 kB of input each
@given(st.integers(65, 300_000), st.sampled_from([b"[", b'{"a":']))
def test_deep_input_is_refused_without_recursion(depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    raw = opener * depth + b"1" + closer * depth
    with pytest.raises(JsonBoundsError, match=f"^nested {depth} deep; at most 64 allowed$"):
        load_bounded(raw, max_bytes=4 * MIB, max_depth=64)


def test_the_100k_deep_message_of_the_finding_is_refused_fast() -> None:
    raw = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    started = time.perf_counter()
    with pytest.raises(JsonBoundsError, match=r"^nested 100001 deep; at most 64 allowed$"):
        load_bounded(raw, max_bytes=MIB, max_depth=64)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "raw",
    [
        b'"' + b'\\"' * 300_000,  # one unterminated string of escaped quotes
        b'"\\' * 300_000,
        b"[" + b'"[",' * 200_000 + b"1]",  # brackets inside strings only
    ],
)
def test_the_scan_stays_linear_on_hostile_strings(raw: bytes) -> None:
    started = time.perf_counter()
    assert nesting_depth(raw) <= 1
    assert time.perf_counter() - started < 1.0


def test_brackets_in_strings_and_escapes_are_not_nesting() -> None:
    assert nesting_depth(b'["\\"[[[", "\\\\", ["]"]]') == 2
    assert nesting_depth(b'"unterminated [[[') == 0
    assert nesting_depth(b"42") == 0


def test_size_is_checked_first_with_a_one_line_message() -> None:
    with pytest.raises(JsonBoundsError, match=r"^2\.1 MiB; at most 1\.0 MiB allowed$"):
        load_bounded(b" " * int(2.1 * MIB), max_bytes=MIB, max_depth=64)
    with pytest.raises(JsonBoundsError, match=r"^300 bytes; at most 200 bytes allowed$"):
        check_bounds(b"1" * 300, max_bytes=200, max_depth=64)


@pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"[1e999]", b"-1e400"])
def test_non_finite_numbers_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"not a JSON number|out of range"):
        load_bounded(raw, max_bytes=MIB, max_depth=64)


def test_only_utf8_is_json() -> None:
    utf16 = "[1]".encode("utf-16")  # json.loads would guess the encoding
    with pytest.raises(UnicodeDecodeError):
        load_bounded(utf16, max_bytes=MIB, max_depth=64)
    assert error_text(ValueError("bad\n  thing")) == "not JSON: bad thing"
