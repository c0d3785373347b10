"""Publishing: from the run store to reports/ (pure functions of the long frame) and to one W&B
summary run (the plots of Optuna studies are study_plots.py)."""
from __future__ import annotations

import json
import platform
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.config import TUNE_SEED_BASE
from benchmark.errors import UsageError
from benchmark.store import load, resolve_mode, scrub

__all__ = ["build", "report", "log_to_wandb", "log_study_to_wandb"]


def build(runs_dir: str | Path, out_dir: str | Path, *, filters: dict[str, list[str]] | None = None,
          run_ids: set[str] | None = None, title: str = "Noisy-label benchmark", include_tuning: bool = False) -> Path:
    """The report of the selected finished runs in ``out_dir``; returns its index.html."""
    # imported here: reports/ loads matplotlib and seaborn (seconds), which a grid run with
    # --no-report and every study worker would pay for nothing
    from reports import build_report
    df, runs = load(runs_dir, filters, run_ids, include_tuning=include_tuning)
    if df.empty:
        stale, tuning = df.attrs.get("stale", {}), df.attrs.get("tuning", 0)
        why = "".join([f"; {len(stale)} of an older revision are left out (rerun their grid)" if stale else "",
                       f"; {tuning} on tuning seeds are left out (--include-tuning)" if tuning else ""])
        raise UsageError(f"no finished runs in {runs_dir} match the selection{why}: nothing to report")
    env = {"report built on": f"{platform.platform()} / Python {platform.python_version()}",
           "re-derive a figure": ("runner.py verify --runs STORE --sample 3 (or name "
                                 "run ids): retrains runs from their config.json and compares every recorded "
                                 "metric, bit for bit on the same numerics and CPU/GPU kernels, else within 1e-5")}
    stale = df.attrs.get("stale", {})
    if stale:
        shown = ", ".join(f"{rid} ({why})" for rid, why in sorted(stale.items())[:5])
        env["left out as stale"] = (f"{len(stale)} run(s) made by an older revision of their method or of the "
                                    f"training loop: {shown}{' ...' if len(stale) > 5 else ''}; rerun their grid "
                                    "to train the current revision")
    if df.attrs.get("tuning"):
        env["left out as tuning runs"] = (f"{df.attrs['tuning']} run(s) on tuning seeds (from {TUNE_SEED_BASE}): a "
                                          "study's trials, chosen on noisy validation, would bias a table; "
                                          "report --include-tuning shows them")
    return build_report(df, runs, Path(out_dir), title=title, env=env)


def log_to_wandb(index: Path, mode: str, root: Path, name: str) -> None:
    """One W&B run holding the report's tables (wandb.Table) and figures (wandb.Image)."""
    if mode == "disabled":
        return
    try:
        import wandb  # imported here: a second to import, and only a W&B mirror needs it
        run = wandb.init(project="noisy-label-bench", dir=str(root), mode=mode, name=f"report-{name}",
                         job_type="report", reinit="finish_previous",
                         settings=wandb.Settings(silent=True, console="off"))
        out = index.parent
        for csv in sorted((out / "tables").glob("*.csv")):
            run.log({f"table/{csv.stem}": wandb.Table(dataframe=pd.read_csv(csv))})
        for png in sorted((out / "figures").glob("*.png")):
            run.log({f"figure/{png.stem}": wandb.Image(str(png))})
        run.finish()
    except Exception as e:  # noqa: BLE001 — the report on disk is what matters
        warnings.warn(f"W&B report logging failed ({type(e).__name__}: {e}); the report on disk is complete",
                      RuntimeWarning, stacklevel=2)


def log_study_to_wandb(study_name: str, summary: dict[str, Any], plots: list[Path], mode: str,
                       root: Path) -> None:
    """One W&B run per finished study: its trials as a wandb.Table and its plots."""
    if mode == "disabled":
        return
    try:
        import wandb  # imported here: a second to import, and only a W&B mirror needs it
        run = wandb.init(project="noisy-label-bench", dir=str(root), mode=mode, name=f"study-{study_name}",
                         job_type="study", reinit="finish_previous", config=scrub({k: v for k, v in summary.items()
                                                                                   if k != "trials"}),
                         settings=wandb.Settings(silent=True, console="off"))
        rows = [[t["number"], t["state"], t["value"], json.dumps(t["params"], sort_keys=True)]
                for t in summary["trials"]]
        run.log({"study/trials": wandb.Table(columns=["number", "state", "value", "params"], data=rows)})
        for png in plots:
            run.log({f"study/{png.stem}": wandb.Image(str(png))})
        run.summary.update({"best_value": summary["best_value"], "best_trial": summary["best_trial"]})
        run.finish()
    except Exception as e:  # noqa: BLE001 — the study storage is what matters
        warnings.warn(f"W&B study logging failed ({type(e).__name__}: {e})", RuntimeWarning, stacklevel=2)


def report(runs: str, out: Path, filters: dict[str, list[str]], wandb: str | None,
           include_tuning: bool = False) -> Path:
    """``runner.py report``: the report of the store's finished runs (those matching ``filters``)
    in ``out``, mirrored to W&B; returns its index.html."""
    index = build(runs, out, filters=filters, include_tuning=include_tuning)
    log_to_wandb(index, resolve_mode(wandb), Path(runs), out.name)
    return index
