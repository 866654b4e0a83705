"""`profitstream train`: the CLI glue around ``models_store.training.train``, and the
simulator oracle's comparison when the history has one."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from features.simulation.oracle import HORIZON_PERIODS, oracle_expected_r2
from features.simulation.periods import PERIOD_DAYS
from models_store.errors import ModelNotFoundError, ModelStoreError
from models_store.registry import open_registry
from models_store.registry.card import Target, version_key
from models_store.scoring.scorer import Scorer
from models_store.training.cutoffs import parse_duration_days
from models_store.training.evaluation import regression_metrics
from models_store.training.report import print_report, write_report
from models_store.training.splits import SplitChoice
from models_store.training.train import OracleComparison, TrainingRequest, TrainingResult, train
from models_store.training.tuning import SearchBudget
from streams.cli.simulate import oracle_rows_path
from streams.errors import ProfitstreamError
from streams.settings import Settings

BUDGETS = {
    "standard": SearchBudget(),
    # For tests and first looks: a few candidates, small forests.
    "quick": SearchBudget(xgboost_candidates=4, forest_candidates=2, forest_trees=40),
}


@dataclass(frozen=True)
class TrainOptions:
    """What the user passed to `train`."""

    events: Path
    horizon: str
    cutoffs: str
    target: Target
    level: float
    split: SplitChoice
    validation_cutoffs: int | None
    test_cutoffs: int | None
    seed: int
    budget: str
    name: str
    version: str | None
    oracle: Path | None
    report_dir: Path | None
    register: bool
    until: float | None  # epoch seconds: the history's end
    tier_bounds: tuple[float, float, float] | None = None


def read_history(path: Path) -> pd.DataFrame:
    """The event log, or one clear error."""
    if not path.is_file():
        raise ProfitstreamError(
            f"no event history at {path}; export the topics or run "
            "`profitstream simulate --out history.parquet`"
        )
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise ProfitstreamError(f"{path} is not a readable Parquet event log: {exc}") from exc


def next_version(settings: Settings, name: str) -> str:
    """One patch above the highest registered version of ``name``; 1.0.0 for a new name."""
    try:
        latest = open_registry(settings.registry_uri).card(name).version
    except ModelNotFoundError:
        return "1.0.0"
    major, minor, patch = version_key(latest)
    return f"{major}.{minor}.{patch + 1}"


def oracle_comparison(oracle_rows: pd.DataFrame) -> OracleComparison:
    """The simulator oracle's figures on the held-out rows it predicted too (``oracle_rows``
    as ``simulate --out`` writes them), next to the blend's R² and the labels' agreement."""

    def compare(test: pd.DataFrame) -> dict[str, float] | None:
        # actual_x is the training label, actual_y the margin the simulator drew.
        joined = test.merge(oracle_rows, on=["client_id", "cutoff"], how="inner")
        if not len(joined):
            return None
        return {
            "expected_r2": oracle_expected_r2(
                joined["actual_x"].to_numpy(), joined["prediction"].to_numpy(),
                joined["estimate_variance"].to_numpy(),
            ),
            "mae": float(np.mean(np.abs(joined["actual_x"] - joined["prediction"]))),
            "rows": float(len(joined)),
            "blend_r2_same_rows": regression_metrics(
                joined["actual_x"].to_numpy(), joined["blend"].to_numpy())["r2"],
            "label_max_abs_difference": float(
                np.max(np.abs(joined["actual_x"] - joined["actual_y"]))),
        }  # fmt: skip

    return compare


def champion_ref(settings: Settings, name: str) -> tuple[str | None, str]:
    """The champion to compare a new version with: the deployed one (control log, when a
    broker is configured), else the registry's ``champion`` alias of the model; and why."""
    from streams.cli.score import deployed_champion

    try:
        deployed, why = deployed_champion(settings)
    except ProfitstreamError as exc:
        deployed, why = None, str(exc)
    if deployed is not None:
        return deployed, why
    try:
        version = open_registry(settings.registry_uri).aliases(name).get("champion")
    except ModelNotFoundError:
        version = None
    if version is None:
        return None, f"no champion of {name} ({why}; no registry alias)"
    return f"{name}@{version}", "the registry's champion alias"


def compare_with_champion(result: TrainingResult, settings: Settings) -> str:
    """Score the new version's test rows with the current champion and add its figures to
    the report (``result.comparisons``); say what was compared, or why not."""
    ref, why = champion_ref(settings, result.card.name)
    if ref is None:
        return f"champion: none to compare with ({why})"
    try:
        with tempfile.TemporaryDirectory() as cache:
            scorer = Scorer.from_registry(open_registry(settings.registry_uri), ref, Path(cache))
    except ModelStoreError as exc:
        return f"champion {ref}: not compared; it does not load here: {exc}"
    card = scorer.card
    if (card.target, card.horizon_days) != (result.card.target, result.card.horizon_days):
        return (f"champion {ref}: not compared; it predicts {card.target} over "
                f"{card.horizon_days} days")  # fmt: skip
    predicted = scorer.model.predict(result.test_features)
    result.comparisons[f"champion {ref}"] = regression_metrics(
        result.test["actual"].to_numpy(), predicted
    )
    return f"champion {ref} ({why}) scored on the same test rows"


def run_training(options: TrainOptions, settings: Settings, console: Console) -> None:
    """Train, print and write the report, and register the bundle unless asked not to."""
    history = read_history(options.events)
    oracle_file = options.oracle or oracle_rows_path(options.events, options.target)
    oracle = pd.read_parquet(oracle_file) if oracle_file.is_file() else None
    if options.oracle is not None and oracle is None:
        raise ProfitstreamError(f"no oracle predictions at {options.oracle}")
    version = options.version or next_version(settings, options.name)
    request = TrainingRequest(
        name=options.name, version=version, horizon_days=parse_duration_days(options.horizon),
        cutoffs=options.cutoffs, target=options.target, level=options.level,
        split=options.split, validation_cutoffs=options.validation_cutoffs,
        test_cutoffs=options.test_cutoffs, seed=options.seed, budget=BUDGETS[options.budget],
        allowed_lateness_s=settings.allowed_lateness_s, until=options.until,
        tier_bounds=options.tier_bounds,
    )  # fmt: skip
    # The oracle's rows are of its target (its file) and of a 90-day horizon: another
    # horizon's labels would be compared with the wrong truth.
    # Said after training: a refused history's error stays the only line.
    oracle_note = ""
    if oracle is not None and request.horizon_days != HORIZON_PERIODS * PERIOD_DAYS:
        oracle_note = (f"oracle: not compared; it predicts {HORIZON_PERIODS * PERIOD_DAYS} "
                       f"days, not {request.horizon_days}")  # fmt: skip
        oracle = None
    compare = oracle_comparison(oracle) if oracle is not None else None
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        result = train(history, request, settings.data_dir / "bundles", progress, oracle=compare)
    note = compare_with_champion(result, settings)
    print_report(result, console)
    for line in (oracle_note, note):
        if line:
            console.print(line, highlight=False)
    report_dir = options.report_dir or settings.data_dir / "reports" / result.card.ref.replace(
        "@", "-"
    )
    files = write_report(result, report_dir)
    console.print(f"report: {files['html']} (and report.json, PNG plots)")
    console.print(f"bundle: {result.bundle}")
    if options.register:
        card = open_registry(settings.registry_uri).register(result.bundle)
        console.print(f"registered {card.ref} in {settings.registry_uri}")
    else:
        console.print(f"not registered: `profitstream models register {result.bundle}`")
