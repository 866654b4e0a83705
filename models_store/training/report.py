"""The training report: a rich summary in the terminal, JSON, and an HTML page with plots."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from models_store.training.train import TrainingResult, describe

EXCLUDED = {"margin_ratio": "no revenue in the horizon", "margin_abs": "no money in the horizon"}
MODEL_LABELS = {
    "blend": "blend (deployed)",
    "xgboost": "XGBoost",
    "random_forest": "Random Forest",
    "persistence": "baseline: persistence",
    "portfolio_mean": "baseline: portfolio mean",
}


def print_report(result: TrainingResult, console: Console) -> None:
    """The held-out figures as tables."""
    card = result.card
    data = card.training_data
    table = Table(title=f"{card.ref} — held-out test cutoffs ({data.rows['test']:,} rows)")
    for column in ("model", "R²", "MAE", "RMSE", "bias"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, label in MODEL_LABELS.items():
        m = card.metrics[name]
        table.add_row(label, f"{m['r2']:.3f}", f"{m['mae']:.4f}", f"{m['rmse']:.4f}",
                      f"{m['bias']:+.4f}")  # fmt: skip
    if result.oracle is not None:
        table.add_row("oracle (simulator, same rows)", f"{result.oracle['expected_r2']:.3f}",
                      f"{result.oracle['mae']:.4f}", "", "", style="dim")  # fmt: skip
    console.print(table)
    blend = card.metrics["blend"]
    better = 1.0 - blend["mae"] / card.metrics["persistence"]["mae"]
    lines = [
        f"blend weights: XGBoost {card.blend['xgboost']:.2f}, "
        f"Random Forest {card.blend['random_forest']:.2f} (chosen on validation)",
        f"MAE {better:.1%} better than persistence",
        f"{card.intervals.level:.0%} interval: held-out coverage "
        f"{card.intervals.test_coverage:.1%}, mean width {card.intervals.test_mean_width:.3f}",
        f"rows: train {data.rows['train']:,}, validation {data.rows['validation']:,}, test "
        f"{data.rows['test']:,}; left out ({EXCLUDED[card.target]}): "
        f"{data.rows['excluded']:,}; split: {data.split} ({data.split_reason})",
        f"drivers: {card.explanations['cost_us_per_row_batch']:.0f} µs/row in batches, "
        f"{card.explanations['cost_us_single_row']:.0f} µs for one row",
        f"time: {result.timings['total_s']:.0f} s (features {result.timings['features_s']:.0f} s, "
        f"tuning {result.timings['tuning_s']:.0f} s, fitting {result.timings['fitting_s']:.0f} s)",
    ]
    if result.oracle is not None:
        gap = result.oracle["expected_r2"] - blend["r2"]
        lines.insert(1, f"R² gap to the oracle: {gap:.3f}")
    for line in lines:
        console.print(line)
    top = Table(title="global importance (mean |SHAP|, XGBoost component)")
    top.add_column("feature")
    top.add_column("mean |SHAP|", justify="right")
    for feature, value in result.importance.head(10).items():
        top.add_row(str(feature), f"{value:.4f}")
    console.print(top)


def write_report(result: TrainingResult, directory: Path) -> dict[str, Path]:
    """``report.json``, three PNG plots and ``report.html`` (plots inline) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"json": directory / "report.json"}
    files["json"].write_text(json.dumps(describe(result), indent=2, default=str) + "\n")
    test = result.test
    actual, predicted = test["actual"].to_numpy(), test["blend"].to_numpy()

    figure, axis = plt.subplots(figsize=(6, 6))
    axis.scatter(actual, predicted, s=6, alpha=0.4)
    low, high = np.percentile(np.concatenate([actual, predicted]), [0.5, 99.5])
    axis.plot([low, high], [low, high], color="black", linewidth=1)
    axis.set(xlim=(low, high), ylim=(low, high), xlabel="actual margin")
    axis.set(ylabel="predicted margin (blend)", title="Predicted vs actual, test cutoffs")
    files["predicted_vs_actual"] = _save(figure, directory / "predicted_vs_actual.png")

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    residual = actual - predicted
    left.hist(np.clip(residual, *np.percentile(residual, [0.5, 99.5])), bins=60)
    left.set(xlabel="actual − predicted", ylabel="rows", title="Residuals")
    order = np.argsort(predicted)
    left_bound = test["lower"].to_numpy()[order]
    right_bound = test["upper"].to_numpy()[order]
    right.fill_between(np.arange(order.size), left_bound, right_bound, alpha=0.3,
                       label=f"{result.card.intervals.level:.0%} interval")  # fmt: skip
    right.scatter(np.arange(order.size), actual[order], s=3, color="black", label="actual")
    right.set(ylim=(low, high), xlabel="rows by prediction", title="Intervals on the test rows")
    right.legend(loc="upper left")
    files["residuals"] = _save(figure, directory / "residuals.png")

    figure, axis = plt.subplots(figsize=(7, 6))
    top = result.importance.head(20)[::-1]
    axis.barh(list(top.index), top.to_numpy())
    axis.set(xlabel="mean |SHAP value|", title="Global importance (XGBoost component)")
    figure.tight_layout()
    files["importance"] = _save(figure, directory / "shap_importance.png")

    files["html"] = directory / "report.html"
    files["html"].write_text(_html(result, files))
    return files


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _html(result: TrainingResult, files: dict[str, Path]) -> str:
    card = result.card
    rows = []
    for name, label in MODEL_LABELS.items():
        m = card.metrics[name]
        rows.append(f"<tr><td>{label}</td><td>{m['r2']:.3f}</td><td>{m['mae']:.4f}</td>"
                    f"<td>{m['rmse']:.4f}</td><td>{m['bias']:+.4f}</td></tr>")  # fmt: skip
    if result.oracle is not None:
        rows.append(f"<tr><td>oracle (simulator)</td><td>{result.oracle['expected_r2']:.3f}</td>"
                    f"<td>{result.oracle['mae']:.4f}</td><td></td><td></td></tr>")  # fmt: skip
    images = "".join(
        f'<img alt="{key}" src="data:image/png;base64,'
        f'{base64.b64encode(files[key].read_bytes()).decode()}">'
        for key in ("predicted_vs_actual", "residuals", "importance")
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(card.ref)} training report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}img{{max-width:100%;display:block;margin:1em 0}}</style>
</head><body><h1>{html.escape(card.ref)}</h1>
<p>Target: {card.target} over the next {card.horizon_days} days. Held-out test cutoffs:
{", ".join(c.date().isoformat() for c in card.training_data.test_cutoffs)}; split:
{card.training_data.split} ({html.escape(card.training_data.split_reason)}).</p>
<table><tr><th>model</th><th>R²</th><th>MAE</th><th>RMSE</th><th>bias</th></tr>
{"".join(rows)}</table>
<p>{card.intervals.level:.0%} interval coverage on the test rows:
{card.intervals.test_coverage:.1%} (mean width {card.intervals.test_mean_width:.3f}).
Blend: XGBoost {card.blend["xgboost"]:.2f}, Random Forest {card.blend["random_forest"]:.2f}.</p>
{images}</body></html>
"""
