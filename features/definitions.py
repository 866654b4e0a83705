"""Feature definitions: pure functions of (client state, as_of), shared by stream and training.

Every feature is a float64; "not defined" (a ratio over zero, no survey yet, never
paid) is NaN, which XGBoost and scikit-learn's forests take as missing. The order of
``FEATURE_NAMES`` is the order of a model's input vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from features.events import ServiceType
from features.state import WIDTH, ClientState, F
from features.windows import DAY_SECONDS, WINDOWS_DAYS, day_of, window_totals

NAN = math.nan
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

_WINDOWED = (
    "revenue",
    "payments",
    "credits",
    "labour_hours",
    "labour_cost",
    "licence_cost",
    "tickets_opened",
    "sla_breaches",
    "satisfaction_mean",
    "resolution_hours_mean",
    "effective_hourly_rate",
    "contract_utilisation",
    "cost_to_revenue",
    "tickets_per_endpoint",
    "realised_margin",
)
_SCALAR = (
    "revenue_trend",
    "labour_hours_trend",
    "tickets_trend",
    "satisfaction_trend",
    "days_since_last_contact",
    "days_since_last_payment",
    "days_since_last_ticket",
    "mean_days_late_90d",
    "mean_days_late_180d",
    "payment_ratio_90d",
    "billable_share_90d",
    "margin_abs_90d",
    "contract_active",
    "monthly_recurring_value",
    "term_remaining_days",
    "included_hours",
    "services_count",
    "managed_endpoints",
    "tenure_days",
    "invoices_lifetime",
    "revenue_lifetime",
    "days_since_last_invoice",
    "invoices_per_30d_lifetime",
    "invoice_recency_share",
    "season_sin",
    "season_cos",
)
FEATURE_NAMES: tuple[str, ...] = (
    *(f"{name}_{days}d" for days in WINDOWS_DAYS for name in _WINDOWED),
    *_SCALAR,
    *(f"service_{service.value}" for service in ServiceType),
)
# Functions of the date of ``as_of`` alone: a few days of traffic always differ from a year
# of training rows in them, so drift monitoring leaves them out.
CALENDAR_FEATURES: tuple[str, ...] = ("season_sin", "season_cos")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else NAN


def _days_since(as_of: float, time: float | None) -> float:
    return NAN if time is None else (as_of - time) / DAY_SECONDS


def _windowed(
    t: Sequence[float], days: int, endpoints: float, included_hours: float
) -> list[float]:
    revenue = t[F["revenue"]]
    hours = t[F["labour_hours"]]
    licence = t[F["licence_cost"]] + t[F["third_party_cost"]]
    costs = t[F["labour_cost"]] + licence + t[F["credits"]]
    return [
        revenue,
        t[F["payments"]],
        t[F["credits"]],
        hours,
        t[F["labour_cost"]],
        licence,
        t[F["tickets_opened"]],
        t[F["sla_breaches"]],
        _ratio(t[F["satisfaction_sum"]], t[F["satisfaction_count"]]),
        _ratio(t[F["resolution_hours"]], t[F["tickets_resolved"]]),
        _ratio(revenue, hours),
        _ratio(hours, included_hours * days / DAYS_PER_MONTH),
        _ratio(costs, revenue),
        _ratio(t[F["tickets_opened"]], endpoints),
        _ratio(revenue - costs, revenue),
    ]


def _trend(recent: float, recent_days: int, longer: float, longer_days: int) -> float:
    """Daily rate of the recent window over that of the longer one (1.0 = steady)."""
    return _ratio(recent / recent_days, longer / longer_days)


def _season(as_of: float) -> tuple[float, float]:
    """Where ``as_of`` falls in the year, as a point on a circle (31 Dec is next to 1 Jan):
    ticket load and project work follow the calendar."""
    angle = 2 * math.pi * ((as_of / DAY_SECONDS) % DAYS_PER_YEAR) / DAYS_PER_YEAR
    return math.sin(angle), math.cos(angle)


def _lifetime_purchases(state: ClientState, as_of: float) -> list[float]:
    """How many invoices and how much since the first, how long since the last, the rate
    per 30 days since the first, and the last's recency as a share of the client's buying
    life (near 0: buying now; near 1: went quiet long ago). The two ratios stay in range
    however long the history grows, where raw ages go beyond anything seen in training."""
    first, last = state.first_invoice, state.last_invoice
    if first is None or last is None:
        return [0.0, 0.0, NAN, NAN, NAN]
    life_days = (as_of - first) / DAY_SECONDS
    return [
        float(state.invoices),
        state.invoiced,
        (as_of - last) / DAY_SECONDS,
        _ratio(30.0 * state.invoices, max(life_days, 1.0)),
        _ratio(as_of - last, as_of - first),
    ]


def compute_features(state: ClientState, as_of: float) -> list[float]:
    """The feature vector (``FEATURE_NAMES`` order) of a client as of ``as_of`` (epoch s).

    ``as_of`` must not be before the client's latest applied event: the state cannot
    take events back out.
    """
    watermark = state.watermark
    if watermark is not None and as_of < watermark:
        raise ValueError(f"as_of {as_of} is before the client's latest event {watermark}")
    totals = window_totals(state.days, day_of(as_of), WINDOWS_DAYS, WIDTH)
    t30, t90, t180 = totals
    contract = state.contract
    active = contract is not None and contract.active
    included = contract.included_hours if contract is not None and active else 0.0
    endpoints = float(state.endpoints[1]) if state.endpoints is not None else 0.0
    vector: list[float] = []
    for days, window in zip(WINDOWS_DAYS, totals, strict=True):
        vector.extend(_windowed(window, days, endpoints, included))
    margin_90 = t90[F["revenue"]] - (
        t90[F["labour_cost"]] + t90[F["licence_cost"]] + t90[F["third_party_cost"]]
        + t90[F["credits"]]
    )  # fmt: skip
    if contract is not None and active:
        ends = contract.started_at + contract.term_months * DAYS_PER_MONTH * DAY_SECONDS
        term_remaining = max(0.0, (ends - as_of) / DAY_SECONDS)
    else:
        term_remaining = 0.0
    vector.extend(
        [
            _trend(t30[F["revenue"]], 30, t90[F["revenue"]], 90),
            _trend(t30[F["labour_hours"]], 30, t90[F["labour_hours"]], 90),
            _trend(t30[F["tickets_opened"]], 30, t90[F["tickets_opened"]], 90),
            _ratio(t30[F["satisfaction_sum"]], t30[F["satisfaction_count"]])
            - _ratio(t90[F["satisfaction_sum"]], t90[F["satisfaction_count"]]),
            _days_since(as_of, state.last_contact),
            _days_since(as_of, state.last_payment),
            _days_since(as_of, state.last_ticket),
            _ratio(t90[F["days_late_sum"]], t90[F["payment_count"]]),
            _ratio(t180[F["days_late_sum"]], t180[F["payment_count"]]),
            _ratio(t90[F["payments"]], t90[F["revenue"]]),
            _ratio(t90[F["billable_hours"]], t90[F["labour_hours"]]),
            margin_90,
            1.0 if active else 0.0,
            contract.monthly_recurring_value if contract is not None and active else 0.0,
            term_remaining,
            included,
            float(sum(1 for _, added in state.services.values() if added)),
            endpoints,
            _days_since(as_of, state.first_event_time),
            *_lifetime_purchases(state, as_of),
            *_season(as_of),
        ]
    )
    vector.extend(
        1.0 if state.services.get(service.value, ((0.0, ""), False))[1] else 0.0
        for service in ServiceType
    )
    return vector


def feature_dict(state: ClientState, as_of: float) -> dict[str, float]:
    """``compute_features`` keyed by feature name."""
    return dict(zip(FEATURE_NAMES, compute_features(state, as_of), strict=True))
