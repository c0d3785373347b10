"""Grids: plan a preset's runs, then train them, in this process, with local workers or as a
Slurm job array, and build their report.

A grid is planned before anything is read or written (:func:`plan`: the preset expanded into
cells, every cell validated); :func:`dry_run` then lists the runs without reading data, and
:func:`execute` prepares every cell (data, noise artifact, run id), trains what is missing and
reports. Progress messages go through ``log`` (the CLI prints them on stderr).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from benchmark.config import RunConfig, apply_override, check_name, expand, flatten, load_preset
from benchmark import plugins
from benchmark.errors import TrainingDiverged, UsageError
from benchmark.orchestration.publish import build, log_to_wandb
from benchmark.orchestration.slurm import submit_workers, wait
from benchmark.orchestration.slurm_options import SlurmOptions
from benchmark.orchestration.studies import best, create_grid_study, default_storage, load_definition, remaining
from benchmark.orchestration.workers import run_workers, shown_storage
from benchmark.store import Store, resolve_mode, spec_of
from benchmark.training import prepare, protocol_of, resolve_device, run, run_revisions, validate
from methods import resolve_hp

__all__ = ["Grid", "GridOptions", "plan", "dry_run", "execute", "apply_tuned", "auto_workers", "hp_text",
           "status_line"]

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class GridOptions:
    """How a planned grid is trained (the options of ``runner.py grid``)."""

    runs: str = "runs"
    """The run store."""
    workers: int | None = None
    """Local worker processes; None: fill the machine (:func:`auto_workers`); 0 or 1: in this process."""
    storage: str | None = None
    """Run the grid as a study on this storage (workers elsewhere may join)."""
    study: str | None = None
    """The study's name (default grid-PRESET-<hash of the cells>)."""
    launcher: str = "local"
    """local (this machine) or slurm (a submitit job array)."""
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    wandb: str | None = None
    report: bool = True
    """Build the grid's report at the end."""


@dataclass
class Grid:
    """A planned grid: its preset, its cells (every one validated) and their resolved
    hyperparameters, and the store it trains into."""

    spec: dict[str, Any]
    cfgs: list[RunConfig]
    resolved: list[Any]
    store: Store

    @property
    def name(self) -> str:
        return self.spec["name"]


def plan(preset: str, seeds: list[int] | None, sets: list[str], *, runs: str = "runs",
         workers: int | None = None, study: str | None = None, tuned: str | None = None,
         storage: str | None = None, log: Log = _stderr) -> Grid:
    """The grid of ``preset`` (a name or a .toml file) with ``seeds`` and ``--set`` overrides,
    the best parameters of the tuning study ``tuned`` applied; every cell validated before any
    data is read (UsageError naming the first bad one)."""
    spec = load_preset(preset)
    plugins.load_all(spec.get("plugins", []), entry_points=False)  # the grid's own, now that it runs
    if study:
        check_name(study, "study name")
    if workers is not None and workers < 0:
        raise UsageError(f"--workers must be >= 0, got {workers}")
    cfgs = expand(spec, seeds, sets)
    if tuned:
        apply_tuned(cfgs, tuned, storage or default_storage(runs), log)
    store = Store(runs)
    resolved = [validate(cfg)[1] for cfg in cfgs]  # every cell checked before any data is read
    return Grid(spec, cfgs, resolved, store)


def apply_tuned(cfgs: list[RunConfig], study: str, storage: str, log: Log = _stderr) -> None:
    """Set the best parameters of tuning study ``study`` on the cells of its method."""
    b = best(study, storage)
    hits = [c for c in cfgs if c.method == b["method"]]
    if not hits:
        raise UsageError(f"study '{study}' tuned '{b['method']}', which this grid does not run")
    for c in hits:
        for k, v in b["best_params"].items():
            apply_override(c, k, v, f"study '{study}'")
    log(f"using tuned {b['method']} parameters from '{study}': {b['best_params']}")


def dry_run(grid: Grid) -> list[dict[str, Any]]:
    """Every run of the grid with its settings and status, reading no data and writing nothing.

    A drawn noise's run id does not depend on the data, so it is computed from the config alone;
    only a cell with an imported noise file (identified by its labels' SHA-256) needs the data.
    """
    rows = []
    for cfg, hp in zip(grid.cfgs, grid.resolved):
        if cfg.noise.file:
            prep = prepare(cfg, grid.store)
            rid, label = prep.run_id, prep.artifact.spec.label()
        else:
            rid, label = cfg.run_id("", asdict(hp), run_revisions(cfg.method)), spec_of(cfg).label()
        proto = {k: v for k, v in protocol_of(cfg, cfg.augment).items() if k not in ("id", "name", "selection")}
        rows.append({"run_id": rid, "method": cfg.method, "dataset": cfg.dataset, "noise": label,
                     "seed": cfg.seed, "status": "finished" if grid.store.is_finished(rid) else "pending",
                     "hp": asdict(hp), "protocol": proto})
    return rows


def hp_text(method: str, hp: dict[str, Any]) -> str:
    """The resolved hyperparameters that differ from the method's defaults, as 'k=v' text."""
    default = asdict(resolve_hp(method, {}, {}))
    flat, base = flatten(hp), flatten(default)
    return ", ".join(f"{k}={v}" for k, v in flat.items() if base.get(k) != v)


def status_line(name: str, total: int, pending: int, store: Store) -> str:
    return (f"grid {name}: {total} runs, {total - pending} finished, {pending} to train "
            f"(store: {store.root})")


def execute(grid: Grid, opts: GridOptions, log: Log = _stderr) -> tuple[int, dict[str, Any]]:
    """Prepare every cell (data, noise artifact, run id), train what is missing and build the
    report. Returns (exit code: 1 when a run failed or the grid is unfinished, the summary)."""
    store = grid.store
    if opts.launcher == "slurm":  # before any noise artifact or study is written
        opts.slurm.check()
        if not shutil.which("sbatch"):
            raise UsageError("--launcher slurm: no sbatch on PATH (run the grid from a Slurm login node)")
    cells = []
    for cfg in grid.cfgs:
        prep = prepare(cfg, store)
        cells.append((cfg, prep.run_id, store.is_finished(prep.run_id), prep.artifact.spec.label()))
    todo = [c for c in cells if not c[2]]
    log(status_line(grid.name, len(cells), len(todo), store))
    t0 = time.time()
    workers = opts.workers
    if workers is None and opts.launcher == "local":
        workers = auto_workers([cfg for cfg, _, done, _ in cells if not done])
    if opts.launcher == "slurm":
        rc = _on_slurm(grid, opts, log)
        failed = [rid for _, rid, *_ in cells if not store.is_finished(rid)]
    elif workers > 1 or opts.storage:
        rc = _as_study(grid, opts, max(workers, 1), log)
        failed = [rid for _, rid, *_ in cells if not store.is_finished(rid)]
    else:
        failed = _sequential(grid.name, todo, opts)
        rc = 1 if failed else 0
    summary = {"preset": grid.name, "runs": len(cells), "trained": len(todo) - len(failed),
               "failed": failed, "store": str(store.root.resolve()), "seconds": round(time.time() - t0, 1)}
    if opts.report:
        summary["report"] = _report(opts, grid.name, {rid for _, rid, *_ in cells})
    return rc, summary


def _sequential(name: str, todo: list[tuple], opts: GridOptions) -> list[str]:
    """Train the runs one after the other in this process; returns the run ids that diverged."""
    failed: list[str] = []
    with tqdm(total=len(todo), desc=f"grid {name}", unit="run", file=sys.stderr, dynamic_ncols=True) as bar:
        for cfg, rid, _, label in todo:
            bar.set_postfix_str(f"{cfg.method} {label} s{cfg.seed}")
            try:
                run(cfg, opts.runs, wandb=opts.wandb)
            except TrainingDiverged as e:
                failed.append(rid)
                bar.write(f"run failed: {e}", file=sys.stderr)
            bar.update(1)
    return failed


def auto_workers(pending: list[RunConfig]) -> int:
    """Workers that fill this machine: on CPU one per `threads` cores of a run (one run per core
    with the default of 1 thread: the best runs per hour measured, docs/BENCHMARKS.md), never more
    than the runs left; on a GPU one (several runs can share it: --workers N)."""
    if not pending:
        return 0
    if resolve_device(pending[0].device).type != "cpu":
        return 1
    per_run = max(c.threads for c in pending)
    return max(1, min(len(pending), (os.cpu_count() or 1) // per_run))


def _report(opts: GridOptions, name: str, run_ids: set[str]) -> str | None:
    """The grid's report (runs/reports/NAME/index.html), mirrored to W&B; None without a finished run."""
    out = Path(opts.runs) / "reports" / name  # name checked by load_preset: stays inside the store
    try:
        index = build(opts.runs, out, run_ids=run_ids, title=f"Noisy-label benchmark: {name}")
    except UsageError:
        return None  # no finished run to report
    log_to_wandb(index, resolve_mode(opts.wandb), Path(opts.runs), name)
    return str(index.resolve())


def _study(grid: Grid, opts: GridOptions) -> tuple[str, str]:
    """Create (or reopen) the grid's study; returns (name, storage)."""
    storage = opts.storage or default_storage(opts.runs)
    # a default name per set of cells: running the grid again with other seeds or settings makes
    # a new study instead of clashing with the old one's definition; so does a method revision
    # (its cells are new runs: the old study's completed trials are the older revision's)
    revisions = [{k: v for k, v in run_revisions(c.method).items() if v != 1} for c in grid.cfgs]
    identity = [{**c.to_dict(), **({"revisions": r} if r else {})} for c, r in zip(grid.cfgs, revisions)]
    cells = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    name = opts.study or f"grid-{grid.name}-{cells}"
    create_grid_study(name, storage, grid.cfgs, grid.name, revisions if any(revisions) else None)
    return name, storage


def _on_slurm(grid: Grid, opts: GridOptions, log: Log) -> int:
    """Submit the grid's workers as a Slurm job array and wait for the grid to finish."""
    name, storage = _study(grid, opts)
    jobs = submit_workers(name, storage, opts.runs, opts.slurm, opts.wandb)
    log(f"study '{name}': submitted {len(jobs)} Slurm workers (jobs {', '.join(j.job_id for j in jobs)}); "
        f"logs in {Path(opts.runs) / 'slurm'}")

    def done() -> bool:
        study, defn = load_definition(name, storage)
        return remaining(study, defn) <= 0

    wait(jobs, done, log=log)
    if not done():
        log("every Slurm job has ended and the grid is not finished: run the same command again "
            "to submit new workers (finished runs are kept)")
        return 1
    return 0


def _as_study(grid: Grid, opts: GridOptions, workers: int, log: Log) -> int:
    """Run the grid as a study with ``workers`` local worker processes."""
    name, storage = _study(grid, opts)
    shown = shown_storage(storage)
    log(f"study '{name}' on {shown}: {len(grid.cfgs)} cells; more workers can join with\n"
        f"  python runner.py worker --study {name} --storage {shown} --runs {opts.runs}")
    return run_workers(name, storage, opts.runs, workers, opts.wandb, log)
