"""Prometheus metrics of the stream path, served on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_CONSUMED = Counter(
    "profitstream_events_consumed_total", "Messages read from an input topic", ["topic"]
)
DEAD_LETTERS = Counter(
    "profitstream_dead_letters_total", "Messages sent to the DLQ", ["source_topic"]
)
