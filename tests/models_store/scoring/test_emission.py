"""The emission policy (pure): when a new score becomes a prediction on the topic."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from models_store.scoring.emission import EmissionPolicy, Emitted, Reason, decide

BASE = Emitted(margin=0.40, tier="healthy", model="m@1.0.0", arm=None, event_time=1000.0)
POLICY = EmissionPolicy(delta=0.02, heartbeat_s=86_400)


def _with(**changes: object) -> Emitted:
    return Emitted(**{**BASE.__dict__, **changes})


def test_each_reason() -> None:
    assert decide(None, BASE, POLICY) is Reason.FIRST
    assert decide(BASE, _with(margin=0.43), POLICY) is Reason.MARGIN
    assert decide(BASE, _with(margin=0.37), POLICY) is Reason.MARGIN
    assert decide(BASE, _with(margin=0.41, tier="strong"), POLICY) is Reason.TIER
    assert decide(BASE, _with(model="m@1.0.1"), POLICY) is Reason.MODEL
    assert decide(BASE, _with(arm="challenger"), POLICY) is Reason.ARM
    assert decide(BASE, _with(event_time=1000.0 + 86_400), POLICY) is Reason.HEARTBEAT
    assert decide(BASE, _with(margin=0.41, event_time=2000.0), POLICY) is None
    no_heartbeat = EmissionPolicy(delta=0.02, heartbeat_s=0)
    assert decide(BASE, _with(event_time=1e12), no_heartbeat) is None


@given(st.lists(st.floats(min_value=-0.2, max_value=0.2), min_size=1, max_size=50))
def test_the_emitted_margin_never_drifts_more_than_delta_from_the_score(
    steps: list[float],
) -> None:
    """Whatever path the scores take, the last emitted margin stays within delta of the
    latest score: a slow drift is emitted once it adds up."""
    last = BASE
    margin = BASE.margin
    for step in steps:
        margin += step / 10
        new = _with(margin=margin)  # same tier on purpose: only the margin rule acts
        if decide(last, new, POLICY) is not None:
            last = new
        assert abs(last.margin - margin) <= POLICY.delta + 1e-12
