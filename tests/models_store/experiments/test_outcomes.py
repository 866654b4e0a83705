"""A tracked prediction's horizon and money (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from models_store.experiments.outcomes import Tracked, add_money, is_closed

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
DAY = 86_400.0
HORIZON = 90 * DAY


def tracked_prediction(client: str, as_of: float, arm: str = "champion") -> Tracked:
    """A prediction of ``client`` as of ``as_of`` tracked for its 90-day horizon."""
    return Tracked(as_of, as_of + HORIZON, f"p-{client}-{arm}", "m@1.0.0", "e1", arm,
                   0.3, 0.1, 0.5, float("nan"))  # fmt: skip


def test_a_horizon_closes_only_after_its_end_plus_the_allowed_lateness() -> None:
    memo = tracked_prediction("c", START)
    assert not is_closed(memo, START + HORIZON, 7 * DAY)
    assert not is_closed(memo, START + HORIZON + 7 * DAY, 7 * DAY)
    assert is_closed(memo, START + HORIZON + 7 * DAY + 1, 7 * DAY)
    # Money outside (as_of, until] does not count; inside it does.
    assert add_money(memo, START, 10.0, 0.0) == memo
    assert add_money(memo, START + HORIZON + 1, 10.0, 0.0) == memo
    assert add_money(memo, START + HORIZON, 10.0, 4.0).revenue == 10.0
