"""Does `train` work on portfolios unlike the simulator's contract MSP? Three kinds —
contract MSP clients, transactional buyers (zero-inflated money), a short (9-month)
history — each trained with the defaults and the one documented option for money,
`--target margin_abs`; the deployed blend beside persistence, the portfolio mean and the
BG/NBD + Gamma-Gamma baseline on the same held-out rows: MAE, RMSE, the total predicted
against the total actual, Spearman, and the split `train` chose.

Run: `.venv/bin/python -m benchmarks.portfolio_kinds [--budget standard|quick]`
(writes benchmarks/results/portfolio_kinds.json and .png).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from features.simulation.messages import history_frame, simulated_messages
from features.simulation.portfolio import PortfolioKind, simulate
from models_store.training.train import TrainingRequest, train
from models_store.training.tuning import SearchBudget

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
BUDGETS = {"standard": SearchBudget(), "quick": SearchBudget(8, 4, 100)}
MODELS = ("blend", "persistence", "portfolio_mean", "bg_nbd")
RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Case:
    """One portfolio to train on."""

    name: str
    kind: PortfolioKind
    clients: int
    months: int
    seed: int


CASES = (
    Case("contract MSP", "contract", 1_000, 24, 31),
    Case("transactional", "transactional", 2_000, 18, 32),
    Case("short history (9 months)", "mixed", 1_500, 9, 33),
)


def run(case: Case, budget: SearchBudget) -> dict[str, object]:
    """Simulate, train on margin_abs with defaults otherwise, and keep the test figures."""
    log = history_frame(simulated_messages(simulate(case.clients, case.months, case.seed,
                                                    START, case.kind)))  # fmt: skip
    request = TrainingRequest(name="bench", version="1.0.0", target="margin_abs", budget=budget)
    with tempfile.TemporaryDirectory() as out:
        result = train(log, request, Path(out))
    card = result.card
    return {
        "case": case.name, "kind": case.kind, "clients": case.clients, "months": case.months,
        "seed": case.seed, "split": card.training_data.split,
        "split_reason": card.training_data.split_reason, "rows": card.training_data.rows,
        "metrics": {name: card.metrics[name] for name in MODELS if name in card.metrics},
        "baseline_note": result.baseline_note,
        "blend": card.blend, "tiers": card.risk_tiers.model_dump(mode="json"),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="standard")
    args = parser.parse_args()
    console = Console()
    results = []
    with Progress(console=console) as progress:
        task = progress.add_task("training on each portfolio", total=len(CASES))
        for case in CASES:
            results.append(run(case, BUDGETS[args.budget]))
            progress.advance(task)
    table = Table(title=f"margin_abs, {args.budget} budget: held-out test rows")
    for column in ("portfolio", "split", "model", "MAE", "RMSE", "total", "Spearman"):
        table.add_column(column, justify="left" if column in ("portfolio", "split", "model")
                         else "right")  # fmt: skip
    for result in results:
        metrics = result["metrics"]
        assert isinstance(metrics, dict)
        for name, m in metrics.items():
            table.add_row(str(result["case"]), str(result["split"]), name, f"{m['mae']:.1f}",
                          f"{m['rmse']:.1f}", f"{m.get('total_error', float('nan')):+.1%}",
                          f"{m.get('spearman', float('nan')):.3f}")  # fmt: skip
        blend = metrics["blend"]
        others = [n for n in ("persistence", "bg_nbd") if n in metrics]
        beats = all(blend["mae"] < metrics[n]["mae"] and blend["rmse"] < metrics[n]["rmse"]
                    for n in others)  # fmt: skip
        result["beats_baselines_on_mae_and_rmse"] = beats
        result["total_within_10_percent"] = abs(blend.get("total_error", 1.0)) <= 0.10
        table.add_section()
    console.print(table)
    for result in results:
        console.print(
            f"{result['case']}: beats {', '.join(('persistence', 'BG/NBD'))} on MAE "
            f"and RMSE: {result['beats_baselines_on_mae_and_rmse']}; total within "
            f"±10%: {result['total_within_10_percent']}"
            + (f" ({result['baseline_note']})" if result["baseline_note"] else "")
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "portfolio_kinds.json").write_text(json.dumps(results, indent=2) + "\n")
    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4))
    for axis, result in zip(axes, results, strict=True):
        metrics = result["metrics"]
        assert isinstance(metrics, dict)
        names = list(metrics)
        axis.bar(names, [metrics[n]["mae"] for n in names])
        axis.set(title=str(result["case"]), ylabel="MAE (money over 90 days)")
        axis.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    figure.savefig(RESULTS / "portfolio_kinds.png", dpi=100)
    console.print(f"written: {RESULTS / 'portfolio_kinds.json'}, {RESULTS / 'portfolio_kinds.png'}")


if __name__ == "__main__":
    main()
