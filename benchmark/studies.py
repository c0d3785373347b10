"""Tuning searches and grids as Optuna studies, executed by workers against shared storage.

A study's definition lives in the storage itself (study user attribute ``nlb``), so a worker needs
only the study name and the storage URL: ``runner.py worker --study NAME --storage URL``.

- One machine: SQLite under the runs directory (``sqlite:///runs/optuna.db``), the default.
- Several machines: PostgreSQL (``postgresql://user@host/db``); every worker runs the same command.
- Heartbeats: a worker that dies mid-trial stops beating; after the grace period another worker
  marks the trial failed and Optuna's RetryFailedTrialCallback re-queues its parameters. The run
  store's per-run lock and config-hash dedup make every cell x seed end as exactly one finished
  run (a retried run resumes from the dead worker's last checkpoint).

The tuning objective is the noisy-validation accuracy at the selected epoch (val_noisy/acc_best),
averaged over the seeds; the test set is never read. Tuning seeds start at TUNE_SEED_BASE so that
a preset's seeds (0, 1, 2, ...) are fresh with respect to tuning.
"""
from __future__ import annotations

import copy
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from benchmark.config import RunConfig, UsageError, apply_override, config_from_dict

ATTR = "nlb"
# a dead worker's trial is re-queued GRACE_S seconds after its last heartbeat (env overrides: tests)
HEARTBEAT_S = int(os.environ.get("NLB_HEARTBEAT_S", "10"))
GRACE_S = int(os.environ.get("NLB_GRACE_S", "60"))
TUNE_SEED_BASE = 1000
PRUNERS = ("median", "hyperband", "none")
WORKER = f"{socket.gethostname()}:{os.getpid()}"
"""Recorded on every trial, so a trial can be traced to the worker that ran it."""
optuna.logging.set_verbosity(optuna.logging.WARNING)


def default_storage(runs_dir: str | Path) -> str:
    return f"sqlite:///{Path(runs_dir).resolve() / 'optuna.db'}"


_STORAGES: dict[str, optuna.storages.BaseStorage] = {}


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """One storage (one connection pool) per URL and process: PostgreSQL limits connections."""
    if url not in _STORAGES:
        _STORAGES[url] = _open_storage(url)
    return _STORAGES[url]


def _open_storage(url: str) -> optuna.storages.BaseStorage:
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        raise UsageError(f"unsupported storage '{url}'. Valid: sqlite:///FILE, postgresql://USER@HOST/DB")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        Path(url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 120}}  # several local workers share one file
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5 and documented as such
        warnings.simplefilter("ignore")
        return optuna.storages.RDBStorage(
            url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3))


def _pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UsageError(f"unknown pruner '{name}'. Valid: {', '.join(PRUNERS)}")


# ----- search spaces ------------------------------------------------------------------------

def parse_param(text: str) -> tuple[str, Any]:
    """``name=low:high`` (float or int range), ``name=low:high:log``, or ``name=a,b,c`` (choices)."""
    name, sep, spec = text.partition("=")
    if not sep or not name:
        raise UsageError(f"--param expects name=low:high or name=a,b,c, got '{text}'")
    parts = spec.split(":")
    def num(s):
        return int(s) if s.lstrip("-").isdigit() else float(s)
    try:
        if len(parts) in (2, 3):
            lo, hi = num(parts[0]), num(parts[1])
            if lo >= hi:
                raise UsageError(f"--param {name}: low must be below high")
            return name.strip(), ([lo, hi, "log"] if len(parts) == 3 and parts[2] == "log" else [lo, hi])
        choices = [c.strip() for c in spec.split(",") if c.strip()]
        return name.strip(), {"choices": [_scalar(c) for c in choices]}
    except ValueError:
        raise UsageError(f"--param {name}: cannot parse '{spec}'") from None


def _scalar(s: str) -> Any:
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(s.lower(), s)


def method_space(method: str) -> dict[str, Any]:
    """The method's declared search space, normalised to JSON (lists, {"choices": [...]})."""
    from methods import get_method
    out = {}
    for name, spec in get_method(method).search_space().items():
        out[name] = {"choices": list(spec)} if isinstance(spec, list) else list(spec)
    return out


def suggest(trial: optuna.Trial, name: str, spec: Any) -> Any:
    if isinstance(spec, dict):
        return trial.suggest_categorical(name, spec["choices"])
    lo, hi = spec[0], spec[1]
    log = len(spec) > 2 and spec[2] == "log"
    if isinstance(lo, int) and isinstance(hi, int):
        return trial.suggest_int(name, lo, hi, log=log)
    return trial.suggest_float(name, float(lo), float(hi), log=log)


# ----- creating studies ---------------------------------------------------------------------

def create_tune_study(name: str, storage: str, base: RunConfig, space: dict[str, Any], *,
                      seeds: int, trials: int, pruner: str, sampler_seed: int = 0) -> optuna.Study:
    if not space:
        raise UsageError(f"method '{base.method}' declares no search space; give --param name=low:high")
    if base.val_frac <= 0:
        raise UsageError("tuning needs a noisy validation split (val_frac > 0): the test set never chooses")
    _pruner(pruner)
    for pname in space:  # every parameter must be a settable config key
        apply_override(copy.deepcopy(base), pname, _probe_value(space[pname]))
    study = optuna.create_study(study_name=name, storage=open_storage(storage), direction="maximize",
                                load_if_exists=True)
    attrs = {"kind": "tune", "base": base.to_dict(), "space": space,
             "seeds": [TUNE_SEED_BASE + k for k in range(seeds)], "trials": trials, "pruner": pruner,
             "sampler_seed": sampler_seed, "objective": "mean over seeds of val_noisy/acc_best"}
    _set_definition(study, attrs)
    return study


def create_grid_study(name: str, storage: str, cfgs: list[RunConfig], preset: str) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=open_storage(storage), direction="maximize",
                                load_if_exists=True)
    _set_definition(study, {"kind": "grid", "preset": preset, "cells": [c.to_dict() for c in cfgs]})
    return study


def _set_definition(study: optuna.Study, attrs: dict[str, Any]) -> None:
    old = study.user_attrs.get(ATTR)
    if old is not None and old != attrs:
        raise UsageError(f"study '{study.study_name}' already exists with another definition; "
                         f"pick a new --study name")
    study.set_user_attr(ATTR, attrs)


def _probe_value(spec: Any) -> Any:
    return spec["choices"][0] if isinstance(spec, dict) else spec[0]


def load_definition(name: str, storage: str) -> tuple[optuna.Study, dict[str, Any]]:
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:
        raise UsageError(f"no study '{name}' in {storage}") from None
    if ATTR not in study.user_attrs:
        raise UsageError(f"study '{name}' was not created by this suite")
    return study, study.user_attrs[ATTR]


# ----- workers ------------------------------------------------------------------------------

def _tune_objective(defn: dict[str, Any], runs_dir: str, wandb: str | None):
    from benchmark.train import run

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", WORKER)
        base = config_from_dict(defn["base"])
        params = {n: suggest(trial, n, s) for n, s in defn["space"].items()}
        values, run_ids = [], []
        for k, seed in enumerate(defn["seeds"]):
            cfg = copy.deepcopy(base)
            cfg.seed = seed
            for n, v in params.items():
                apply_override(cfg, n, v)

            def report(row, k=k):
                val = row.get("val_noisy/acc", math.nan)
                trial.report(val, step=k * cfg.epochs + int(row["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at seed {seed}, epoch {int(row['epoch'])}")

            res = run(cfg, runs_dir, progress=report, wandb=wandb)
            values.append(res["val_noisy/acc_best"])
            run_ids.append(res["run_id"])
            trial.set_user_attr("run_ids", run_ids)
        trial.set_user_attr("val_per_seed", values)
        return float(sum(values) / len(values))

    return objective


def _grid_objective(defn: dict[str, Any], runs_dir: str, wandb: str | None):
    from benchmark.train import run

    def objective(trial: optuna.Trial) -> float:
        i = trial.suggest_categorical("cell", list(range(len(defn["cells"]))))
        trial.set_user_attr("worker", WORKER)
        res = run(config_from_dict(defn["cells"][i]), runs_dir, wandb=wandb)
        trial.set_user_attr("run_id", res["run_id"])
        v = res.get("val_noisy/acc_best")
        return float(v) if v is not None and math.isfinite(v) else 0.0

    return objective


def remaining(study: optuna.Study, defn: dict[str, Any]) -> int:
    """Trials still needed: grid cells without a complete trial, or tuning trials not yet done."""
    done_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False)
    if defn["kind"] == "grid":
        done = {t.params.get("cell") for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
        return len(defn["cells"]) - len(done)
    return defn["trials"] - sum(1 for t in trials if t.state in done_states)


def work(name: str, storage: str, runs_dir: str, wandb: str | None = None, *,
         poll_s: float = 2.0, log=print) -> int:
    """Execute trials of a study until it is done. Returns the number of trials this worker ran."""
    study, defn = load_definition(name, storage)
    n_cells = len(defn["cells"]) if defn["kind"] == "grid" else 0
    ran = 0
    while True:
        need = remaining(study, defn)
        if need <= 0:
            return ran
        running = [t for t in study.get_trials(deepcopy=False)
                   if t.state == optuna.trial.TrialState.RUNNING]
        if defn["kind"] == "grid":
            sampler = optuna.samplers.GridSampler({"cell": list(range(n_cells))})
            objective = _grid_objective(defn, runs_dir, wandb)
        else:
            # a per-worker TPE seed, recorded on every trial it suggests: reproducible, and two
            # workers starting together do not suggest the same points
            seed = defn["sampler_seed"] + len(study.get_trials(deepcopy=False))
            log(f"worker {WORKER}: TPE seed {seed}")
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
            objective = _tune_objective(defn, runs_dir, wandb)
        study = optuna.load_study(study_name=name, storage=open_storage(storage), sampler=sampler,
                                  pruner=_pruner(defn.get("pruner", "none")))
        before = len(study.get_trials(deepcopy=False))
        if need > len(running):
            cap = optuna.study.MaxTrialsCallback(
                defn["trials"], states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)) \
                if defn["kind"] == "tune" else _GridDone(defn)
            study.optimize(objective, n_trials=need - len(running), callbacks=[cap], catch=())
            ran += len(study.get_trials(deepcopy=False)) - before
        else:
            # the rest is running elsewhere; if a worker died, its heartbeat goes stale and this
            # re-queues its trial (RetryFailedTrialCallback) so the loop picks it up
            optuna.storages.fail_stale_trials(study)
            time.sleep(poll_s)


class _GridDone:
    """Stop a worker once every grid cell has a complete trial."""

    def __init__(self, defn: dict[str, Any]):
        self.defn = defn

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if remaining(study, self.defn) <= 0:
            study.stop()


def best(name: str, storage: str) -> dict[str, Any]:
    study, defn = load_definition(name, storage)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise UsageError(f"study '{name}' has no complete trial yet")
    b = study.best_trial
    return {"study": name, "kind": defn["kind"], "method": defn.get("base", {}).get("method"),
            "best_value": b.value, "best_params": b.params, "best_trial": b.number,
            "objective": defn.get("objective", ""),
            "trials": [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
                       for t in study.get_trials(deepcopy=False)]}
