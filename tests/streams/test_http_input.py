"""The HTTP edge checks (no worker): every hostile input becomes a reason, never an
exception, and whatever passes is something the model and ``datetime`` take."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.definitions import FEATURE_NAMES
from streams.http_input import (
    MAX_BODY_BYTES,
    MAX_FEATURE_MAGNITUDE,
    WhatIf,
    bearer_error,
    body_size_error,
    client_id_error,
    declared_size,
    read_what_if,
)

EXPECTED = b"Bearer s3cret"
# Timing depends on the (shared, 2-core) machine more than on the code.
_NO_DEADLINE = settings(deadline=None)
_ANY_TEXT = st.text(st.characters(codec=None), max_size=60)  # lone surrogates included


def _features(value: object) -> bytes:
    return json.dumps({"features": dict.fromkeys(FEATURE_NAMES, value)}).encode()


def _messages(result: WhatIf | list[dict[str, object]]) -> set[object]:
    assert isinstance(result, list), result
    return {error["msg"] for error in result}


@pytest.mark.parametrize("value", [1e308, -1e308, 3.5e38, MAX_FEATURE_MAGNITUDE * 1.01])
def test_feature_values_beyond_the_bound_are_refused(value: float) -> None:
    assert _messages(read_what_if(_features(value))) == {"must be within ±1e+15"}


def test_a_huge_integer_is_refused_without_converting_it() -> None:
    raw = _features(None).replace(b'"revenue_30d": null', b'"revenue_30d": 1' + b"0" * 400)
    assert read_what_if(raw) == [
        {"loc": ["body", "features", "revenue_30d"], "msg": "must be within ±1e+15"}
    ]


def test_deep_nesting_and_oversized_bodies_are_refused_before_parsing() -> None:
    deep = b'{"features": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    assert _messages(read_what_if(deep)) == {"nested 30001 deep; at most 8 allowed"}
    # 50,000 deep is 98 KiB: refused for its size (413 on the wire) before its depth.
    deeper = b"[" * 50_000 + b"]" * 50_000
    assert body_size_error(len(deeper)) == "97.7 KiB; at most 64.0 KiB allowed"
    assert body_size_error(MAX_BODY_BYTES) is None
    assert _messages(read_what_if(b'{"features": NaN}')) == {"not JSON: NaN is not a JSON number"}


def test_a_valid_vector_passes_with_null_as_undefined() -> None:
    vector = dict.fromkeys(FEATURE_NAMES, MAX_FEATURE_MAGNITUDE)
    vector[FEATURE_NAMES[0]] = None  # type: ignore[assignment]
    result = read_what_if(json.dumps({"features": vector, "client_id": "c-1"}).encode())
    assert isinstance(result, WhatIf)
    assert result.client_id == "c-1"
    assert math.isnan(result.vector[0])
    assert result.vector[1:] == [MAX_FEATURE_MAGNITUDE] * (len(FEATURE_NAMES) - 1)


def test_a_non_ascii_authorization_header_is_refused() -> None:
    assert bearer_error("Bearer s3cret", EXPECTED) is None
    assert bearer_error(None, EXPECTED) == "missing bearer token"
    assert bearer_error("Bearer wrong", EXPECTED) == "wrong bearer token"
    # How aiohttp hands over the bytes b"Bearer \xff\xfe" and b"Bearer \xc3\xa9".
    for header in ("Bearer \udcff\udcfe", "Bearer é"):
        assert bearer_error(header, EXPECTED) == "malformed Authorization header: not ASCII"


_VALUES = st.one_of(
    st.none(), st.booleans(), st.floats(), st.integers(), st.integers(min_value=10**300),
    st.text(max_size=5), st.lists(st.integers(), max_size=3),
)  # fmt: skip


@_NO_DEADLINE
@given(st.dictionaries(st.sampled_from(FEATURE_NAMES), _VALUES), st.booleans(), _VALUES)
def test_any_body_is_a_finite_bounded_vector_or_field_errors(
    features: dict[str, object], complete: bool, client_id: object
) -> None:
    given_features = {**dict.fromkeys(FEATURE_NAMES, 1.0), **features} if complete else features
    raw = json.dumps({"features": given_features, "client_id": client_id}).encode()
    result = read_what_if(raw)
    if isinstance(result, WhatIf):
        vector = np.array(result.vector)
        assert np.all(np.isnan(vector) | (np.abs(vector) <= MAX_FEATURE_MAGNITUDE))
        assert np.all(np.isnan(vector) | np.isfinite(vector.astype(np.float32)))
    else:
        assert result
        assert all(error["msg"] for error in result)


@_NO_DEADLINE
@given(st.binary(max_size=300))
def test_any_bytes_are_a_what_if_or_field_errors(raw: bytes) -> None:
    result = read_what_if(raw)
    assert isinstance(result, WhatIf) or result


@_NO_DEADLINE
@given(_ANY_TEXT)
def test_headers_and_path_segments_never_raise(text: str) -> None:
    assert bearer_error(text, EXPECTED) is not None
    assert declared_size(text) >= 0
    if client_id_error(text) is None:
        assert text.isascii()
        assert 1 <= len(text) <= 128
