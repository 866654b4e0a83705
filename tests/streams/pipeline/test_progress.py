"""Per-partition progress and the holes it reveals (pure logic)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.progress import PartitionProgress, missing_offsets, next_expected


def test_next_expected_follows_the_stored_progress_but_not_before_retention() -> None:
    assert next_expected(None, beginning=0) == 0
    assert next_expected(41, beginning=0) == 42
    assert next_expected(41, beginning=100) == 100  # older records were deleted


def test_a_jump_reveals_the_skipped_offsets() -> None:
    progress = PartitionProgress()
    progress.start("t:0", 22)
    assert progress.gap("t:0", 25) == range(22, 25)
    progress.advance("t:0", 25)
    assert progress.gap("t:0", 26) == range(0)


def test_a_replay_is_not_a_gap_and_does_not_move_progress_back() -> None:
    progress = PartitionProgress()
    progress.start("t:0", 50)
    assert progress.gap("t:0", 10) == range(0)
    progress.advance("t:0", 10)
    assert progress.expected["t:0"] == 50


def test_unknown_and_forgotten_partitions_have_no_gap() -> None:
    progress = PartitionProgress()
    assert progress.gap("t:1", 99) == range(0)
    progress.start("t:1", 5)
    progress.forget({"t:1"})
    assert not progress.knows("t:1")


@given(st.lists(st.integers(0, 60), min_size=1, max_size=40))
def test_gaps_plus_delivered_offsets_cover_every_offset_once(offsets: list[int]) -> None:
    delivered = sorted(set(offsets))
    progress = PartitionProgress()
    progress.start("t:0", 0)
    covered: list[int] = []
    for offset in delivered:
        covered.extend(progress.gap("t:0", offset))
        covered.append(offset)
        progress.advance("t:0", offset)
    assert covered == list(range(delivered[-1] + 1))
    assert missing_offsets(5, 3) == range(0)
