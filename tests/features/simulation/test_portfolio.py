"""The portfolio simulator: seeded, of three kinds, the contract kind as it always was (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.simulation.messages import SimulatedMessage, simulated_messages
from features.simulation.portfolio import PORTFOLIO_KINDS, PortfolioKind, simulate

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
# sha256 of the messages of simulate(12, 5, seed=9) with 2% malformed, duplicate and late
# messages, taken before transactional clients existed: the contract kind is unchanged.
CONTRACT_DIGEST = "5012865fcc9f603d663e2ce45ab75e366c0cdc2d507596048835899915f99931"


def _digest(messages: list[SimulatedMessage]) -> str:
    digest = hashlib.sha256()
    for m in messages:
        digest.update(f"{m.stream}|{m.event_time!r}|{m.arrival_time!r}|{m.injected}|".encode())
        digest.update(m.key + b"|" + m.value + b"\n")
    return digest.hexdigest()


def test_the_contract_kind_draws_what_it_drew_before_there_were_kinds() -> None:
    for portfolio in (simulate(12, 5, seed=9, start=START),
                      simulate(12, 5, seed=9, start=START, kind="contract")):  # fmt: skip
        messages = simulated_messages(portfolio, malformed=0.02, duplicate=0.02, late=0.02)
        assert _digest(messages) == CONTRACT_DIGEST


def test_the_same_seed_draws_the_same_log_and_another_seed_does_not() -> None:
    first = simulated_messages(simulate(20, 4, seed=3, start=START), duplicate=0.02)
    again = simulated_messages(simulate(20, 4, seed=3, start=START), duplicate=0.02)
    other = simulated_messages(simulate(20, 4, seed=4, start=START), duplicate=0.02)
    assert [m.value for m in first] == [m.value for m in again]
    assert [m.value for m in first] != [m.value for m in other]


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31), kind=st.sampled_from(PORTFOLIO_KINDS))
def test_every_kind_is_seeded(seed: int, kind: PortfolioKind) -> None:
    def log(seed: int) -> str:
        return _digest(simulated_messages(simulate(20, 5, seed, START, kind), late=0.02))

    first = log(seed)
    assert first == log(seed)
    assert first != log(seed + 1)


def test_a_mixed_portfolio_is_half_contract_and_its_contract_half_is_the_contract_kinds() -> None:
    mixed = simulate(41, 6, seed=5, start=START, kind="mixed")
    assert (len(mixed.clients), len(mixed.shoppers), mixed.size) == (20, 21, 41)
    ids = [c[0] for c in mixed.clients] + [s.client_id for s in mixed.shoppers]
    assert len(set(ids)) == 41
    contract = simulated_messages(simulate(20, 6, seed=5, start=START))
    contract_ids = {c[0].encode() for c in mixed.clients}
    of_mixed = [m.value for m in simulated_messages(mixed) if m.key in contract_ids]
    assert sorted(of_mixed) == sorted(m.value for m in contract)
    # The transactional half draws from its own stream: the same as a transactional
    # portfolio's clients, renumbered.
    alone = simulate(21, 6, seed=5, start=START, kind="transactional")
    assert [s.traits for s in mixed.shoppers] == [s.traits for s in alone.shoppers]


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="retail"):
        simulate(3, 3, seed=1, start=START, kind="retail")  # type: ignore[arg-type]
