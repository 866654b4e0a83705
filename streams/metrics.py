"""Prometheus metrics of the stream path, served on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_CONSUMED = Counter(
    "profitstream_events_consumed_total", "Messages read from an input topic", ["topic"]
)
DEAD_LETTERS = Counter(
    "profitstream_dead_letters_total", "Messages sent to the DLQ", ["source_topic", "reason"]
)
EVENT_OUTCOMES = Counter(
    "profitstream_event_outcomes_total",
    "Valid events by what applying them did (applied, duplicate, late, replayed)",
    ["outcome"],
)
BATCH_EVENTS = Histogram(
    "profitstream_batch_events",
    "Events per processed batch",
    buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
)
BATCH_SECONDS = Histogram(
    "profitstream_batch_seconds",
    "Time to process one batch, Redis mirror included",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CLIENTS_MIRRORED = Counter(
    "profitstream_clients_mirrored_total", "Client hashes written to the online store"
)
OFFSETS_REREAD = Counter(
    "profitstream_offsets_reread_total",
    "Input offsets the stream skipped and the worker read again itself",
    ["topic"],
)
