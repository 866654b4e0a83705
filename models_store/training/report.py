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

from features.definitions import FEATURE_NAMES
from models_store.training.evaluation import calibration_bins
from models_store.training.train import TrainingResult, describe, segment_tables
from models_store.training.tuning import objective_for

EXCLUDED = {"margin_ratio": "no revenue in the horizon", "margin_abs": "none: every row is kept"}
MODEL_LABELS = {
    "blend": "blend (deployed)",
    "xgboost": "XGBoost",
    "random_forest": "Random Forest",
    "persistence": "baseline: persistence",
    "portfolio_mean": "baseline: portfolio mean",
    "bg_nbd": "baseline: BG/NBD + Gamma-Gamma",
}
FEATURE_ORDER = {name: index for index, name in enumerate(FEATURE_NAMES)}
COLUMNS = ("R²", "MAE", "RMSE", "bias", "total", "Spearman")


def _cells(m: dict[str, float]) -> list[str]:
    """One metrics row as table cells (absent figures empty)."""

    def get(key: str, form: str) -> str:
        value = m.get(key)
        return "" if value is None or np.isnan(value) else format(value, form)

    return [get("r2", ".3f"), get("mae", ".4f"), get("rmse", ".4f"), get("bias", "+.4f"),
            get("total_error", "+.1%"), get("spearman", ".3f")]  # fmt: skip


def _rows(result: TrainingResult) -> list[tuple[str, dict[str, float]]]:
    """(label, metrics) of every model, baseline and comparison, in report order."""
    metrics = result.card.metrics
    rows = [(label, metrics[name]) for name, label in MODEL_LABELS.items() if name in metrics]
    rows += list(result.comparisons.items())
    return rows


def print_report(result: TrainingResult, console: Console) -> None:
    """The held-out figures as tables."""
    card = result.card
    data = card.training_data
    table = Table(title=f"{card.ref} — held-out test cutoffs ({data.rows['test']:,} rows); "
                        "total = sum predicted / sum actual − 1")  # fmt: skip
    table.add_column("model")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for label, m in _rows(result):
        table.add_row(label, *_cells(m))
    if result.oracle is not None:
        table.add_row("oracle (simulator, same rows)", f"{result.oracle['expected_r2']:.3f}",
                      f"{result.oracle['mae']:.4f}", "", "", "", "", style="dim")  # fmt: skip
    console.print(table)
    blend = card.metrics["blend"]
    better = 1.0 - blend["mae"] / card.metrics["persistence"]["mae"]
    better_rmse = 1.0 - blend["rmse"] / card.metrics["persistence"]["rmse"]
    metric = card.selection_metric.upper()
    tiers = card.risk_tiers
    lines = [
        f"loss: {objective_for(card.target).meaning}; tuning and blend chosen on validation "
        f"{metric}",
        f"blend weights: XGBoost {card.blend['xgboost']:.2f}, "
        f"Random Forest {card.blend['random_forest']:.2f}",
        f"MAE {better:.1%} and RMSE {better_rmse:.1%} better than persistence",
        f"risk tiers ({tiers.basis.replace('_', ' ')}): loss < {tiers.bounds[0]:g} ≤ at_risk < "
        f"{tiers.bounds[1]:.4g} ≤ healthy < {tiers.bounds[2]:.4g} ≤ strong",
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
    if result.baseline_note is not None:
        lines.append(f"BG/NBD + Gamma-Gamma baseline {result.baseline_note}")
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

    figure, axis = plt.subplots(figsize=(6, 6))
    bins = calibration_bins(actual, predicted)
    axis.plot(bins["predicted"], bins["actual"], marker="o", label="blend")
    ends = [min(bins["predicted"].min(), bins["actual"].min()),
            max(bins["predicted"].max(), bins["actual"].max())]  # fmt: skip
    axis.plot(ends, ends, color="black", linewidth=1, label="calibrated")
    axis.set(xlabel="mean predicted (decile of the prediction)", ylabel="mean actual",
             title="Calibration, test rows")  # fmt: skip
    axis.legend(loc="upper left")
    files["calibration"] = _save(figure, directory / "calibration.png")

    files["beeswarm"] = _save(_beeswarm(result), directory / "shap_beeswarm.png")

    files["html"] = directory / "report.html"
    files["html"].write_text(_html(result, files))
    return files


def _beeswarm(result: TrainingResult, top: int = 15, rows: int = 2_000) -> Figure:
    """SHAP beeswarm of the top features: each dot a test row, placed by its SHAP value,
    coloured by the feature's value (its rank among the rows: low blue, high red)."""
    names = [str(name) for name in result.importance.index[:top]]
    rng = np.random.default_rng(0)
    sample = rng.permutation(len(result.shap_values))[:rows]
    figure, axis = plt.subplots(figsize=(8, 0.4 * len(names) + 1.5))
    for position, name in enumerate(names):
        feature = FEATURE_ORDER[name]
        shap = result.shap_values[sample, feature]
        values = result.test_features[sample, feature]
        colour = np.argsort(np.argsort(np.nan_to_num(values, nan=-np.inf))) / max(len(values), 1)
        y = len(names) - 1 - position + rng.uniform(-0.3, 0.3, len(shap))
        axis.scatter(shap, y, c=colour, cmap="coolwarm", s=4, alpha=0.6)
    axis.set_yticks(range(len(names)), names[::-1])
    axis.axvline(0, color="grey", linewidth=0.5)
    axis.set(xlabel="SHAP value (XGBoost component)", title="Drivers, test rows")
    return figure


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _html(result: TrainingResult, files: dict[str, Path]) -> str:
    card = result.card
    rows = [
        f"<tr><td>{html.escape(label)}</td>{''.join(f'<td>{c}</td>' for c in _cells(m))}</tr>"
        for label, m in _rows(result)
    ]
    if result.oracle is not None:
        rows.append(f"<tr><td>oracle (simulator)</td><td>{result.oracle['expected_r2']:.3f}</td>"
                    f"<td>{result.oracle['mae']:.4f}</td>{'<td></td>' * 4}</tr>")  # fmt: skip
    segments = "".join(
        f"<h3>Errors by {name}</h3>{table.to_html(index=False, float_format='{:.4f}'.format)}"
        for name, table in segment_tables(result).items()
    )
    images = "".join(
        f'<img alt="{key}" src="data:image/png;base64,'
        f'{base64.b64encode(files[key].read_bytes()).decode()}">'
        for key in ("predicted_vs_actual", "calibration", "residuals", "importance", "beeswarm")
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
<table><tr><th>model</th>{"".join(f"<th>{c}</th>" for c in COLUMNS)}</tr>
{"".join(rows)}</table>
<p>total = sum predicted / sum actual − 1. Loss: {objective_for(card.target).meaning};
chosen on validation {card.selection_metric.upper()}.</p>
<p>{card.intervals.level:.0%} interval coverage on the test rows:
{card.intervals.test_coverage:.1%} (mean width {card.intervals.test_mean_width:.3f}).
Blend: XGBoost {card.blend["xgboost"]:.2f}, Random Forest {card.blend["random_forest"]:.2f}.</p>
{segments}{images}</body></html>
"""
