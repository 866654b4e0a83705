"""How close can a learnt model get to the simulator's oracle? The same XGBoost, on the
same purged split and held-out rows as `profitstream train`, fed (1) the features,
(2) the features plus the simulator's hidden per-client traits and state at the cutoff
(what the oracle knows), (3) the hidden traits and state alone. If (2) stays well below
the oracle, the gap is the learner's (rows, noise), not missing features.

Needs the history written by `profitstream simulate --out H.parquet` (its oracle rows
beside it) and that command's --clients/--months/--seed/--start, to redraw the traits.

Run: `.venv/bin/python -m benchmarks.learnability --history H.parquet --clients 2000
--months 24 --seed 11`
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from xgboost import XGBRegressor

from features.definitions import FEATURE_NAMES
from features.simulation.oracle import oracle_expected_r2
from features.simulation.portfolio import PERIOD_S, simulate
from models_store.training.dataset import build_training_set, cutoff_schedule, load_history
from models_store.training.evaluation import regression_metrics
from models_store.training.splits import purged_split

HIDDEN = ["price_factor", "neediness", "complexity", "creep", "bills_overage", "cost_rate",
          "growth", "satisfaction", "creep_hours", "periods_left", "endpoints"]  # fmt: skip


def hidden_state(clients: int, months: int, seed: int, start: float) -> pd.DataFrame:
    """Per (client, period boundary): the traits and state the oracle draws from."""
    rows = []
    for client_id, traits, _, states in simulate(clients, months, seed, start).clients:
        for k, dyn in enumerate(states):
            rows.append((client_id, start + k * PERIOD_S, traits.price_factor,
                         traits.neediness, traits.complexity, traits.creep,
                         float(traits.bills_overage), traits.cost_rate, traits.growth,
                         dyn.satisfaction, dyn.creep_hours, dyn.periods_left,
                         dyn.endpoints))  # fmt: skip
    return pd.DataFrame(rows, columns=["client_id", "cutoff", *HIDDEN])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--months", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--start", default="2024-01-01")
    args = parser.parse_args()
    console = Console()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC).timestamp()
    oracle = pd.read_parquet(args.history.with_name(args.history.stem + ".oracle.parquet"))
    with console.status("features and labels at every cutoff"):
        history = load_history(pd.read_parquet(args.history))
        horizon = 90 * 86_400.0
        split = purged_split(cutoff_schedule("30d", history, horizon), horizon)
        if split is None:
            raise SystemExit("the history is too short for a time split with 3 + 3 cutoffs")
        dataset = build_training_set(history, split.train + split.test, horizon)
    frame = dataset.labelled.merge(hidden_state(args.clients, args.months, args.seed, start),
                                   on=["client_id", "cutoff"])  # fmt: skip
    train = frame[frame["cutoff"].isin(split.train)]
    test = frame[frame["cutoff"].isin(split.test)].merge(oracle, on=["client_id", "cutoff"])
    y = test["label"].to_numpy()
    table = Table(title=f"held-out test cutoffs, {len(test):,} rows, XGBoost (absolute error)")
    for column in ("inputs", "R²", "MAE"):
        table.add_column(column, justify="left" if column == "inputs" else "right")
    features = list(FEATURE_NAMES)
    for label, columns in (("features", features), ("features + hidden traits/state",
                           features + HIDDEN), ("hidden traits/state only", HIDDEN)):  # fmt: skip
        with console.status(f"fitting on {label}"):
            model = XGBRegressor(objective="reg:absoluteerror", n_estimators=450, max_depth=4,
                                 learning_rate=0.05, min_child_weight=5, subsample=0.8,
                                 colsample_bytree=0.8, random_state=7, n_jobs=2)  # fmt: skip
            model.fit(train[columns].to_numpy(), train["label"].to_numpy())
            figures = regression_metrics(y, model.predict(test[columns].to_numpy()))
        table.add_row(label, f"{figures['r2']:.3f}", f"{figures['mae']:.4f}")
    persistence = np.where(test["persistence"].isna(), train["label"].mean(), test["persistence"])
    figures = regression_metrics(y, persistence)
    table.add_row("baseline: persistence", f"{figures['r2']:.3f}", f"{figures['mae']:.4f}")
    expected = oracle_expected_r2(y, test["prediction"].to_numpy(),
                                  test["estimate_variance"].to_numpy())  # fmt: skip
    mae = float(np.mean(np.abs(y - test["prediction"].to_numpy())))
    table.add_row("oracle (exact generative model)", f"{expected:.3f}", f"{mae:.4f}")
    console.print(table)


if __name__ == "__main__":
    main()
