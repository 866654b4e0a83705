"""The hidden-truth oracle: what any model can reach on a simulated portfolio (pure)."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.offline import LoggedMessage, parsed_events
from features.simulation.messages import simulated_messages
from features.simulation.oracle import (
    ABSOLUTE_COLUMNS,
    oracle,
    oracle_rows,
    oracle_summary,
    oracle_tables,
)
from features.simulation.periods import PERIOD_S
from features.simulation.portfolio import PORTFOLIO_KINDS, PortfolioKind, simulate
from features.simulation.transactional import expected_horizon
from features.windows import DAY_SECONDS
from models_store.labels import ledgers

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
# sha256 of oracle_rows(simulate(12, 5, seed=9), 4) as CSV, taken before the oracle knew
# transactional clients and the absolute margin: the ratio oracle is unchanged.
RATIO_DIGEST = "d052d19f106b190f0a38213328eee4107c2dbc9701a9e81b83998dcabc6e46ac"


def test_the_oracle_is_better_than_the_mean() -> None:
    portfolio = simulate(80, 8, seed=2, start=START)
    figures = oracle(portfolio, draws_per_cutoff=4)
    assert figures["pairs"] > 100
    assert 0.2 < figures["oracle_expected_r2"] < 1.0


def test_the_ratio_oracle_of_a_contract_portfolio_is_what_it_was() -> None:
    rows = oracle_rows(simulate(12, 5, seed=9, start=START), draws_per_cutoff=4)
    text = rows.to_csv(index=False, float_format="%.17g").encode()
    assert (len(rows), hashlib.sha256(text).hexdigest()) == (23, RATIO_DIGEST)


@pytest.mark.parametrize("kind", PORTFOLIO_KINDS)
def test_the_oracles_actuals_are_the_training_labels_of_every_known_client(
    kind: PortfolioKind,
) -> None:
    """Every client with an event before a cutoff has an absolute row (none other does),
    and its actual is the label ``train`` computes from the events (revenue − cost of
    (t, t+90d], t = cutoff − 1 ms): the oracle is judged on the same truth as the models."""
    portfolio = simulate(60, 8, seed=4, start=START, kind=kind)
    tables = oracle_tables(portfolio, draws_per_cutoff=3)
    assert list(tables.absolute.columns) == ABSOLUTE_COLUMNS
    messages = simulated_messages(portfolio, late=0.02, duplicate=0.02)
    events = list(parsed_events([LoggedMessage(m.stream, m.key, m.value)  # type: ignore[arg-type]
                                 for m in messages]))  # fmt: skip
    money = ledgers(events)
    first_seen: dict[str, float] = {}
    for event in sorted(events, key=lambda event: -event.timestamp):
        first_seen[event.client_id] = event.timestamp
    absolute = tables.absolute
    horizon_s = 90 * DAY_SECONDS
    for cutoff in sorted(set(absolute["cutoff"].tolist())):
        rows = absolute[absolute["cutoff"] == cutoff]
        t = cutoff - 0.001
        known = {c for c, seen in first_seen.items() if seen <= t}
        assert set(rows["client_id"]) == known, cutoff
        gone = 0
        for client, actual, actual_revenue in zip(rows["client_id"], rows["actual"],
                                                  rows["actual_revenue"], strict=True):  # fmt: skip
            ledger = money.get(str(client))
            revenue, cost = (0.0, 0.0) if ledger is None else ledger.between(t, t + horizon_s)
            assert actual == pytest.approx(revenue - cost, rel=1e-9, abs=1e-9)
            assert actual_revenue == pytest.approx(revenue, rel=1e-9, abs=1e-9)
            gone += revenue == 0
        if kind == "transactional":
            assert gone > 0.3 * len(known)  # zero-inflated
    assert tables.ratio["actual"].notna().all()
    # A cancelled contract client is predicted 0 without re-draws: its horizon is 0 indeed.
    contract_ids = {client_id for client_id, *_ in portfolio.clients}
    cancelled = absolute[absolute["client_id"].isin(contract_ids)
                         & (absolute["estimate_variance"] == 0)]  # fmt: skip
    assert (cancelled["prediction"] == 0).all()
    assert (cancelled["actual"] == 0).all()
    assert len(cancelled) > 0 or kind == "transactional"


def _z(actual: np.ndarray, expected: np.ndarray) -> float:
    # The sum's standard error from the residuals themselves: clients are independent.
    residual = actual - expected
    return float(residual.sum() / math.sqrt(float(np.sum(residual**2))))


# Derandomised: the power checks below (a wrong oracle is far off) are statistical, and a
# CI run must not depend on the draw (10% too high gave |z| 1.9 on one draw).
@settings(max_examples=3, deadline=None, derandomize=True)
@given(seeds=st.lists(st.integers(0, 2**31), min_size=4, max_size=4, unique=True))
def test_realised_totals_of_transactional_clients_agree_with_the_oracles_expectation(
    seeds: list[int],
) -> None:
    """Over 10,000 clients at one cutoff (independent horizons) the realised revenue and
    margin lie within sampling error of the oracle's expectation; an oracle that took
    every client for alive is far off, and so is one 25% too high."""
    cutoff = 5  # every client is acquired by then
    frames = []
    for seed in seeds:
        portfolio = simulate(2500, 9, seed, START, kind="transactional")
        rows = oracle_tables(portfolio, draws_per_cutoff=0).absolute
        rows = rows[rows["cutoff"] == START + cutoff * PERIOD_S].copy()
        alive = {s.client_id: expected_horizon(s.traits, True, 90) for s in portfolio.shoppers}
        rows["if_alive"] = [alive[c][1] for c in rows["client_id"]]
        frames.append(rows)
    rows = pd.concat(frames)
    assert len(rows) == 10_000
    assert 0.4 < float(np.mean(rows["actual_revenue"] == 0)) < 0.85
    actual, expected = rows["actual"].to_numpy(), rows["prediction"].to_numpy()
    assert abs(_z(rows["actual_revenue"].to_numpy(), rows["expected_revenue"].to_numpy())) < 4
    assert abs(_z(actual, expected)) < 4
    assert abs(_z(actual, rows["if_alive"].to_numpy())) > 6
    assert abs(_z(actual, 1.25 * expected)) > 3
    assert abs(float(np.sum(actual) / np.sum(expected)) - 1) < 0.1


def test_a_money_summary_has_totals_and_the_share_without_revenue() -> None:
    rows = oracle_tables(simulate(300, 9, seed=3, start=START, kind="mixed"), 4).absolute
    figures = oracle_summary(rows, 4, "margin_abs")
    assert figures["label"].startswith("margin (revenue − cost)")
    assert 0.2 < figures["oracle_expected_r2"] < 1.0
    assert 0.2 < figures["no_revenue_share"] < 0.6  # half the clients are transactional
    assert figures["predicted_total"] == pytest.approx(figures["actual_total"], rel=0.1)
