"""The worker's health signals, in one object: written by the input reader (assignment,
offsets, broker probe, holds), the Redis store wrapper and the mirror keeper; read by
``/ready``, ``/health`` and ``/metrics``.

Times are ``time.monotonic()`` seconds. The judgements (``problems``, ``stalled_s``) are
pure functions of the fields and the time given, so they are unit-tested without a worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, get_args

TP = tuple[str, int]  # (topic, partition) of an input partition
# Whether Redis holds this worker's mirror: "unchecked" until its partition markers were
# looked at (start, every reconnect), "rebuild" while it must be (or is being) rebuilt.
MirrorState = Literal["unchecked", "ok", "rebuild"]
# Why the reader holds its input, as a bounded set (the metric's label): the partitions are
# moving or recovering, a deployment is loading, the Redis mirror is being rebuilt.
HoldKind = Literal["rebalance", "table_recovery", "deployment", "redis_mirror_rebuild"]
# Every reason input does not move on, as ``profitstream_input_held_reason`` reports it: a
# hold of the reader, or an outage that makes batches wait (Redis) or fetch nothing (broker).
HELD_REASONS: tuple[str, ...] = (*get_args(HoldKind), "redis_outage", "broker_outage")
# Input is "waiting" when the broker probe saw lag this recently; older figures say nothing.
LAG_FRESH_S = 30.0
# The batch loop is stalled when input waited this long without a batch and without an
# excuse (a hold or an outage readiness reports): generous, a batch takes seconds at most.
STALLED_AFTER_S = 120.0


@dataclass
class WorkerHealth:
    """What the worker knows about its own ability to do its job."""

    broker_error: str | None = None  # the last broker probe's failure; None: it answered
    redis_error: str | None = None  # the last Redis call's failure; None: it answered
    mirror: MirrorState = "unchecked"
    held: str | None = None  # why the assigned input partitions are not read, if they are not
    held_kind: HoldKind | None = None  # ``held``'s kind
    # Assigned input partitions -> the next offset the worker will process.
    next_offsets: dict[TP, int] = field(default_factory=dict)
    end_offsets: dict[TP, int] = field(default_factory=dict)  # as of ``lag_at``
    lag_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    last_batch_at: float | None = None
    # The last time the worker had a reason not to process input (held, an outage) or
    # nothing to process (no lag): the stall clock starts after the latest of these.
    excused_at: float = field(default_factory=time.monotonic)

    # --- writers -------------------------------------------------------------------------

    def broker_failed(self, error: str) -> bool:
        """Record a failed broker probe; True when the broker was reachable before."""
        was_up = self.broker_error is None
        self.broker_error = error
        self.excused_at = time.monotonic()
        return was_up

    def broker_answered(self) -> bool:
        """Record a successful broker probe; True when it was unreachable before."""
        was_down = self.broker_error is not None
        self.broker_error = None
        if was_down:
            self.excused_at = time.monotonic()
        return was_down

    def redis_failed(self, error: str) -> bool:
        """Record a failed Redis call; True when Redis was reachable before."""
        was_up = self.redis_error is None
        self.redis_error = error
        self.excused_at = time.monotonic()
        return was_up

    def redis_answered(self) -> bool:
        """Record a successful Redis call; True when Redis was unreachable before (the
        mirror is then unchecked: Redis may have come back empty)."""
        was_down = self.redis_error is not None
        self.redis_error = None
        if was_down:
            self.mirror = "unchecked"
            self.excused_at = time.monotonic()
        return was_down

    def hold(self, kind: HoldKind, reason: str) -> None:
        """The assigned input partitions are not read, for ``reason`` (of ``kind``)."""
        self.held = reason
        self.held_kind = kind
        self.excused_at = time.monotonic()

    def release(self) -> None:
        """The assigned input partitions are read."""
        self.held = None
        self.held_kind = None

    def assign(self, next_offsets: dict[TP, int]) -> None:
        """A new set of assigned input partitions, with where each is read from."""
        self.next_offsets = dict(next_offsets)
        self.end_offsets = {tp: end for tp, end in self.end_offsets.items() if tp in next_offsets}

    def advance(self, next_offsets: dict[TP, int], *, batch: bool) -> None:
        """The reader moved on: ``next_offsets`` of its partitions after a poll, which
        brought a batch (processed, acknowledged) or nothing."""
        self.next_offsets.update(
            (tp, offset) for tp, offset in next_offsets.items() if tp in self.next_offsets
        )
        if batch:
            self.last_batch_at = time.monotonic()

    def probed(self, end_offsets: dict[TP, int]) -> None:
        """The broker's end offsets of the assigned partitions, just fetched."""
        self.end_offsets = dict(end_offsets)
        self.lag_at = time.monotonic()
        if sum(self.lags().values()) == 0:
            self.excused_at = self.lag_at  # nothing waits: a quiet worker is not stalled

    # --- judgements (pure) ---------------------------------------------------------------

    def lags(self) -> dict[TP, int]:
        """Records waiting per assigned partition: end offset - next offset, never negative
        (Tansu under-reports end offsets, so its lag can only be too low)."""
        return {
            tp: max(0, self.end_offsets[tp] - offset)
            for tp, offset in self.next_offsets.items()
            if tp in self.end_offsets
        }

    def problems(self) -> list[str]:
        """Why the worker cannot do its job now, beside table recovery and the models."""
        reasons = []
        if self.broker_error is not None:
            reasons.append(f"broker unreachable: {self.broker_error}")
        if self.redis_error is not None:
            reasons.append(f"redis unreachable: {self.redis_error}")
        elif self.mirror == "unchecked":
            reasons.append("redis mirror check")
        elif self.mirror == "rebuild":
            reasons.append("redis mirror rebuild")
        if self.held is not None and self.next_offsets:
            reasons.append(f"input held ({len(self.next_offsets)} partitions): {self.held}")
        return reasons

    def held_reasons(self) -> dict[str, bool]:
        """Each of ``HELD_REASONS``: whether it keeps input from moving on now. A hold counts
        only with partitions assigned (a worker with none holds nothing); an outage always."""
        holding = self.held_kind if self.next_offsets else None
        return {
            reason: reason == holding
            or (reason == "redis_outage" and self.redis_error is not None)
            or (reason == "broker_outage" and self.broker_error is not None)
            for reason in HELD_REASONS
        }

    def batch_age_s(self, now: float) -> float:
        """Seconds since the last batch (since the worker started, before the first)."""
        return now - (self.last_batch_at if self.last_batch_at is not None else self.started_at)

    def stalled_s(self, now: float) -> float:
        """Seconds input has been waiting with no batch processed and nothing to excuse it
        (0 when nothing waits, or the lag figure is stale, or an outage or hold explains it)."""
        if self.lag_at is None or now - self.lag_at > LAG_FRESH_S or not any(self.lags().values()):
            return 0.0
        if self.broker_error is not None or self.redis_error is not None or self.held:
            return 0.0
        since = max(self.excused_at, self.last_batch_at or self.started_at)
        return max(0.0, now - since)

    def stalled(self, now: float, after_s: float = STALLED_AFTER_S) -> str | None:
        """Why ``/health`` fails, if it does: the batch loop stopped with input waiting."""
        stalled = self.stalled_s(now)
        if stalled <= after_s:
            return None
        waiting = sum(self.lags().values())
        return f"no batch for {stalled:.0f}s while {waiting} input records wait"
