"""How features leave the stream: the Redis hash fields of a client, and back."""

from __future__ import annotations

import math
from collections.abc import Mapping

from features.definitions import FEATURE_NAMES, compute_features
from features.state import ClientState

META_FIELDS = ("as_of", "version", "last_event_time")


def _text(value: float) -> str:
    # repr() round-trips a float exactly; NaN is written "nan".
    return "nan" if math.isnan(value) else repr(value)


def online_fields(state: ClientState, vector: list[float] | None = None) -> dict[str, str]:
    """The hash of a client: every feature as of its latest event, plus when and which version.

    ``vector``: the features as of the latest event, when the caller has them already.
    """
    watermark = state.watermark
    if watermark is None:
        raise ValueError(f"client {state.client_id} has no applied event")
    if vector is None:
        vector = compute_features(state, watermark)
    fields = {name: _text(value) for name, value in zip(FEATURE_NAMES, vector, strict=True)}
    fields["as_of"] = repr(watermark)
    fields["version"] = str(state.version)
    fields["last_event_time"] = repr(watermark)
    return fields


def features_from_fields(fields: Mapping[str, str]) -> tuple[float, list[float]]:
    """(as_of, feature vector) from a client's hash as ``online_fields`` wrote it."""
    return float(fields["as_of"]), [float(fields[name]) for name in FEATURE_NAMES]
