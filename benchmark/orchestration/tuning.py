"""Tuning a method's hyperparameters: an Optuna study on the noisy-validation objective
(studies.py), executed by local workers, then its plots and its W&B summary run."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from benchmark.config import RunConfig, build_config, cell, check_name, flatten, load_preset
from benchmark.errors import UsageError
from benchmark.orchestration.publish import log_study_to_wandb
from benchmark.orchestration.studies import (best, create_tune_study, load_definition, method_space,
                                             parse_param)
from benchmark.orchestration.study_plots import plot_study
from benchmark.orchestration.workers import run_workers
from benchmark.store import Store, resolve_mode, scrub
from benchmark.training import prepare

__all__ = ["tune_base", "tune"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def tune_base(flags: dict[str, Any], method: str, sets: list[str], config: str | None = None,
              preset: str | None = None) -> RunConfig:
    """The base config of a tuning study: ``flags`` (the command line's run settings), the TOML
    file ``config`` and ``sets``; or, with ``preset``, the preset's cell of ``method`` at the
    noise setting of the flags (the preset's only one when the flags name none), with the other
    flags and ``sets`` applied on top."""
    if not preset:
        return build_config(flags, sets, config)
    if config:
        raise UsageError("tune: give --preset or --config, not both")
    spec = load_preset(preset)
    flags = dict(flags)
    noise = flags.pop("noise", None)
    flags.pop("method", None)
    if noise is None:
        noises = spec.get("noise", [{}])
        if len(noises) != 1:
            labels = ", ".join(f"{n.get('kind', 'sym')} {n.get('rate', '')}".strip() for n in noises)
            raise UsageError(f"preset '{spec['name']}' has {len(noises)} noise settings ({labels}): "
                             f"choose one with --noise and --rate")
        noise = noises[0]
    extra = [f"{k}={v}" for k, v in flatten(flags).items()] + sets
    return cell(spec, method, noise, 0, extra)


def tune(cfg: RunConfig, storage: str, *, runs: str, params: list[str], only_params: bool, study: str | None,
         where: str, trials: int, seeds: int, pruner: str, sampler_seed: int, workers: int,
         wandb: str | None, log: Callable[[str], None] = _stderr) -> tuple[int, dict[str, Any]]:
    """Create the study of ``cfg``'s method (its declared search space, narrowed or replaced by
    ``params``), run ``workers`` workers until ``trials`` trials are done, plot it and mirror it
    to W&B. Returns (exit code, the study's best parameters and trials)."""
    prepare(cfg, Store(runs))  # every setting checked (and the data found) before the study exists
    if only_params and not params:
        raise UsageError("tune --only-params needs at least one --param")
    space = {} if only_params else method_space(cfg.method)
    space.update(dict(parse_param(p) for p in params))
    name = check_name(study or f"tune-{cfg.method}-{where}-{cfg.noise.kind}-{cfg.noise.rate:g}", "study name")
    create_tune_study(name, storage, cfg, space, seeds=seeds, trials=trials, pruner=pruner,
                      sampler_seed=sampler_seed)
    log(f"study '{name}' on {scrub(storage)}: {trials} trials x {seeds} seeds; space {space}")
    rc = run_workers(name, storage, runs, workers, wandb, log)
    b = best(name, storage)
    plots = plot_study(load_definition(name, storage)[0], Path(runs) / "studies" / name)
    log_study_to_wandb(name, b, plots, resolve_mode(wandb), Path(runs))
    return rc, b
