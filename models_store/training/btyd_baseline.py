"""The classic buy-till-you-die baseline: BG/NBD + Gamma-Gamma revenue over (t, t+H].

A client's purchases are its ``invoice_issued`` events, summarised as of t the way the
classic RFM summary does, in whole days (purchases on one UTC day are one purchase of
their summed amount): frequency x = purchase days − 1 (repeat purchases), recency t_x =
age at the last purchase, T = age at t, monetary m = mean spend of the repeat purchase
days. BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") gives
the expected number of purchases in the next H days, Gamma-Gamma (Fader, Hardie & Lee
2005, "RFM and CLV: using iso-value curves", and Fader & Hardie 2013, "The Gamma-Gamma
model of monetary value") the expected spend per purchase; expected revenue is their
product (Gamma-Gamma assumes spend independent of the purchase process).

Both are fitted by maximum likelihood (closed-form likelihoods, scipy) on every client
with a purchase at or before t, once per cutoff. Measured against pymc-marketing's
``BetaGeoModel`` / ``GammaGammaModel`` (MAP with flat priors, the same likelihoods):
same parameters and predictions (the test compares them). pymc-marketing itself is not
used here: it compiles its graphs with a C++ compiler at run time (about 60 s the first
time; 230 s per fit of 20,000 clients without g++, where this takes 2 s) and pins numba.

Rules the report relies on:

- Point in time: only events with ``event_time <= t`` are read (duplicates of an
  ``event_id`` count once, the copy with the earliest event time); for a training row
  of cutoff c, t = c − ``AS_OF_BEFORE_CUTOFF_S`` as for its features.
- A client with events but no purchase at or before t is a new buyer: the model's
  expectation for a new client whose first purchase opens the horizon,
  E[spend] · (1 + E[X_new(H)]).
- ``margin_abs``: predicted revenue × the client's own margin ratio over its history to
  t ((revenue − cost) / revenue), or the pooled ratio of the clients with purchases when it has
  no revenue yet. Cost is taken to follow revenue: a client the model thinks has left
  costs nothing more, where a constant cost rate would charge a departed client forever.
- ``margin_ratio``: the baseline does not apply (it predicts money, not a ratio).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from features.as_of import BEFORE_DAY_S as AS_OF_BEFORE_CUTOFF_S
from features.events import Event, InvoiceIssued
from features.windows import DAY_SECONDS
from models_store.errors import TrainingDataError
from models_store.labels import margin_parts
from models_store.registry.card import Target

# Below this many clients with repeat purchases the fits are noise, not a baseline.
MIN_REPEAT_BUYERS = 10
BTYD_TARGETS: tuple[Target, ...] = ("margin_abs",)
# Every parameter is fitted in [1e-4, 1e3] (time scaled so that the longest T is 10, spend
# so that the mean is 1). The unbounded maximum can lie at infinity (a, b → ∞: one
# dropout probability for all, as with contract clients; or a, b → 0) where the predictive
# formulas overflow to NaN; at 1e3 they are finite, and on the simulator's contract
# portfolio within 1% of the limit.
LOG_BOUNDS = (float(np.log(1e-4)), float(np.log(1e3)))


@dataclass(frozen=True)
class MoneyLog:
    """One client's margin-bearing events in event-time order (each ``event_id`` once)."""

    times: np.ndarray
    revenue: np.ndarray  # per event: the invoice amount, else 0
    cost: np.ndarray
    purchase: np.ndarray  # bool: an ``invoice_issued`` event (even of amount 0)


def money_logs(events: Iterable[Event]) -> dict[str, MoneyLog]:
    """Per client, its invoices and costs. Of several copies of an ``event_id`` the one
    with the earliest event time counts, so dropping later events never changes what is
    counted at or before any t."""
    chosen: dict[str, tuple[float, int, Event]] = {}
    for order, event in enumerate(events):
        known = chosen.get(event.event_id)
        if known is None or event.timestamp < known[0]:
            chosen[event.event_id] = (event.timestamp, order, event)
    rows: dict[str, list[tuple[float, int, float, float, bool]]] = {}
    for time, order, event in chosen.values():
        revenue, cost = margin_parts(event)
        purchase = isinstance(event, InvoiceIssued)
        if purchase or cost:
            rows.setdefault(event.client_id, []).append((time, order, revenue, cost, purchase))
    logs = {}
    for client, entries in rows.items():
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        logs[client] = MoneyLog(
            times=np.array([e[0] for e in entries], dtype=np.float64),
            revenue=np.array([e[2] for e in entries], dtype=np.float64),
            cost=np.array([e[3] for e in entries], dtype=np.float64),
            purchase=np.array([e[4] for e in entries], dtype=bool),
        )
    return logs


@dataclass(frozen=True)
class Rfm:
    """The RFM summary as of t of the clients with a purchase at or before t (days)."""

    clients: list[str]
    frequency: np.ndarray  # repeat purchase days
    recency: np.ndarray  # age at the last purchase day
    age: np.ndarray  # T: age at t
    monetary: np.ndarray  # mean spend of the repeat purchase days; 0 without any
    revenue: np.ndarray  # all revenue to t, for the margin ratio
    cost: np.ndarray


def rfm_summary(logs: dict[str, MoneyLog], as_of: float) -> Rfm:
    """Summarise every client's purchases with ``event_time <= as_of``."""
    end_day = np.floor(as_of / DAY_SECONDS)
    clients: list[str] = []
    table: list[tuple[float, float, float, float, float, float]] = []
    for client in sorted(logs):
        log = logs[client]
        known = log.times <= as_of
        bought = known & log.purchase
        if not bought.any():
            continue
        days, where = np.unique(np.floor(log.times[bought] / DAY_SECONDS), return_inverse=True)
        spend = np.bincount(where, weights=log.revenue[bought])
        repeats = days.size - 1
        clients.append(client)
        table.append(
            (
                float(repeats),
                float(days[-1] - days[0]),
                float(end_day - days[0]),
                float(spend[1:].mean()) if repeats else 0.0,
                float(log.revenue[known].sum()),
                float(log.cost[known].sum()),
            )
        )
    columns = np.array(table, dtype=np.float64).reshape(-1, 6).T
    return Rfm(clients, *columns)


@dataclass(frozen=True)
class BetaGeo:
    """BG/NBD: purchase rate λ ~ Gamma(r, α) per day, dropout p ~ Beta(a, b) per purchase."""

    r: float
    alpha: float
    a: float
    b: float
    at_bound: tuple[str, ...] = ()  # parameters the fit left at the edge of LOG_BOUNDS

    def expected_purchases(
        self, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray, days: float
    ) -> np.ndarray:
        """E[purchases in (T, T+days] | x, t_x, T] (FHL 2005 eq. 10)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x = frequency
        z = days / (alpha + age + days)
        # Euler's transformation of (1−z)^(r+x)·2F1(r+x, b+x; a+b+x−1; z): small upper
        # parameters and no huge power, so it stays accurate for frequent buyers.
        tail = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail)
        repeat = x > 0
        log_dead = np.where(
            repeat,
            np.log(a)
            - np.log(np.where(repeat, b + x - 1.0, 1.0))
            + (r + x) * (np.log(alpha + age) - np.log(alpha + recency)),
            -np.inf,
        )
        return np.asarray(numerator * np.exp(-np.logaddexp(0.0, log_dead)))

    def expected_purchases_new(self, days: float) -> float:
        """E[repeat purchases in (0, days]] of a client whose first purchase is at 0."""
        zero = np.zeros(1)
        return float(self.expected_purchases(zero, zero, zero, days)[0])


def beta_geo_nll(
    log_params: np.ndarray, x: np.ndarray, recency: np.ndarray, age: np.ndarray, weight: np.ndarray
) -> float:
    """−log L of BG/NBD at log(r, α, a, b) for rows (x, t_x, T), each ``weight`` times."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    none = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + age)
    dead = np.where(
        repeat,
        betaln(a + 1.0, b + np.maximum(x, 1.0) - 1.0)
        - betaln(a, b)
        - (r + x) * np.log(alpha + recency),
        -np.inf,
    )
    value = -float(np.sum(weight * (head + np.logaddexp(none, dead))))
    return value if np.isfinite(value) else np.inf


def fit_beta_geo(frequency: np.ndarray, recency: np.ndarray, age: np.ndarray) -> BetaGeo:
    """Maximum-likelihood BG/NBD (FHL 2005 eq. 6) on per-client (x, t_x, T) in days."""
    rows = np.unique(np.column_stack([frequency, recency, age]), axis=0, return_counts=True)
    unique, counts = rows
    # Times scaled so the longest T is 10 (as ``lifetimes`` does): α starts near the data.
    scale = 10.0 / max(float(unique[:, 2].max()), 1.0)
    rows_args = (unique[:, 0], unique[:, 1] * scale, unique[:, 2] * scale, counts.astype(float))
    log_params, at_bound = _minimise(beta_geo_nll, ("r", "alpha", "a", "b"), rows_args, "BG/NBD")
    r, alpha, a, b = np.exp(log_params)
    return BetaGeo(float(r), float(alpha / scale), float(a), float(b), at_bound)


@dataclass(frozen=True)
class GammaGamma:
    """Spend per purchase ~ Gamma(p, ν), ν ~ Gamma(q, v) per client; mean spend p·v/(q−1)."""

    p: float
    q: float
    v: float
    at_bound: tuple[str, ...] = ()

    def expected_spend(self, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
        """E[spend per purchase | x repeat purchases of mean m]: the population mean
        shrunk towards the client's own (with x = 0, the population mean)."""
        p, q, v = self.p, self.q, self.v
        return np.asarray(p * (v + frequency * monetary) / (p * frequency + q - 1.0))

    @property
    def new_client_spend(self) -> float:
        return self.p * self.v / (self.q - 1.0)


def gamma_gamma_nll(log_params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
    """−log L of Gamma-Gamma at (log p, log(q − 1), log v) for clients (x > 0, m > 0)."""
    p, q_excess, v = np.exp(log_params)
    q = 1.0 + q_excess
    px = p * x
    value = -float(
        np.sum(
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1.0) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(x * m + v)
        )
    )
    return value if np.isfinite(value) else np.inf


def fit_gamma_gamma(frequency: np.ndarray, monetary: np.ndarray) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma on the clients with repeat purchases of positive
    mean spend. q is kept above 1 (q = 1 + e^θ): with q <= 1 the mean spend is infinite
    and the baseline would predict nothing usable."""
    keep = (frequency > 0) & (monetary > 0)
    x, m = frequency[keep], monetary[keep]
    scale = float(np.mean(m))
    log_params, at_bound = _minimise(
        gamma_gamma_nll, ("p", "q", "v"), (x, m / scale), "Gamma-Gamma"
    )
    p, q_excess, v = np.exp(log_params)
    return GammaGamma(float(p), float(1.0 + q_excess), float(v * scale), at_bound)


def _minimise(
    objective: Callable[..., float],
    names: tuple[str, ...],
    args: tuple[np.ndarray, ...],
    model: str,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The maximum likelihood in the box LOG_BOUNDS, and the parameters at its edge."""
    bounds = [LOG_BOUNDS] * len(names)
    # L-BFGS-B from the start point; if it stops short (line-search failures far from the
    # optimum happen on flat likelihoods), Nelder-Mead from there, then L-BFGS-B again.
    best = minimize(objective, np.zeros(len(names)), args=args, method="L-BFGS-B", bounds=bounds)
    if not best.success:
        rough = minimize(objective, best.x, args=args, method="Nelder-Mead", bounds=bounds,
                         options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-10})  # fmt: skip
        fine = minimize(objective, rough.x, args=args, method="L-BFGS-B", bounds=bounds)
        best = fine if fine.fun <= rough.fun else rough
    if not np.all(np.isfinite(best.x)) or not np.isfinite(best.fun):
        raise TrainingDataError(
            f"the {model} fit of the buy-till-you-die baseline did not converge; "
            "the purchase history is too short or too uniform for it"
        )
    low, high = LOG_BOUNDS
    edge = np.isclose(best.x, low, atol=1e-6) | np.isclose(best.x, high, atol=1e-6)
    return np.asarray(best.x), tuple(name for name, hit in zip(names, edge, strict=True) if hit)


@dataclass(frozen=True)
class Forecast:
    """The baseline as of t: per client, expected purchases, spend and revenue in (t, t+H]."""

    as_of: float
    horizon_days: float
    beta_geo: BetaGeo
    gamma_gamma: GammaGamma
    rfm: Rfm
    purchases: np.ndarray  # aligned with rfm.clients
    spend: np.ndarray
    revenue: np.ndarray
    new_client_revenue: float  # for a client with no purchase yet

    def revenue_of(self, clients: Sequence[str]) -> np.ndarray:
        """Expected revenue of each client; a client not in the summary is a new buyer."""
        index = {client: i for i, client in enumerate(self.rfm.clients)}
        return np.array(
            [self.revenue[index[c]] if c in index else self.new_client_revenue for c in clients],
            dtype=np.float64,
        )

    def margin_of(self, clients: Sequence[str]) -> np.ndarray:
        """Expected absolute margin: revenue × the client's margin ratio to t (pooled
        portfolio ratio without own revenue)."""
        rfm = self.rfm
        pooled = float((rfm.revenue.sum() - rfm.cost.sum()) / rfm.revenue.sum())
        index = {client: i for i, client in enumerate(rfm.clients)}
        ratios = []
        for client in clients:
            i = index.get(client)
            own = i is not None and rfm.revenue[i] > 0
            ratios.append((rfm.revenue[i] - rfm.cost[i]) / rfm.revenue[i] if own else pooled)
        return self.revenue_of(clients) * np.array(ratios, dtype=np.float64)


def forecast(logs: dict[str, MoneyLog], as_of: float, horizon_s: float) -> Forecast:
    """Fit BG/NBD and Gamma-Gamma on the purchases to ``as_of`` and predict (t, t+H]."""
    rfm = rfm_summary(logs, as_of)
    repeat_buyers = int(np.sum((rfm.frequency > 0) & (rfm.monetary > 0)))
    if repeat_buyers < MIN_REPEAT_BUYERS:
        raise TrainingDataError(
            f"the BG/NBD + Gamma-Gamma baseline needs at least {MIN_REPEAT_BUYERS} clients "
            f"with invoices on two or more days before {_day(as_of)}; found {repeat_buyers}: "
            "use later cutoffs or a longer history"
        )
    days = horizon_s / DAY_SECONDS
    beta_geo = fit_beta_geo(rfm.frequency, rfm.recency, rfm.age)
    gamma_gamma = fit_gamma_gamma(rfm.frequency, rfm.monetary)
    purchases = beta_geo.expected_purchases(rfm.frequency, rfm.recency, rfm.age, days)
    spend = gamma_gamma.expected_spend(rfm.frequency, rfm.monetary)
    new_client = gamma_gamma.new_client_spend * (1.0 + beta_geo.expected_purchases_new(days))
    revenue = purchases * spend
    if not (np.all(np.isfinite(revenue)) and np.isfinite(new_client)):
        raise TrainingDataError(
            f"the BG/NBD + Gamma-Gamma baseline fitted at {_day(as_of)} gives no finite "
            f"prediction ({beta_geo}, {gamma_gamma})"
        )
    return Forecast(as_of, days, beta_geo, gamma_gamma, rfm, purchases, spend, revenue, new_client)


def baseline_for_rows(
    events: Iterable[Event], rows: pd.DataFrame, horizon_s: float, target: Target
) -> np.ndarray:
    """The baseline's ``target`` for each (``client_id``, ``cutoff``) row of a training
    set's frame, in row order (see ``forecasts_for_rows``); only money targets."""
    if target not in BTYD_TARGETS:
        raise ValueError(
            f"the BG/NBD + Gamma-Gamma baseline predicts money, not the {target} target"
        )
    return _per_row(forecasts_for_rows(events, rows, horizon_s), rows, Forecast.margin_of)


def revenue_for_rows(events: Iterable[Event], rows: pd.DataFrame, horizon_s: float) -> np.ndarray:
    """The baseline's expected revenue for each (``client_id``, ``cutoff``) row."""
    return _per_row(forecasts_for_rows(events, rows, horizon_s), rows, Forecast.revenue_of)


def forecasts_for_rows(
    events: Iterable[Event], rows: pd.DataFrame, horizon_s: float
) -> dict[float, Forecast]:
    """One fitted forecast per distinct ``cutoff`` of the rows: as of
    ``cutoff − AS_OF_BEFORE_CUTOFF_S`` like the rows' features, over the same horizon as
    their label."""
    logs = money_logs(events)
    return {
        float(cutoff): forecast(logs, float(cutoff) - AS_OF_BEFORE_CUTOFF_S, horizon_s)
        for cutoff in np.unique(rows["cutoff"].to_numpy(dtype=np.float64))
    }


def _per_row(
    forecasts: dict[float, Forecast],
    rows: pd.DataFrame,
    pick: Callable[[Forecast, Sequence[str]], np.ndarray],
) -> np.ndarray:
    result = np.empty(len(rows), dtype=np.float64)
    cutoffs = rows["cutoff"].to_numpy(dtype=np.float64)
    clients = rows["client_id"].astype(str).to_numpy()
    for cutoff, fitted in forecasts.items():
        at = np.flatnonzero(cutoffs == cutoff)
        result[at] = pick(fitted, list(clients[at]))
    return result


def _day(t: float) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").date().isoformat()
