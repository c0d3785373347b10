"""Plots of an Optuna study: optimisation history, parameter importances, sparsity vs accuracy."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import seaborn as sns  # noqa: E402


def plot_study(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Write PNGs for the study's complete trials; plots that need more trials are skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    written: list[Path] = []
    if not done:
        return written
    sns.set_theme(style="whitegrid", context="paper")
    ax = optuna.visualization.matplotlib.plot_optimization_history(study)
    ax.set_ylabel("mean noisy-validation accuracy")
    written.append(_save(ax.figure, out_dir / "history.png"))
    varying = [p for p in done[0].params if len({repr(t.params.get(p)) for t in done}) > 1]
    if len(done) >= 2 and varying:
        try:
            ax = optuna.visualization.matplotlib.plot_param_importances(study)
            written.append(_save(ax.figure, out_dir / "importances.png"))
        except (RuntimeError, ValueError):
            pass  # too few distinct trials for an importance estimate
    if any("mask.sparsity" in t.params for t in done):
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        xs = [t.params["mask.sparsity"] for t in done if "mask.sparsity" in t.params]
        ys = [t.value for t in done if "mask.sparsity" in t.params]
        sns.scatterplot(x=xs, y=ys, ax=ax)
        ax.set_xlabel("mask sparsity (fraction of classifier edges masked)")
        ax.set_ylabel("mean noisy-validation accuracy")
        ax.set_title(f"{study.study_name}: sparsity sensitivity")
        written.append(_save(fig, out_dir / "sparsity.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
