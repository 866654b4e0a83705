"""`profitstream simulate`: draw a portfolio, write its event log and oracle, or replay it live."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from features.offline import LoggedMessage
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.oracle import (
    HORIZON_PERIODS,
    OracleTables,
    OracleTarget,
    oracle_summary,
    oracle_tables,
)
from features.simulation.portfolio import Portfolio, PortfolioKind, simulate
from streams.cli.endpoints import kafka_bootstrap
from streams.errors import ProfitstreamError
from streams.kafka.preflight import check_kafka
from streams.kafka.replay import replay_to_kafka
from streams.settings import Settings


@dataclass(frozen=True)
class SimulationRequest:
    """What the user asked `simulate` for."""

    clients: int
    months: int
    seed: int
    kind: PortfolioKind
    start: datetime
    malformed: float
    duplicates: float
    late: float
    oracle_draws: int
    out: Path | None
    to_kafka: bool
    rate: float


def oracle_path(history: Path) -> Path:
    """Where the oracle's figures are written: next to the event log."""
    return history.with_name(history.stem + ".oracle.json")


def oracle_rows_path(history: Path, target: OracleTarget = "margin_ratio") -> Path:
    """Where the oracle's per-(client, cutoff) predictions of ``target`` are written (read
    by `train`): ``NAME.oracle.parquet`` for the ratio, ``NAME.oracle.margin_abs.parquet``."""
    suffix = "" if target == "margin_ratio" else f".{target}"
    return history.with_name(f"{history.stem}.oracle{suffix}.parquet")


def run_simulation(request: SimulationRequest, settings: Settings, console: Console) -> None:
    """Draw the portfolio, then write and/or replay it as asked."""
    if request.out is None and not request.to_kafka:
        raise ProfitstreamError("nothing to do: pass --out history.parquet and/or --to-kafka")
    if request.out is not None and not request.out.parent.is_dir():
        raise ProfitstreamError(f"directory {request.out.parent} does not exist; create it first")
    bootstrap = kafka_bootstrap(settings) if request.to_kafka else []
    if request.to_kafka:
        check_kafka(bootstrap, settings.security)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("drawing the portfolio", total=None)
        portfolio = simulate(request.clients, request.months, request.seed,
                             request.start.timestamp(), request.kind)  # fmt: skip
        progress.update(task, description="writing events")
        messages = simulated_messages(portfolio, malformed=request.malformed,
                                      duplicate=request.duplicates, late=request.late)  # fmt: skip
        progress.remove_task(task)
    console.print(f"{len(messages):,} messages for {request.clients} {request.kind} clients "
                  f"over {request.months} periods of 30 days")  # fmt: skip
    if request.out is not None:
        history_frame(messages).to_parquet(request.out, index=False)
        console.print(f"event log: {request.out}")
        if request.oracle_draws > 0 and request.months > HORIZON_PERIODS:
            tables, figures = _oracle(portfolio, request, console)
            tables.ratio.to_parquet(oracle_rows_path(request.out), index=False)
            tables.absolute.to_parquet(oracle_rows_path(request.out, "margin_abs"), index=False)
            oracle_path(request.out).write_text(json.dumps(figures, indent=2))
            r2, mae = figures["oracle_expected_r2"], figures["oracle_mae"]
            money = figures["margin_abs"]
            console.print(
                f"oracle expected R² {r2:.3f} (MAE {mae:.3f}) of the margin ratio, "
                f"{money['oracle_expected_r2']:.3f} (MAE {money['oracle_mae']:,.0f}) of the "
                f"margin; {money['no_revenue_share']:.0%} of (client, cutoff) pairs have no "
                f"revenue in the horizon: {oracle_path(request.out)}"
            )
    if request.to_kafka:
        logged = [LoggedMessage(m.stream, m.key, m.value) for m in messages]  # type: ignore[arg-type]
        rate = asyncio.run(replay_to_kafka(logged, settings, bootstrap, request.rate))
        console.print(f"replayed {len(logged):,} messages at {rate:,.0f} messages/s")


def _oracle(
    portfolio: Portfolio, request: SimulationRequest, console: Console
) -> tuple[OracleTables, dict[str, Any]]:
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("oracle: re-drawing every horizon", total=portfolio.size)
        tables = oracle_tables(portfolio, request.oracle_draws,
                               progress=lambda n: progress.advance(task, n))  # fmt: skip
    return tables, {
        **oracle_summary(tables.ratio, request.oracle_draws),
        "clients": request.clients,
        "months": request.months,
        "seed": request.seed,
        "start": request.start.astimezone(UTC).isoformat(),
        "injected": {
            "malformed": request.malformed,
            "duplicates": request.duplicates,
            "late": request.late,
        },
        "kind": request.kind,
        "margin_abs": oracle_summary(tables.absolute, request.oracle_draws, "margin_abs"),
    }
