"""The committable offset never passes an in-flight message (faust-streaming #606)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.kafka.commit_guard import committable_offset


def test_the_case_of_issue_606_is_held_back() -> None:
    # Offset 2585 is still being processed; Faust 0.15.3 would commit 2590.
    assert committable_offset([2586, 2587, 2588, 2589], 2585, in_flight=[2585]) == (None, 0)


def test_a_missing_head_that_is_not_in_flight_is_a_gap() -> None:
    # A compacted record or a transaction marker at the head never arrives.
    assert committable_offset([2586, 2587], 2585, in_flight=[]) == (2588, 2)


def test_the_run_stops_at_the_first_in_flight_message() -> None:
    assert committable_offset([10, 11, 12, 13], 10, in_flight=[12, 14]) == (12, 2)


def test_a_wider_hole_at_the_head_waits() -> None:
    assert committable_offset([15, 16], 10, in_flight=[]) == (None, 0)


@given(
    st.lists(st.integers(0, 200), unique=True, min_size=1).map(sorted),
    st.one_of(st.none(), st.integers(0, 200)),
    st.lists(st.integers(0, 200), max_size=5),
)
def test_never_past_in_flight_nor_past_the_acked_run(
    acked: list[int], committed: int | None, in_flight: list[int]
) -> None:
    offset, consumed = committable_offset(acked, committed, in_flight)
    if offset is None:
        assert consumed == 0
        return
    assert all(offset <= o for o in in_flight)
    assert committed is None or offset > committed
    # Everything below the new offset, from the first acked one, was acked.
    assert acked[:consumed] == list(range(acked[0], offset))
