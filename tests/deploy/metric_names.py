"""The metric names PromQL in deploy/ may use: the workers' own, Prometheus's and recorded."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY

import streams.metrics  # noqa: F401  # registers the workers' metrics
from tests.services.prometheus_server import recording_rules

# Counted on a branch not merged yet (per feature, in the scoring stage); named exactly so.
ELSEWHERE = {"profitstream_feature_values_outside_training_total"}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
             "gauge": ("",), "info": ("_info",)}  # fmt: skip
_NAME = re.compile(r"\b(profitstream[_:][a-z0-9_:]+|up)\b")


def known_names() -> set[str]:
    """Every series name a worker exposes, every recording rule's, and ``up``."""
    names = {"up", *ELSEWHERE, *(rule["record"] for rule in recording_rules())}
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (ours and ``up``)."""
    return set(_NAME.findall(expr))
