"""Never commit a source offset past a message that is still being processed.

faust-streaming's ``Consumer._new_offset`` (0.15.3) commits the first run of consecutive
acked offsets; when the message at the committed head is still in flight (delivered,
not acked: in a ``take`` buffer, or mid-batch), the run starts one past it and Faust
commits straight over it, so a crash then loses that message for good (faust-streaming
issue #606, fix proposed in PR #707). Input no longer resumes from these commits (see
streams/pipeline/input_reader.py), so the guard only keeps the group's committed offsets honest.

The replacement keeps Faust's gap handling (offsets that do not exist, such as
compacted records or transaction markers) and adds one rule: the committable offset is
capped at the smallest offset of that partition still in flight.
"""

from __future__ import annotations

from faust.transport.consumer import Consumer
from faust.types import TP
from faust.utils.functional import consecutive_numbers


def committable_offset(
    acked: list[int], committed: int | None, in_flight: list[int]
) -> tuple[int | None, int]:
    """(offset to commit or None, how many of the sorted ``acked`` it consumes).

    ``acked`` must be sorted; ``committed`` is the next offset to read as last
    committed; ``in_flight`` are offsets delivered to a stream and not acked yet.
    """
    if not acked:
        return None, 0
    if committed is not None and acked[0] > committed + 1:
        return None, 0  # the head itself is missing: wait for it
    run = next(consecutive_numbers(acked))
    end = run[-1] + 1
    if in_flight:
        end = min(end, min(in_flight))
    if end <= run[0] or (committed is not None and end <= committed):
        return None, 0
    return end, end - run[0]


def _new_offset(self: Consumer, tp: TP) -> int | None:
    acked = self._acked[tp]
    if not acked:
        return None
    gaps = self._gap[tp]
    if gaps:
        # Faust's own gap merge: offsets known not to exist count as acked.
        max_offset = max(acked)
        candidates = sorted(gaps.overlap(0, max_offset), key=lambda interval: interval.begin)
        if candidates:
            extra = [o for interval in candidates for o in range(interval.begin, interval.end)]
            acked.extend(extra)
            gaps.chop(0, max(extra[-1], max_offset + 1))
    acked.sort()
    in_flight = [
        message.offset
        for message in list(self._unacked_messages)
        if message.tp == tp and not message.acked
    ]
    offset, consumed = committable_offset(acked, self._committed_offset[tp], in_flight)
    if offset is None:
        return None
    self._acked_index[tp].difference_update(acked[:consumed])
    acked[:consumed] = []
    return offset


def install() -> None:
    """Replace Faust's committable-offset computation (idempotent)."""
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
