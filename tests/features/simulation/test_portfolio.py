"""The portfolio simulator: seeded (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from features.simulation.messages import simulated_messages
from features.simulation.portfolio import simulate

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def test_the_same_seed_draws_the_same_log_and_another_seed_does_not() -> None:
    first = simulated_messages(simulate(20, 4, seed=3, start=START), duplicate=0.02)
    again = simulated_messages(simulate(20, 4, seed=3, start=START), duplicate=0.02)
    other = simulated_messages(simulate(20, 4, seed=4, start=START), duplicate=0.02)
    assert [m.value for m in first] == [m.value for m in again]
    assert [m.value for m in first] != [m.value for m in other]
