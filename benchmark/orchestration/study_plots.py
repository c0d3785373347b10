"""Plots of an Optuna study: optimisation history, parameter importances, sparsity vs accuracy
(with the spread of the tuning seeds), and the sparsity sensitivity of several studies side by side
(``runner.py report --study``: :func:`study_report`)."""
from __future__ import annotations

import contextlib
import fnmatch
import math
import warnings
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark.config import check_name  # noqa: E402
from benchmark.errors import UsageError  # noqa: E402
from benchmark.orchestration.studies import list_studies, load_definition  # noqa: E402

__all__ = ["plot_study", "plot_sensitivity", "sensitivity_points", "study_report"]


@contextlib.contextmanager
def _known_experimental() -> Iterator[None]:
    """Optuna marks its matplotlib plots experimental and warns on every call; the suite uses
    them knowingly (pinned Optuna version), so that one warning class is silenced here only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def plot_study(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Write PNGs for the study's complete trials; plots that need more trials are skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    written: list[Path] = []
    if not done:
        return written
    sns.set_theme(style="whitegrid", context="paper")
    with _known_experimental():
        ax = optuna.visualization.matplotlib.plot_optimization_history(study)
    ax.set_ylabel("mean noisy-validation accuracy")
    written.append(_save(ax.figure, out_dir / "history.png"))
    varying = [p for p in done[0].params if len({repr(t.params.get(p)) for t in done}) > 1]
    if len(done) >= 2 and varying:
        try:
            with _known_experimental():
                ax = optuna.visualization.matplotlib.plot_param_importances(study)
            written.append(_save(ax.figure, out_dir / "importances.png"))
        except (RuntimeError, ValueError):
            pass  # too few distinct trials for an importance estimate
    if any("mask.sparsity" in t.params for t in done):
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        _sensitivity(ax, study)
        ax.set_title(f"{study.study_name}: sparsity sensitivity")
        written.append(_save(fig, out_dir / "sparsity.png"))
    return written


def sensitivity_points(study: optuna.Study, param: str = "mask.sparsity") -> list[tuple[float, float, list[float]]]:
    """(value of ``param``, objective, per-seed objectives) of every complete trial, sorted by the
    value. The per-seed objectives (noisy-validation accuracy at the selected epoch, one per
    tuning seed) are the spread the mean hides."""
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.COMPLETE and param in t.params:
            seeds = [float(v) for v in t.user_attrs.get("val_per_seed", [t.value])]
            out.append((float(t.params[param]), float(t.value), seeds))
    return sorted(out)


def _sensitivity(ax, study: optuna.Study, param: str = "mask.sparsity") -> None:
    pts = sensitivity_points(study, param)
    for x, y, seeds in pts:
        ax.plot([x, x], [min(seeds), max(seeds)], color="0.7", lw=1, zorder=1)
        ax.scatter([x] * len(seeds), seeds, s=8, color="0.5", zorder=2)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22, color="C0", zorder=3, label="mean over seeds")
    best = max(pts, key=lambda p: p[1]) if pts else None
    if best:
        ax.scatter([best[0]], [best[1]], s=60, facecolors="none", edgecolors="C3", zorder=4, label="chosen")
    ax.set_xlabel("mask sparsity (fraction of classifier edges masked)")
    ax.set_ylabel("noisy-validation accuracy, selected epoch")


def plot_sensitivity(studies: list[optuna.Study], path: Path, param: str = "mask.sparsity") -> Path | None:
    """One panel per study: the objective against ``param`` over complete trials, each trial's
    tuning seeds as grey points and their range, the mean in blue, the chosen trial circled.
    None when no study has a complete trial that sets ``param``."""
    studies = [s for s in studies if sensitivity_points(s, param)]
    if not studies:
        return None
    sns.set_theme(style="whitegrid", context="paper")
    cols = min(4, len(studies))
    rows = math.ceil(len(studies) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, study in zip(axes.flat, studies):
        _sensitivity(ax, study, param)
        ax.set_title(study.study_name, fontsize=8)
        ax.set_xlabel("")  # one label per axis for the whole grid: per panel they overlap
        ax.set_ylabel("")
    fig.supxlabel(f"{param} (complete trials; pruned ones stopped early and are not shown)", fontsize=9)
    fig.supylabel("noisy-validation accuracy, selected epoch", fontsize=9)
    for ax in list(axes.flat)[len(studies):]:
        ax.set_visible(False)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def study_report(patterns: list[str], storage: str, out: Path | None, runs: str) -> tuple[list[str], list[Path]]:
    """``runner.py report --study``: the plots of every study named by ``patterns`` (names, or
    shell-style patterns such as 'verdict-*' matched against the storage's study names), and with
    several studies a side-by-side sparsity sensitivity. Returns (study names, plot paths)."""
    known = list_studies(storage)
    names: list[str] = []
    for pat in patterns:
        hits = sorted(n for n in known if fnmatch.fnmatchcase(n, pat)) if any(c in pat for c in "*?[") \
            else [pat]
        if not hits:
            raise UsageError(f"--study {pat}: no study matches. Studies: {', '.join(known) or 'none'}")
        # names become folders: one from a storage made elsewhere is checked like a typed one
        names += [check_name(n, "study name") for n in hits if n not in names]
    studies = [load_definition(n, storage)[0] for n in names]
    paths: list[Path] = []
    for n, study in zip(names, studies):
        paths += plot_study(study, (out / n if out and len(names) > 1 else out) or Path(runs) / "studies" / n)
    if len(studies) > 1:
        p = plot_sensitivity(studies, (out or Path(runs) / "studies") / "sparsity_sensitivity.png")
        paths += [p] if p else []
    return names, paths
