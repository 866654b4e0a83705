"""The BG/NBD + Gamma-Gamma baseline: parameter recovery on its own generative process,
totals, agreement with pymc-marketing, point in time, one-purchase and new clients."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.as_of import BEFORE_DAY_S as AS_OF_BEFORE_CUTOFF_S
from features.events import Event, InvoiceIssued, encode_event, parse_event
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.oracle import HORIZON_PERIODS
from features.simulation.portfolio import PERIOD_S, simulate
from features.windows import DAY_SECONDS
from models_store.errors import TrainingDataError
from models_store.training.btyd_baseline import (
    MoneyLog,
    baseline_for_rows,
    beta_geo_nll,
    forecast,
    forecasts_for_rows,
    gamma_gamma_nll,
    money_logs,
    revenue_for_rows,
)
from models_store.training.dataset import build_training_set, cutoff_schedule, load_history

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
CALIBRATION_DAYS = 365.0
HORIZON_DAYS = 182.0
AS_OF = START + CALIBRATION_DAYS * DAY_SECONDS - AS_OF_BEFORE_CUTOFF_S
TRUTH = {"r": 0.6, "alpha": 40.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "v": 60.0}


def draw_population(
    clients: int, seed: int, truth: dict[str, float] = TRUTH
) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], float]:
    """BG/NBD + Gamma-Gamma's generative process: each client is born (first purchase)
    uniformly in the first half of the calibration year, buys at rate λ ~ Gamma(r, α)
    per day, drops out after each repeat purchase with p ~ Beta(a, b), and spends
    Gamma(p, ν) per purchase with ν ~ Gamma(q, v). Returns (client, days since START,
    amounts) per client and the realised revenue of the horizon after the calibration."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(truth["r"], 1 / truth["alpha"], clients)
    dropouts = rng.beta(truth["a"], truth["b"], clients)
    scales = rng.gamma(truth["q"], 1 / truth["v"], clients)
    births = rng.uniform(0, CALIBRATION_DAYS / 2, clients)
    end = CALIBRATION_DAYS + HORIZON_DAYS
    population = []
    realised = 0.0
    for i in range(clients):
        t, times = births[i], [births[i]]
        while True:
            t += rng.exponential(1 / rates[i])
            if t >= end:
                break
            times.append(t)
            if rng.random() < dropouts[i]:
                break
        days = np.array(times)
        amounts = rng.gamma(truth["p"], 1 / scales[i], days.size)
        realised += float(amounts[days >= CALIBRATION_DAYS].sum())
        population.append((f"client-{i:05d}", days, amounts))
    return population, realised


def as_logs(population: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, MoneyLog]:
    """The population as money logs directly (the statistical tests need thousands)."""
    return {
        client: MoneyLog(
            times=START + days * DAY_SECONDS,
            revenue=amounts,
            cost=np.zeros(days.size),
            purchase=np.ones(days.size, dtype=bool),
        )
        for client, days, amounts in population
    }


def as_events(population: list[tuple[str, np.ndarray, np.ndarray]], seed: int) -> list[Event]:
    """The population as contract events: invoices, some costs, payments (no money),
    arrival order shuffled within a day's lateness."""
    rng = np.random.default_rng(seed)
    raw: list[tuple[float, str, bytes]] = []
    for client, days, amounts in population:
        for n, (day, amount) in enumerate(zip(days, amounts, strict=True)):
            when = float(np.floor(START + day * DAY_SECONDS))
            invoice = {"invoice_id": f"{client}-i{n}", "amount": round(float(amount), 2)}
            raw.append(
                (
                    when,
                    "billing",
                    encode_event(
                        "invoice_issued",
                        event_id=f"{client}-i{n}",
                        client_id=client,
                        event_time=when,
                        payload=invoice,
                    ),
                )
            )
            raw.append(
                (
                    when + 3600,
                    "billing",
                    encode_event(
                        "payment_received",
                        event_id=f"{client}-p{n}",
                        client_id=client,
                        event_time=when + 3600,
                        payload={**invoice, "days_late": 0},
                    ),
                )
            )
            if rng.random() < 0.5:
                raw.append(
                    (
                        when + 60,
                        "billing",
                        encode_event(
                            "cost_incurred",
                            event_id=f"{client}-c{n}",
                            client_id=client,
                            event_time=when + 60,
                            payload={
                                "amount": round(float(amount) * 0.3, 2),
                                "category": "licence",
                            },
                        ),
                    )
                )
    arrival = np.array([when for when, _, _ in raw]) + rng.uniform(0, DAY_SECONDS, len(raw))
    return [parse_event(raw[i][2], raw[i][1]) for i in np.argsort(arrival, kind="stable")]


def log_standard_errors(nll: Callable[[np.ndarray], float], at: np.ndarray) -> np.ndarray:
    """Standard errors of the log-parameters from the observed information (the inverse
    of −log L's Hessian, by central differences)."""
    size, h = at.size, 1e-4
    hessian = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            e_i, e_j = np.eye(size)[i] * h, np.eye(size)[j] * h
            hessian[i, j] = (
                nll(at + e_i + e_j)
                - nll(at + e_i - e_j)
                - nll(at - e_i + e_j)
                + nll(at - e_i - e_j)
            ) / (4 * h * h)
    return np.sqrt(np.diag(np.linalg.inv(hessian)))


@pytest.mark.parametrize("seed", [11, 12])
def test_fit_recovers_the_generating_parameters_and_the_horizons_total(seed: int) -> None:
    population, realised = draw_population(5000, seed)
    fitted = forecast(as_logs(population), AS_OF, HORIZON_DAYS * DAY_SECONDS)
    bg, gg, rfm = fitted.beta_geo, fitted.gamma_gamma, fitted.rfm
    assert bg.at_bound == ()
    assert gg.at_bound == ()

    estimate = np.log([bg.r, bg.alpha, bg.a, bg.b])
    weight = np.ones(rfm.frequency.size)
    errors = log_standard_errors(
        lambda theta: beta_geo_nll(theta, rfm.frequency, rfm.recency, rfm.age, weight), estimate
    )
    truth = np.log([TRUTH["r"], TRUTH["alpha"], TRUTH["a"], TRUTH["b"]])
    assert np.all(np.abs(estimate - truth) < 4 * errors), (bg, errors)
    assert np.all(errors < 0.15)  # 5,000 clients pin them down: a real check, not a wide net

    repeat = rfm.frequency > 0
    scale = float(np.mean(rfm.monetary[repeat]))
    estimate = np.log([gg.p, gg.q - 1, gg.v / scale])
    errors = log_standard_errors(
        lambda theta: gamma_gamma_nll(theta, rfm.frequency[repeat], rfm.monetary[repeat] / scale),
        estimate,
    )
    truth = np.log([TRUTH["p"], TRUTH["q"] - 1, TRUTH["v"] / scale])
    assert np.all(np.abs(estimate - truth) < 4 * errors), (gg, errors)
    assert np.all(errors < 0.15)

    assert fitted.revenue.sum() == pytest.approx(realised, rel=0.10)


def test_same_parameters_and_predictions_as_pymc_marketing() -> None:
    """The likelihoods are pymc-marketing's: its MAP with flat priors is the same maximum
    (measured: parameters within 3e-4, predictions within 4e-4, relative)."""
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    population, _ = draw_population(2000, 7)
    fitted = forecast(as_logs(population), AS_OF, HORIZON_DAYS * DAY_SECONDS)
    rfm = fitted.rfm
    data = pd.DataFrame(
        {
            "customer_id": rfm.clients,
            "frequency": rfm.frequency,
            "recency": rfm.recency,
            "T": rfm.age,
            "monetary_value": rfm.monetary,
        }
    )
    flat = {name: Prior("HalfFlat") for name in ("r", "alpha", "a", "b")}
    bg = BetaGeoModel(model_config=flat)
    bg.fit(data=data, method="map", progressbar=False)
    gg = GammaGammaModel()
    gg.fit(data=data[data["frequency"] > 0], method="map", progressbar=False)

    def theirs(model: BetaGeoModel | GammaGammaModel, name: str) -> float:
        return float(model.fit_result[name].to_numpy().ravel()[0])

    mine = fitted.beta_geo
    for name in ("r", "alpha", "a", "b"):
        assert getattr(mine, name) == pytest.approx(theirs(bg, name), rel=5e-3), name
    for name in ("p", "q", "v"):
        assert getattr(fitted.gamma_gamma, name) == pytest.approx(theirs(gg, name), rel=5e-3)
    purchases = bg.expected_purchases(data=data, future_t=int(HORIZON_DAYS)).to_numpy().ravel()
    spend = gg.expected_customer_spend(data=data).to_numpy().ravel()
    np.testing.assert_allclose(fitted.purchases, purchases, rtol=5e-3)
    np.testing.assert_allclose(fitted.spend, spend, rtol=5e-3)
    new = bg.expected_purchases_new_customer(data=data.head(1), t=int(HORIZON_DAYS))
    assert mine.expected_purchases_new(HORIZON_DAYS) == pytest.approx(
        float(new.to_numpy().ravel()[0]), rel=5e-3
    )
    # Ours is the maximum: its −log L is no higher than at pymc-marketing's parameters.
    weight = np.ones(rfm.frequency.size)
    at_theirs = np.log([theirs(bg, name) for name in ("r", "alpha", "a", "b")])
    at_mine = np.log([mine.r, mine.alpha, mine.a, mine.b])
    args = (rfm.frequency, rfm.recency, rfm.age, weight)
    assert beta_geo_nll(at_mine, *args) <= beta_geo_nll(at_theirs, *args) + 1e-6


@pytest.fixture(scope="module")
def contract_events() -> list[Event]:
    population, _ = draw_population(150, 21)
    return as_events(population, seed=21)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cutoff_day=st.integers(min_value=120, max_value=540))
def test_predictions_at_t_ignore_every_event_after_t(
    contract_events: list[Event], cutoff_day: int
) -> None:
    cutoff = START + cutoff_day * DAY_SECONDS
    clients = sorted({event.client_id for event in contract_events if event.timestamp < cutoff})
    rows = pd.DataFrame({"client_id": clients, "cutoff": cutoff})
    horizon_s = 90 * DAY_SECONDS
    kept = [event for event in contract_events if event.timestamp <= cutoff - AS_OF_BEFORE_CUTOFF_S]
    assert len(kept) < len(contract_events)
    everything = forecasts_for_rows(contract_events, rows, horizon_s)[cutoff]
    past_only = forecasts_for_rows(kept, rows, horizon_s)[cutoff]
    assert everything.beta_geo == past_only.beta_geo
    assert everything.gamma_gamma == past_only.gamma_gamma
    np.testing.assert_array_equal(everything.revenue_of(clients), past_only.revenue_of(clients))
    np.testing.assert_array_equal(everything.margin_of(clients), past_only.margin_of(clients))


def test_a_maximum_at_infinity_stops_at_the_bound_with_finite_predictions(
    contract_events: list[Event],
) -> None:
    """150 clients 154 days in: the likelihood keeps rising as a, b → ∞ (one dropout
    probability for everyone); unbounded, the fit ran to a = 1.8e48 and predicted NaN."""
    fitted = forecast(money_logs(contract_events), START + 154 * DAY_SECONDS, 90 * DAY_SECONDS)
    assert "b" in fitted.beta_geo.at_bound
    assert fitted.beta_geo.b == pytest.approx(1e3)
    assert np.all(np.isfinite(fitted.revenue))
    assert np.all(fitted.revenue > 0)


def test_duplicates_count_once_and_a_later_copy_does_not_move_the_past(
    contract_events: list[Event],
) -> None:
    cutoff = START + 300 * DAY_SECONDS
    rows = pd.DataFrame({"client_id": ["client-00000", "client-00001"], "cutoff": cutoff})
    horizon_s = 90 * DAY_SECONDS
    before = revenue_for_rows(contract_events, rows, horizon_s)
    invoice = next(
        e
        for e in contract_events
        if isinstance(e, InvoiceIssued) and e.timestamp < cutoff and e.client_id == "client-00001"
    )
    later_copy = invoice.model_copy(
        update={"event_time": datetime.fromtimestamp(cutoff + 5 * DAY_SECONDS, UTC)}
    )
    assert later_copy.timestamp > cutoff
    with_copies = [later_copy, *contract_events, invoice]
    np.testing.assert_array_equal(revenue_for_rows(with_copies, rows, horizon_s), before)


def test_one_purchase_and_no_purchase_clients(contract_events: list[Event]) -> None:
    cutoff = START + 400 * DAY_SECONDS
    as_of = cutoff - AS_OF_BEFORE_CUTOFF_S
    horizon_s = 182 * DAY_SECONDS
    once_at = float(np.floor(START + 100 * DAY_SECONDS))
    once_recent = float(np.floor(START + 395 * DAY_SECONDS))
    extra = [
        parse_event(
            encode_event(
                "invoice_issued",
                event_id=f"{client}-i0",
                client_id=client,
                event_time=when,
                payload={"invoice_id": f"{client}-i0", "amount": 80.0},
            ),
            "billing",
        )
        for client, when in (("once-old", once_at), ("once-recent", once_recent))
    ]
    extra.append(
        parse_event(
            encode_event(  # a client known by its costs only: no purchase
                "cost_incurred",
                event_id="prospect-c0",
                client_id="prospect",
                event_time=once_at,
                payload={"amount": 40.0, "category": "licence"},
            ),
            "billing",
        )
    )
    events = [*contract_events, *extra]
    fitted = forecast(money_logs(events), as_of, horizon_s)
    bg, gg = fitted.beta_geo, fitted.gamma_gamma
    days = horizon_s / DAY_SECONDS

    revenue = dict(
        zip(
            ["once-old", "once-recent", "prospect"],
            fitted.revenue_of(["once-old", "once-recent", "prospect"]),
            strict=True,
        )
    )
    zero = np.zeros(1)
    for client, when in (("once-old", once_at), ("once-recent", once_recent)):
        age = np.array([np.floor(as_of / DAY_SECONDS) - np.floor(when / DAY_SECONDS)])
        purchases = bg.expected_purchases(zero, zero, age, days)[0]
        # One purchase: no repeat spend of its own, so the population's mean spend.
        assert revenue[client] == pytest.approx(purchases * gg.new_client_spend, rel=1e-12)
    # Silent for 300 days is likelier gone than silent for 5.
    assert 0 < revenue["once-old"] < revenue["once-recent"]
    # No purchase yet: a new buyer whose first purchase opens the horizon.
    expected_new = gg.new_client_spend * (1 + bg.expected_purchases_new(days))
    assert revenue["prospect"] == pytest.approx(expected_new, rel=1e-12)
    assert fitted.new_client_revenue == revenue["prospect"]
    assert revenue["prospect"] > revenue["once-recent"]

    # The margin: a client with no revenue takes the portfolio's pooled ratio (costs of
    # the contract clients are 30% of about half their invoices).
    margins = fitted.margin_of(["once-old", "prospect"])
    assert margins[0] == pytest.approx(revenue["once-old"])  # revenue and no cost: ratio 1
    pooled = margins[1] / revenue["prospect"]
    assert 0.8 < pooled < 0.9


def test_too_few_repeat_buyers_is_a_clear_error(contract_events: list[Event]) -> None:
    early = START + 3 * DAY_SECONDS
    with pytest.raises(TrainingDataError, match="clients with invoices on two or more days"):
        forecast(money_logs(contract_events), early, 90 * DAY_SECONDS)


def test_rows_of_a_training_set_get_their_own_cutoffs_forecast() -> None:
    portfolio = simulate(40, 12, seed=5, start=START)
    history = load_history(history_frame(simulated_messages(portfolio, late=0.03)))
    horizon_s = HORIZON_PERIODS * PERIOD_S
    cutoffs = cutoff_schedule("30d", history, horizon_s)[-3:]
    frame = build_training_set(history, cutoffs, horizon_s, target="margin_abs").frame
    frame = frame.sample(frac=1.0, random_state=0)  # row order is the caller's, not ours

    margins = baseline_for_rows(history.events, frame, horizon_s, "margin_abs")
    revenues = revenue_for_rows(history.events, frame, horizon_s)
    forecasts = forecasts_for_rows(history.events, frame, horizon_s)
    assert sorted(forecasts) == cutoffs
    rows = zip(frame["client_id"], frame["cutoff"], margins, revenues, strict=True)
    for client, cutoff, margin, revenue in rows:
        fitted = forecasts[float(cutoff)]
        assert fitted.as_of == float(cutoff) - AS_OF_BEFORE_CUTOFF_S
        assert revenue == fitted.revenue_of([str(client)])[0]
        assert margin == fitted.margin_of([str(client)])[0]
    # Contract clients invoice monthly: the baseline's total is near the realised one.
    assert revenues.sum() == pytest.approx(frame["horizon_revenue"].sum(), rel=0.25)
    with pytest.raises(ValueError, match="not the margin_ratio target"):
        baseline_for_rows(history.events, frame, horizon_s, "margin_ratio")
