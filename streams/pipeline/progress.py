"""How far each input partition has been processed, and which offsets went missing.

The worker keeps its own per-partition progress in the table (beside the client
states, in the same changelog partition): it is where reading resumes after a restart
or a rebalance, instead of Faust's committed offsets, which faust-streaming 0.15.3 can
move past messages it never delivered. Should the offsets of a partition ever jump past
unread records, the hole is re-read before the worker goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def missing_offsets(next_expected: int, offset: int) -> range:
    """The offsets between what should come next and what came (empty when none)."""
    return range(next_expected, max(next_expected, offset))


def next_expected(processed_through: int | None, beginning: int) -> int:
    """The first offset not processed yet, never before the partition's first retained one."""
    return beginning if processed_through is None else max(processed_through + 1, beginning)


@dataclass
class PartitionProgress:
    """The next expected offset of every partition seen in the current assignment."""

    expected: dict[str, int] = field(default_factory=dict)

    def gap(self, topic_partition: str, offset: int) -> range:
        """Offsets before ``offset`` that were skipped (empty when the partition is unknown)."""
        expected = self.expected.get(topic_partition)
        return range(0) if expected is None else missing_offsets(expected, offset)

    def advance(self, topic_partition: str, offset: int) -> None:
        """``offset`` is processed: the next one is expected (never moves backwards)."""
        self.expected[topic_partition] = max(self.expected.get(topic_partition, 0), offset + 1)

    def start(self, topic_partition: str, expected: int) -> None:
        """Begin tracking a partition (after an assignment) at ``expected``."""
        self.expected[topic_partition] = expected

    def knows(self, topic_partition: str) -> bool:
        """Whether the partition is tracked in the current assignment."""
        return topic_partition in self.expected

    def forget(self, topic_partitions: set[str]) -> None:
        """Drop partitions that were revoked (another worker may process them next)."""
        for topic_partition in topic_partitions:
            self.expected.pop(topic_partition, None)
