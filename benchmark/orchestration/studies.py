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
averaged over the seeds; the test set is never read. The pruner sees, per epoch, the best
noisy-validation accuracy so far (the quantity the objective takes), not the epoch's own. Tuning seeds start at TUNE_SEED_BASE so that
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

from benchmark import plugins
from benchmark import settings
from benchmark.config import TUNE_SEED_BASE, RunConfig, apply_override, check_config, config_from_dict
from benchmark.errors import StorageError, UsageError
from benchmark.store import scrub
from benchmark.training import run
from methods import get_method, resolve_hp
from methods.params import ConfigError

ATTR = "nlb"
PRUNERS = ("median", "hyperband", "none")
WORKER = f"{socket.gethostname()}:{os.getpid()}"
"""Recorded on every trial, so a trial can be traced to the worker that ran it."""
optuna.logging.set_verbosity(optuna.logging.WARNING)


def default_storage(runs_dir: str | Path) -> str:
    return f"sqlite:///{Path(runs_dir).resolve() / 'optuna.db'}"


_STORAGES: dict[str, optuna.storages.BaseStorage] = {}


def open_storage(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """One storage (one connection pool) per URL and process: PostgreSQL limits connections.

    ``create=False`` (read-only commands: ``tune --show``, ``report --study``, ``worker``) never
    creates an SQLite file: a missing one is a UsageError. Unreachable servers, wrong passwords
    and files that are not databases are a StorageError naming the (password-free) URL.
    """
    if url not in _STORAGES:
        _STORAGES[url] = _open_storage(url, create)
    return _STORAGES[url]


def _open_storage(url: str, create: bool) -> optuna.storages.BaseStorage:
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
        raise UsageError(f"unsupported storage '{scrub(url)}'. Valid: sqlite:///FILE, "
                         f"postgresql://USER@HOST[:PORT]/DB (password in PGPASSWORD or ~/.pgpass)")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        path = Path(url.split("///", 1)[-1])
        if not create and not path.is_file():
            raise UsageError(f"no study storage at {path}: nothing was tuned or run as a study with "
                             f"this --runs / --storage")
        if path.is_dir():
            raise UsageError(f"storage {url}: {path} is a directory, not an SQLite file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the directory of {path}: {e.strerror}") from None
        kwargs = {"connect_args": {"timeout": 120}}  # several local workers share one file
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5 and documented as such
            warnings.simplefilter("ignore")
            return optuna.storages.RDBStorage(
                # a dead worker's trial is re-queued grace_s() after its last heartbeat
                url, engine_kwargs=kwargs, heartbeat_interval=settings.heartbeat_s(),
                grace_period=settings.grace_s(),
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3))
    except Exception as e:  # noqa: BLE001 - driver, network, auth, file format: all unusable
        raise StorageError(f"cannot open study storage {scrub(url)}: {_reason(e)}") from None


def _reason(e: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's boilerplate or any password."""
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip().splitlines()
    return scrub(text[0] if text else type(e).__name__)


def storage_for_children(url: str) -> tuple[str, dict[str, str]]:
    """A storage URL without its password, and the environment that carries the password.

    Child processes get the password in PGPASSWORD (libpq reads it), never on their command line,
    where ``ps`` would show it to every user of the machine.
    """
    if not url.startswith("postgresql"):
        return url, {}
    from sqlalchemy.engine import URL, make_url
    u = make_url(url)
    if u.password is None:
        return url, {}
    bare = URL.create(u.drivername, username=u.username, host=u.host, port=u.port, database=u.database,
                      query=u.query)
    return bare.render_as_string(hide_password=False), {"PGPASSWORD": str(u.password)}


def _pruner(name: str, epochs: int = 1) -> optuna.pruners.BasePruner:
    """The study's pruner. Steps are epochs (seed k's epoch e is step k * epochs + e) and the
    value is the best noisy-validation accuracy so far. The median rule waits for 3 finished
    trials and never stops a trial in the first third of its first seed: an early epoch's
    accuracy says little about the epoch the run will select."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 3))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UsageError(f"unknown pruner '{name}'. Valid: {', '.join(PRUNERS)}")


# ----- search spaces ------------------------------------------------------------------------

def parse_param(text: str) -> tuple[str, Any]:
    """``name=low:high`` (float or int range), ``name=low:high:log``, or ``name=a,b,c`` (choices)."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name or not spec.strip():
        raise UsageError(f"--param expects name=low:high or name=a,b,c, got '{text}'")
    parts = spec.split(":")
    if len(parts) in (2, 3):
        if len(parts) == 3 and parts[2] != "log":
            raise UsageError(f"--param {name}: the third part may only be 'log', got '{parts[2]}'")
        try:
            lo, hi = (int(p) if p.strip().lstrip("-").isdigit() else float(p) for p in parts[:2])
        except ValueError:
            raise UsageError(f"--param {name}: '{spec}' is not low:high with two numbers") from None
        if lo >= hi:
            raise UsageError(f"--param {name}: low must be below high, got {lo}:{hi}")
        if len(parts) == 3 and lo <= 0:
            raise UsageError(f"--param {name}: a log range needs low > 0, got {lo}")
        return name, ([lo, hi, "log"] if len(parts) == 3 else [lo, hi])
    choices = [c.strip() for c in spec.split(",") if c.strip()]
    return name, {"choices": [_scalar(c) for c in choices]}


def check_space(base: RunConfig, space: dict[str, Any]) -> None:
    """Every bound and choice of ``space`` must be a valid value of its setting (UsageError)."""
    for pname, spec in space.items():
        values = spec["choices"] if isinstance(spec, dict) else spec[:2]
        for v in values:
            cfg = copy.deepcopy(base)
            try:
                apply_override(cfg, pname, v, f"--param {pname}")
                check_config(cfg)
                resolve_hp(cfg.method, cfg.hp, cfg.mask)
            except (UsageError, ConfigError) as e:
                raise UsageError(f"--param {pname}: {v!r} is not a valid value ({e})") from None


def _scalar(s: str) -> Any:
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(s.lower(), s)


def method_space(method: str) -> dict[str, Any]:
    """The method's declared search space, normalised to JSON (lists, {"choices": [...]})."""
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
    check_space(base, space)  # before the study exists: a refused search leaves nothing behind
    study = optuna.create_study(study_name=name, storage=open_storage(storage), direction="maximize",
                                load_if_exists=True)
    attrs = {"kind": "tune", "base": base.to_dict(), "space": space, "plugins": plugins.specs(),
             "seeds": [TUNE_SEED_BASE + k for k in range(seeds)], "trials": trials, "pruner": pruner,
             "sampler_seed": sampler_seed, "objective": "mean over seeds of val_noisy/acc_best"}
    _set_definition(study, attrs)
    return study


def create_grid_study(name: str, storage: str, cfgs: list[RunConfig], preset: str,
                      revisions: list[dict[str, int]] | None = None) -> optuna.Study:
    """The grid's study (reopened when it exists with the same definition). ``revisions``: per
    cell, the method revisions above 1 (None when there are none), part of the definition because
    they are part of each cell's run id: a study made before a bump has completed the cells of
    the older revision, not these."""
    study = optuna.create_study(study_name=name, storage=open_storage(storage), direction="maximize",
                                load_if_exists=True)
    defn = {"kind": "grid", "preset": preset, "cells": [c.to_dict() for c in cfgs], "plugins": plugins.specs()}
    if revisions:
        defn["revisions"] = revisions
    _set_definition(study, defn)
    return study


def _comparable(defn: dict[str, Any]) -> dict[str, Any]:
    """A definition with its configs rebuilt through RunConfig: a field added to the config since
    the study was made (at its default) does not make the same study look like another one."""
    d = dict(defn)
    d.pop("plugins", None)  # the plugins loaded when the study is reopened may differ; its cells may not
    if isinstance(d.get("base"), dict):
        d["base"] = config_from_dict(d["base"]).to_dict()
    if isinstance(d.get("cells"), list):
        d["cells"] = [config_from_dict(c).to_dict() for c in d["cells"]]
    return d


def _set_definition(study: optuna.Study, attrs: dict[str, Any]) -> None:
    old = study.user_attrs.get(ATTR)
    if old is not None and _comparable(old) != _comparable(attrs):
        live = [t for t in study.get_trials(deepcopy=False) if t.state in (
            optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.RUNNING)]
        if live:
            why = (" (the revisions of its methods changed since: its trials trained the older ones)"
                   if old.get("revisions") != attrs.get("revisions") else "")
            raise UsageError(f"study '{study.study_name}' already exists with another definition{why} "
                             f"and {len(live)} trial(s); pick a new --study name")
        # a study that never completed a trial (e.g. an earlier attempt that failed) does not
        # block its name: its failed trials are removed with it and the new definition applies
        storage, name = study._storage, study.study_name
        optuna.delete_study(study_name=name, storage=storage)
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_user_attr(ATTR, attrs)


def list_studies(storage: str) -> list[str]:
    """Names of the suite's studies in ``storage`` (sorted; read-only: a missing SQLite file is a
    UsageError)."""
    st = open_storage(storage, create=False)
    return sorted(s.study_name for s in optuna.get_all_study_summaries(st, include_best_trial=False)
                  if ATTR in s.user_attrs)


def load_definition(name: str, storage: str) -> tuple[optuna.Study, dict[str, Any]]:
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage, create=False))
    except KeyError:
        raise UsageError(f"no study '{name}' in {scrub(storage)}") from None
    if ATTR not in study.user_attrs:
        raise UsageError(f"study '{name}' was not created by this suite")
    return study, study.user_attrs[ATTR]


# ----- workers ------------------------------------------------------------------------------

def _tune_objective(defn: dict[str, Any], runs_dir: str, wandb: str | None):

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

            seen: list[float] = []

            def report(row, k=k, seen=seen):
                # the objective is the accuracy at the selected epoch (the best so far), so that is
                # what is compared: the current epoch's accuracy falls once a network memorises,
                # and comparing it would prune on the noise of single epochs
                val = row.get("val_noisy/acc", math.nan)
                if val == val:
                    seen.append(val)
                trial.report(max(seen) if seen else math.nan, step=k * cfg.epochs + int(row["epoch"]))
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
    """Execute trials of a study until it is done. Returns the number of trials this worker ran.
    The plugins the study was made with load first (a file only while its SHA-256 is unchanged):
    a worker here, a ``--workers`` child and a Slurm job run the same code."""
    study, defn = load_definition(name, storage)
    plugins.restore(defn.get("plugins", []))
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
                                  pruner=_pruner(defn.get("pruner", "none"),
                                                 int(defn.get("base", {}).get("epochs", 1))))
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
