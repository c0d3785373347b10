"""Command-line interface. runner.py calls main(); every command is a thin layer over benchmark/.

Exit codes: 0 success, 1 runtime failure (missing data, diverged run), 2 usage error.
Progress goes to stderr; ``--json`` prints exactly one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import settings
from benchmark.config import build_config, flatten
from benchmark.errors import (INTERRUPT_EXIT, RUN_EXIT, USAGE_EXIT, RunFault, RunInterrupted, UsageError,
                              UsageFault)
from benchmark.store import json_safe


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds expects a comma-separated list of ints, got '{text}'")


def _noise_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noise", dest="noise_kind", help="noise kind: none, sym, sym_incl, pairflip, asym, idn, human, twin")
    p.add_argument("--rate", type=float, help="nominal noise rate in [0, 1)")
    p.add_argument("--human-set", help="CIFAR-N label set for human/twin (aggre, rand1, rand2, rand3, worst; noisy)")
    p.add_argument("--noise-mode", choices=["bernoulli", "exact"], help="per-sample draws or exact counts")
    p.add_argument("--allow-unlearnable", action="store_true", default=None,
                   help="allow pairflip/asym/idn rates >= 0.5 (the noisy class becomes the majority)")
    p.add_argument("--noise-file", help="import an exported noise artifact (.npz) instead of drawing noise")


def _wandb_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wandb", choices=["offline", "online", "disabled"],
                   help="W&B mirror (default: $WANDB_MODE, else offline; online needs `wandb login`)")


def _base_from_args(a: argparse.Namespace) -> dict[str, Any]:
    base: dict[str, Any] = {}
    for flag, key in (("dataset", "dataset"), ("model", "model"), ("method", "method"),
                      ("seed", "seed"), ("epochs", "epochs"), ("subset", "subset"),
                      ("device", "device"), ("data_dir", "data_dir")):
        v = getattr(a, flag, None)
        if v is not None:
            base[key] = v
    noise = {}
    for flag, key in (("noise_kind", "kind"), ("rate", "rate"), ("human_set", "human_set"),
                      ("noise_mode", "mode"), ("allow_unlearnable", "allow_unlearnable"),
                      ("noise_file", "file")):
        v = getattr(a, flag, None)
        if v is not None:
            noise[key] = v
    if noise.get("kind") in ("none", "human", "twin") and "rate" not in noise:
        noise["rate"] = 0.0
    if noise:
        base["noise"] = noise
    return base


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad invocation is a UsageError (one message, exit 2, JSON with --json), and
    no abbreviated flags: "--epoch 1" is refused, not read as --epochs."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(f"{message} (see: python {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="runner.py", description="Benchmark suite for learning with noisy labels.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="train one run (one cell, one seed)")
    r.add_argument("--dataset"); r.add_argument("--model"); r.add_argument("--method")
    _noise_flags(r)
    r.add_argument("--seed", type=int); r.add_argument("--epochs", type=int)
    r.add_argument("--subset", type=int, help="train on a seeded subset of N samples")
    r.add_argument("--config", help="TOML file with RunConfig fields")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. optim.lr=0.1, hp.q=0.5 (repeatable)")
    r.add_argument("--device"); r.add_argument("--data-dir")
    r.add_argument("--runs", default="runs", help="run store directory (default: runs)")
    r.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _wandb_flag(r)

    g = sub.add_parser("grid", help="run a preset or grid file: cells x seeds, skipping finished runs")
    g.add_argument("preset", help="preset name (benchmark/config/presets) or path to a .toml grid")
    g.add_argument("--seeds", type=_seeds, help="comma-separated seeds, e.g. 0,1,2")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every cell")
    g.add_argument("--runs", default="runs"); g.add_argument("--data-dir"); g.add_argument("--device")
    g.add_argument("--dry-run", action="store_true", help="list the runs and their status, train nothing")
    g.add_argument("--tuned", metavar="STUDY", help="use the best parameters of this tuning study for its method")
    g.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: fill the machine: on CPU, cores / threads "
                        "per run; on a GPU, 1). 0 or 1: sequential, in this process")
    g.add_argument("--storage", help="run the grid as a study on this storage (workers elsewhere may join)")
    g.add_argument("--study", help="study name for --workers/--storage (default grid-PRESET)")
    g.add_argument("--no-report", action="store_true", help="do not build the report at the end")
    g.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: workers on this machine (--workers); slurm: submit the workers as a "
                        "Slurm job array with submitit (they share --storage, default the store's SQLite)")
    g.add_argument("--slurm-jobs", type=int, default=2, help="workers (array tasks) to submit")
    g.add_argument("--slurm-partition", default="", help="partition (default: the cluster's)")
    g.add_argument("--slurm-gpus-per-job", type=int, default=0, help="GPUs per job")
    g.add_argument("--slurm-cpus-per-job", type=int, default=1, help="CPUs per job")
    g.add_argument("--slurm-array-parallelism", type=int, default=0,
                   help="at most this many jobs of the array at once (0: all)")
    g.add_argument("--slurm-time-min", type=int, default=60,
                   help="time limit per job; a job that reaches it is requeued and resumes")
    g.add_argument("--slurm-mem-gb", type=float, default=0.0, help="memory per job (0: the default)")
    g.add_argument("--json", action="store_true")
    _wandb_flag(g)

    n = sub.add_parser("noise", help="build (or load) a noise artifact and print it")
    n.add_argument("--dataset", default="fashion_mnist")
    _noise_flags(n)
    n.add_argument("--seed", type=int, default=0, help="base seed (the run's noise stream is derived from it)")
    n.add_argument("--export", help="write the artifact to this .npz file")
    n.add_argument("--runs", default="runs"); n.add_argument("--data-dir")
    n.add_argument("--json", action="store_true")

    t = sub.add_parser("tune", help="tune a method's hyperparameters with Optuna (noisy-validation objective)")
    t.add_argument("--show", metavar="NAME", help="print the best parameters and the trials of study NAME")
    t.add_argument("--method"); t.add_argument("--dataset"); t.add_argument("--model")
    _noise_flags(t)
    t.add_argument("--trials", type=int, default=20, help="trials to finish (default 20)")
    t.add_argument("--seeds", type=int, default=3, help="seeds per trial; the objective averages them (default 3)")
    t.add_argument("--epochs", type=int); t.add_argument("--subset", type=int)
    t.add_argument("--param", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="search range (name=low:high[:log] or name=a,b,c); overrides the method's space")
    t.add_argument("--only-params", action="store_true",
                   help="search only the --param settings (the method's declared space is left out; "
                        "everything else stays at the base config)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed config override")
    t.add_argument("--config", help="TOML file with RunConfig fields")
    t.add_argument("--preset", help="tune on this preset's protocol: its [base], [hp.X] and matching "
                                    "[[override]]s, with the noise setting of --noise/--rate (needed "
                                    "when the preset has several); other flags override the preset")
    t.add_argument("--storage", help="Optuna storage URL (default: sqlite:///RUNS/optuna.db)")
    t.add_argument("--study", help="study name (default: derived from the method and setting)")
    t.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in this process)")
    t.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    t.add_argument("--sampler-seed", type=int, default=0, help="TPE seed (recorded in the study)")
    t.add_argument("--runs", default="runs"); t.add_argument("--data-dir"); t.add_argument("--device")
    t.add_argument("--json", action="store_true")
    _wandb_flag(t)

    w = sub.add_parser("worker", help="execute trials of a study until it is done (one per process)")
    w.add_argument("--study", required=True); w.add_argument("--storage")
    w.add_argument("--runs", default="runs"); w.add_argument("--json", action="store_true")
    _wandb_flag(w)

    rp = sub.add_parser("report", help="build tables, figures and the leaderboard site from the store")
    rp.add_argument("--runs", default="runs"); rp.add_argument("--out", help="output directory (default RUNS/report)")
    rp.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                    help="keep runs whose column (method, dataset, noise, noise_label, protocol, model, seed) matches; repeatable")
    rp.add_argument("--study", action="append", metavar="NAME",
                    help="instead: plots of the Optuna study NAME (history, importances, sparsity with "
                         "the seeds' spread); repeatable, and a pattern such as 'verdict-*' matches "
                         "study names; several studies add a side-by-side sparsity sensitivity")
    rp.add_argument("--storage"); rp.add_argument("--json", action="store_true")
    _wandb_flag(rp)

    b = sub.add_parser("bench", help="time epochs of each method and the data pipeline (for docs/BENCHMARKS.md)")
    b.add_argument("--preset", help="time this preset's protocol (its base settings, evaluation included)")
    b.add_argument("--dataset", default="fashion_mnist"); b.add_argument("--model", default="lenet")
    b.add_argument("--methods", default="ce", help="comma-separated methods to time")
    b.add_argument("--subset", type=int, help="training subset (default 10000, or the preset's)")
    b.add_argument("--epochs", type=int, default=5,
                   help="epochs per method (>= 3): the first is left out, the middle ones timed, the last counts FLOPs")
    b.add_argument("--batch-size", type=int, default=128); b.add_argument("--device", default="auto")
    b.add_argument("--threads", type=int, default=1, help="torch threads per run (the run setting `threads`)")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a run setting")
    b.add_argument("--rounds", type=int, default=1,
                   help="time every method this many times, in rotated order, and report medians and "
                   "the spread between rounds (use 3 or more on a shared machine)")
    b.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers of the per-sample baseline")
    b.add_argument("--precision", default="fp32", help="fp32 or bf16 (autocast forward passes, fp32 losses)")
    b.add_argument("--channels-last", action="store_true", help="channels-last networks and batches")
    b.add_argument("--val-frac", type=float,
                   help="held-out noisy validation fraction (default 0.1 or the preset's; 0: every training image)")
    b.add_argument("--no-loader", action="store_true", help="skip the per-sample DataLoader comparison")
    b.add_argument("--strong", action="store_true",
                   help="also time the strong views (AutoAugment, RandAugment) against torchvision's "
                   "per-sample pipeline")
    b.add_argument("--streaming", action="store_true",
                   help="instead: images/s of a real-world dataset's data paths (in memory, streamed "
                   "from its files, from a pack, torchvision's per-sample DataLoader); with --dataset, "
                   "--data-dir, --images, --batch-size, --loader-workers, --device")
    b.add_argument("--data-dir", help="--streaming: where the dataset is")
    b.add_argument("--images", type=int, default=2048, help="--streaming: training images to read")
    b.add_argument("--tmp", help="where the fresh temporary store is made (default: the system's "
                   "temporary directory); only the directory bench creates is removed")
    b.add_argument("--json", action="store_true")

    ls = sub.add_parser("ls", help="list the runs in the store and what each incomplete one is")
    ls.add_argument("--runs", default="runs"); ls.add_argument("--json", action="store_true")
    ls.add_argument("--prune", action="store_true",
                    help="remove abandoned run folders (no result, no checkpoint, no failure record, "
                         "not running); finished, failed, stopped and resumable runs are kept")

    mg = sub.add_parser("merge", help="bring finished runs from other stores into one (verified, never "
                                      "duplicated; sources are only read)")
    mg.add_argument("sources", nargs="+", metavar="SRC", help="run stores to read (e.g. copied from other machines)")
    mg.add_argument("--into", required=True, metavar="DIR", help="the store to bring the runs into")
    mg.add_argument("--dry-run", action="store_true", help="say what would be copied, write nothing")
    mg.add_argument("--json", action="store_true")

    pk = sub.add_parser("pack", help="decode a real-world dataset once into memory-mapped arrays "
                                     "(fast random access for the streaming data path)")
    pk.add_argument("--dataset", required=True,
                    help="clothing1m, food101n, webvision_mini (or its _227 / _224 geometries)")
    pk.add_argument("--data-dir", help="where the dataset is (default: NLB_DATA_DIR, the cache dir)")
    pk.add_argument("--out", help="pack folder (default: <cache dir>/packs/<dataset>@<size>, where "
                                  "runs look for it)")
    pk.add_argument("--json", action="store_true")
    return ap


# ----- commands -------------------------------------------------------------------------------

def cmd_run(a: argparse.Namespace) -> int:
    from benchmark.training import run, validate
    cfg = build_config(_base_from_args(a), a.set, a.config)
    validate(cfg)  # a bad setting is one line, before any progress bar is drawn
    with _EpochBar(cfg.epochs) as bar:
        res = run(cfg, a.runs, progress=bar.update, wandb=a.wandb)
    if a.json:
        print(json.dumps(json_safe(res), sort_keys=True))
    else:
        _print_result(res)
    return 0


def _dry_run(a: argparse.Namespace, spec: dict[str, Any], cfgs: list, resolved: list, store) -> int:
    """List the grid's runs with their settings and status, reading no data and writing nothing.

    A drawn noise's run id does not depend on the data, so it is computed from the config alone;
    only a cell with an imported noise file (identified by its labels' SHA-256) needs the data.
    """
    from dataclasses import asdict

    from benchmark.store import spec_of
    from benchmark.training import prepare, protocol_of, run_revisions
    rows = []
    for cfg, hp in zip(cfgs, resolved):
        if cfg.noise.file:
            prep = prepare(cfg, store)
            rid, label = prep.run_id, prep.artifact.spec.label()
        else:
            rid, label = cfg.run_id("", asdict(hp), run_revisions(cfg.method)), spec_of(cfg).label()
        proto = {k: v for k, v in protocol_of(cfg, cfg.augment).items() if k not in ("id", "name", "selection")}
        rows.append({"run_id": rid, "method": cfg.method, "dataset": cfg.dataset, "noise": label,
                     "seed": cfg.seed, "status": "finished" if store.is_finished(rid) else "pending",
                     "hp": asdict(hp), "protocol": proto})
    pending = sum(r["status"] == "pending" for r in rows)
    print(f"grid {spec['name']}: {len(rows)} runs, {len(rows) - pending} finished, {pending} to train "
          f"(store: {store.root})", file=sys.stderr)
    if a.json:
        print(json.dumps(json_safe({"runs": rows, "total": len(rows), "pending": pending})))
        return 0
    shared = {k: v for k, v in rows[0]["protocol"].items() if all(r["protocol"].get(k) == v for r in rows)} if rows else {}
    print("protocol: " + ", ".join(f"{k}={v}" for k, v in shared.items()))
    for r in rows:
        own = {k: v for k, v in r["protocol"].items() if shared.get(k, object()) != v}
        hp = _hp_text(r["method"], r["hp"])
        extra = "  ".join(x for x in (hp, ", ".join(f"{k}={v}" for k, v in own.items())) if x)
        print(f"{r['run_id']}  {r['status']:9s} {r['method']:16s} {r['noise']:16s} seed={r['seed']}  {extra}")
    return 0


def _hp_text(method: str, hp: dict[str, Any]) -> str:
    """The resolved hyperparameters that differ from the method's defaults, as 'k=v' text."""
    from dataclasses import asdict

    from methods import resolve_hp
    default = asdict(resolve_hp(method, {}, {}))
    flat, base = flatten(hp), flatten(default)
    return ", ".join(f"{k}={v}" for k, v in flat.items() if base.get(k) != v)


def cmd_grid(a: argparse.Namespace) -> int:
    from benchmark.config import check_name, expand, load_preset
    from benchmark.errors import TrainingDiverged
    from benchmark.store import Store
    from benchmark.studies import default_storage
    from benchmark.training import prepare, run, validate
    spec = load_preset(a.preset)
    if a.study:
        check_name(a.study, "study name")
    if a.workers is not None and a.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {a.workers}")
    sets = list(a.set)
    if a.data_dir:
        sets.append(f"data_dir={a.data_dir}")
    if a.device:
        sets.append(f"device={a.device}")
    cfgs = expand(spec, a.seeds, sets)
    if a.tuned:
        _apply_tuned(cfgs, a.tuned, a.storage or default_storage(a.runs))
    store = Store(a.runs)
    resolved = [validate(cfg)[1] for cfg in cfgs]  # every cell checked before any data is read
    if a.dry_run:
        return _dry_run(a, spec, cfgs, resolved, store)
    if a.launcher == "slurm":  # before any noise artifact or study is written
        _slurm_options(a).check()
        if not shutil.which("sbatch"):
            raise UsageError("--launcher slurm: no sbatch on PATH (run the grid from a Slurm login node)")
    plan = []
    for cfg in cfgs:
        prep = prepare(cfg, store)
        plan.append((cfg, prep.run_id, store.is_finished(prep.run_id), prep.artifact.spec.label()))
    todo = [p for p in plan if not p[2]]
    print(f"grid {spec['name']}: {len(plan)} runs, {len(plan) - len(todo)} finished, "
          f"{len(todo)} to train (store: {store.root})", file=sys.stderr)
    t0 = time.time()
    failed: list[str] = []
    if a.workers is None and a.launcher == "local":
        a.workers = _auto_workers([c for c, _, done, _ in plan if not done])
    if a.launcher == "slurm":
        rc = _grid_on_slurm(a, spec, [c for c, *_ in plan])
        failed = [rid for _, rid, *_ in plan if not store.is_finished(rid)]
    elif a.workers > 1 or a.storage:
        rc = _grid_as_study(a, spec, [c for c, *_ in plan])
        failed = [rid for _, rid, *_ in plan if not store.is_finished(rid)]
    else:
        from tqdm import tqdm
        with tqdm(total=len(todo), desc=f"grid {spec['name']}", unit="run", file=sys.stderr,
                  dynamic_ncols=True) as bar:
            for cfg, rid, _, label in todo:
                bar.set_postfix_str(f"{cfg.method} {label} s{cfg.seed}")
                try:
                    run(cfg, a.runs, wandb=a.wandb)
                except TrainingDiverged as e:
                    failed.append(rid)
                    bar.write(f"run failed: {e}", file=sys.stderr)
                bar.update(1)
        rc = 1 if failed else 0
    summary = {"preset": spec["name"], "runs": len(plan), "trained": len(todo) - len(failed),
               "failed": failed, "store": str(store.root.resolve()), "seconds": round(time.time() - t0, 1)}
    if not a.no_report:
        summary["report"] = _grid_report(a, spec["name"], {rid for _, rid, *_ in plan})
    if a.json:
        print(json.dumps(summary))
    else:
        print(f"done: {summary['trained']} trained, {len(failed)} failed, results in {summary['store']}")
        print(f"  list them: python runner.py ls --runs {a.runs}")
        if summary.get("report"):
            print(f"  leaderboard: {summary['report']}")
    return rc


def _auto_workers(pending: list) -> int:
    """Workers that fill this machine: on CPU one per `threads` cores of a run (one run per core
    with the default of 1 thread: the best runs per hour measured, docs/BENCHMARKS.md), never more
    than the runs left; on a GPU one (several runs can share it: --workers N)."""
    from benchmark.training import resolve_device
    if not pending:
        return 0
    if resolve_device(pending[0].device).type != "cpu":
        return 1
    per_run = max(c.threads for c in pending)
    return max(1, min(len(pending), (os.cpu_count() or 1) // per_run))


def _grid_report(a: argparse.Namespace, name: str, run_ids: set[str]) -> str | None:
    from benchmark.reporting import build, log_to_wandb
    from benchmark.store import resolve_mode
    out = Path(a.runs) / "reports" / name  # name checked by load_preset: stays inside the store
    try:
        index = build(a.runs, out, run_ids=run_ids, title=f"Noisy-label benchmark: {name}")
    except UsageError:
        return None  # no finished run to report
    log_to_wandb(index, resolve_mode(a.wandb), Path(a.runs), name)
    return str(index.resolve())


def _apply_tuned(cfgs: list, study: str, storage: str) -> None:
    from benchmark.config import apply_override
    from benchmark.studies import best
    b = best(study, storage)
    hits = [c for c in cfgs if c.method == b["method"]]
    if not hits:
        raise UsageError(f"study '{study}' tuned '{b['method']}', which this grid does not run")
    for c in hits:
        for k, v in b["best_params"].items():
            apply_override(c, k, v, f"study '{study}'")
    print(f"using tuned {b['method']} parameters from '{study}': {b['best_params']}", file=sys.stderr)


def _grid_study(a: argparse.Namespace, spec: dict, cfgs: list) -> tuple[str, str]:
    """Create (or reopen) the grid's study; returns (name, storage)."""
    from benchmark.studies import create_grid_study, default_storage
    storage = a.storage or default_storage(a.runs)
    # a default name per set of cells: running the grid again with other seeds or settings makes
    # a new study instead of clashing with the old one's definition
    cells = hashlib.sha256(json.dumps([c.to_dict() for c in cfgs], sort_keys=True).encode()).hexdigest()[:8]
    name = a.study or f"grid-{spec['name']}-{cells}"
    create_grid_study(name, storage, cfgs, spec["name"])
    return name, storage


def _slurm_options(a: argparse.Namespace):
    from benchmark.slurm import SlurmOptions
    return SlurmOptions(jobs=a.slurm_jobs, partition=a.slurm_partition, gpus_per_job=a.slurm_gpus_per_job,
                        cpus_per_job=a.slurm_cpus_per_job, array_parallelism=a.slurm_array_parallelism,
                        time_min=a.slurm_time_min, mem_gb=a.slurm_mem_gb)


def _grid_on_slurm(a: argparse.Namespace, spec: dict, cfgs: list) -> int:
    """Submit the grid's workers as a Slurm job array and wait for the grid to finish."""
    from benchmark.slurm import submit_workers, wait
    from benchmark.studies import load_definition, remaining
    opts = _slurm_options(a)
    name, storage = _grid_study(a, spec, cfgs)
    jobs = submit_workers(name, storage, a.runs, opts, a.wandb)
    print(f"study '{name}': submitted {len(jobs)} Slurm workers (jobs {', '.join(j.job_id for j in jobs)}); "
          f"logs in {Path(a.runs) / 'slurm'}", file=sys.stderr)

    def done() -> bool:
        study, defn = load_definition(name, storage)
        return remaining(study, defn) <= 0

    wait(jobs, done, log=lambda m: print(m, file=sys.stderr))
    if not done():
        print("every Slurm job has ended and the grid is not finished: run the same command again "
              "to submit new workers (finished runs are kept)", file=sys.stderr)
        return 1
    return 0


def _grid_as_study(a: argparse.Namespace, spec: dict, cfgs: list) -> int:
    from benchmark.studies import storage_for_children
    name, storage = _grid_study(a, spec, cfgs)
    shown, _ = storage_for_children(storage)
    print(f"study '{name}' on {_safe_url(shown)}: {len(cfgs)} cells; more workers can join with\n"
          f"  python runner.py worker --study {name} --storage {_safe_url(shown)} --runs {a.runs}",
          file=sys.stderr)
    return _run_workers(name, storage, a.runs, max(a.workers, 1), a.wandb)


def _safe_url(url: str) -> str:
    from benchmark.store import scrub
    return scrub(url)


def _run_workers(name: str, storage: str, runs: str, n: int, wandb: str | None) -> int:
    """Run n workers: in this process for n == 1, else as n child processes.

    A child's command line carries the storage URL without its password (``ps`` shows command
    lines to every user); the password travels in the child's environment as PGPASSWORD.
    """
    from benchmark.studies import storage_for_children, work
    if n <= 1:
        work(name, storage, runs, wandb, log=lambda m: print(m, file=sys.stderr))
        return 0
    import subprocess
    url, secret = storage_for_children(storage)
    cmd = [sys.executable, str(Path(__file__).resolve().parents[1] / "runner.py"), "worker",
           "--study", name, "--storage", url, "--runs", runs] + (["--wandb", wandb] if wandb else [])
    # share the cores between the workers instead of oversubscribing them (numpy / BLAS; torch's
    # intra-op threads are each run's `threads` setting)
    threads = str(max(1, (os.cpu_count() or 1) // n))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads),
           settings.CHILD: "1", **secret}
    procs = [subprocess.Popen(cmd, env=env) for _ in range(n)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:  # the children got the same Ctrl-C: let them write their state
        for p in procs:
            p.wait()
        raise
    return 0 if all(c == 0 for c in codes) else 1


def cmd_noise(a: argparse.Namespace) -> int:
    from benchmark.data import load_dataset
    from benchmark.store import noise_for
    from noise import save_artifact
    base = _base_from_args(a)
    base.setdefault("noise", {})
    cfg = build_config(base)
    from benchmark.config import check_config
    check_config(cfg)
    if a.export:
        out = Path(a.export)
        if out.is_dir():
            raise UsageError(f"--export {a.export}: is a directory; give a file name such as noise.npz")
        if out.suffix != ".npz":
            raise UsageError(f"--export {a.export}: the file name must end in .npz")
        if not out.parent.exists() and out.parent != Path("."):
            raise UsageError(f"--export {a.export}: directory {out.parent} does not exist")
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir or None)
    noise_seed = cfg.streams()["noise"]
    art = noise_for(cfg, data, noise_seed, Path(a.runs))
    if a.export:
        save_artifact(art, Path(a.export))
    info = art.summary()
    info["base_seed"] = cfg.seed
    if a.export:
        info["exported_to"] = str(Path(a.export).resolve())
    if a.json:
        print(json.dumps(json_safe(info), sort_keys=True))
        return 0
    print(f"noise {info['label']} on {cfg.dataset} (base seed {cfg.seed}, noise seed {art.seed})")
    print(f"  measured flip rate: {art.actual_rate:.4f}   samples: {len(art.noisy_labels)}")
    print(f"  sha256: {art.sha256}")
    if art.verification:
        made = {True: "reproduced by this suite's generator", False: "not made by this suite's "
                "generator (a foreign realisation)", None: "not regenerated"}[art.verification["regenerated"]]
        print(f"  imported: every claim recomputed from the labels and checked; {made}")
    print("  realised T (row = true class, T[i, j] = P(noisy = j | true = i)):")
    with np.printoptions(precision=3, suppress=True, linewidth=140):
        print("  " + str(np.asarray(art.transition)).replace("\n", "\n  "))
    if a.export:
        print(f"  exported to {info['exported_to']}")
    return 0


def cmd_tune(a: argparse.Namespace) -> int:
    from benchmark.config import check_name
    from benchmark.store import Store, resolve_mode
    from benchmark.studies import (best, create_tune_study, default_storage, load_definition, method_space,
                                   parse_param)
    from benchmark.training import prepare
    storage = a.storage or default_storage(a.runs)
    if a.show:
        b = best(a.show, storage)
        if a.json:
            print(json.dumps(json_safe(b)))
        else:
            _print_best(b)
        return 0
    if not a.method:
        raise UsageError("tune needs --method (or --show NAME)")
    if a.trials < 1 or a.seeds < 1 or a.workers < 1:
        raise UsageError("--trials, --seeds and --workers must be at least 1")
    sets = list(a.set) + ([f"data_dir={a.data_dir}"] if a.data_dir else []) + ([f"device={a.device}"] if a.device else [])
    cfg = _tune_base(a, sets)
    prepare(cfg, Store(a.runs))  # every setting checked (and the data found) before the study exists
    if a.only_params and not a.param:
        raise UsageError("tune --only-params needs at least one --param")
    space = {} if a.only_params else method_space(cfg.method)
    space.update(dict(parse_param(p) for p in a.param))
    where = a.preset or cfg.dataset
    name = check_name(a.study or f"tune-{cfg.method}-{where}-{cfg.noise.kind}-{cfg.noise.rate:g}",
                      "study name")
    create_tune_study(name, storage, cfg, space, seeds=a.seeds, trials=a.trials, pruner=a.pruner,
                      sampler_seed=a.sampler_seed)
    print(f"study '{name}' on {_safe_url(storage)}: {a.trials} trials x {a.seeds} seeds; space {space}",
          file=sys.stderr)
    rc = _run_workers(name, storage, a.runs, a.workers, a.wandb)
    b = best(name, storage)
    from benchmark.reporting import log_study_to_wandb
    from benchmark.study_plots import plot_study
    plots = plot_study(load_definition(name, storage)[0], Path(a.runs) / "studies" / name)
    log_study_to_wandb(name, b, plots, resolve_mode(a.wandb), Path(a.runs))
    if a.json:
        print(json.dumps(json_safe(b)))
    else:
        _print_best(b)
    return rc


def _tune_base(a: argparse.Namespace, sets: list[str]):
    """The base config of a tuning study: flags, --config and --set; or, with --preset, the
    preset's cell of this method at the noise setting of the flags (the preset's only one when
    the flags name none), with the other flags and --set applied on top."""
    from benchmark.config import cell, load_preset
    if not a.preset:
        return build_config(_base_from_args(a), sets, a.config)
    if a.config:
        raise UsageError("tune: give --preset or --config, not both")
    spec = load_preset(a.preset)
    flags = _base_from_args(a)
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
    return cell(spec, a.method, noise, 0, extra)


def _print_best(b: dict) -> None:
    print(f"study {b['study']} ({b['kind']}, method {b['method']}): objective = {b['objective']}")
    print(f"  best trial #{b['best_trial']}: value {b['best_value']:.4f}  params {b['best_params']}")
    for t in b["trials"]:
        v = f"{t['value']:.4f}" if isinstance(t["value"], float) else "   -  "
        print(f"  #{t['number']:<3d} {t['state']:8s} {v}  {t['params']}")


def cmd_worker(a: argparse.Namespace) -> int:
    from benchmark.studies import default_storage, work
    n = work(a.study, a.storage or default_storage(a.runs), a.runs, a.wandb,
             log=lambda m: print(m, file=sys.stderr))
    if a.json:
        print(json.dumps({"study": a.study, "trials": n}))
    print(f"worker done: {n} trials", file=sys.stderr)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from benchmark.reporting import build, log_to_wandb
    from benchmark.store import parse_filters, resolve_mode
    out = Path(a.out) if a.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {a.out}: exists and is not a directory")
    if a.study:
        return _report_studies(a, out)
    out = out or Path(a.runs) / "report"
    index = build(a.runs, out, filters=parse_filters(a.filter))
    log_to_wandb(index, resolve_mode(a.wandb), Path(a.runs), out.name)
    if a.json:
        print(json.dumps({"index": str(index.resolve())}))
    else:
        print(f"report: {index.resolve()}")
    return 0


def _report_studies(a: argparse.Namespace, out: Path | None) -> int:
    """report --study NAME (repeatable; shell-style patterns such as 'verdict-*' match the
    storage's study names): each study's plots, and with several a side-by-side sensitivity."""
    import fnmatch

    from benchmark.config import check_name
    from benchmark.studies import default_storage, list_studies, load_definition
    from benchmark.study_plots import plot_sensitivity, plot_study
    storage = a.storage or default_storage(a.runs)
    known = list_studies(storage)
    names: list[str] = []
    for pat in a.study:
        hits = sorted(n for n in known if fnmatch.fnmatchcase(n, pat)) if any(c in pat for c in "*?[") \
            else [pat]
        if not hits:
            raise UsageError(f"--study {pat}: no study matches. Studies: {', '.join(known) or 'none'}")
        # names become folders: one from a storage made elsewhere is checked like a typed one
        names += [check_name(n, "study name") for n in hits if n not in names]
    studies = [load_definition(n, storage)[0] for n in names]
    paths: list[Path] = []
    for n, study in zip(names, studies):
        paths += plot_study(study, (out / n if out and len(names) > 1 else out) or Path(a.runs) / "studies" / n)
    if len(studies) > 1:
        p = plot_sensitivity(studies, (out or Path(a.runs) / "studies") / "sparsity_sensitivity.png")
        paths += [p] if p else []
    if a.json:
        print(json.dumps({"studies": names, "plots": [str(p) for p in paths]}))
    else:
        print("\n".join(str(p) for p in paths) or "no complete trial to plot")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    import shutil
    import tempfile
    import torch

    from benchmark.bench import time_loaders, time_rounds, time_strong_views
    from benchmark.data import load_dataset
    if a.tmp is not None and not Path(a.tmp).is_dir():
        raise UsageError(f"--tmp {a.tmp}: not an existing directory")
    if a.streaming:
        return _bench_streaming(a)
    if a.preset:
        from benchmark.config import load_preset
        base = dict(load_preset(a.preset).get("base", {}))
        base.pop("protocol_name", None)
    else:
        base = {"dataset": a.dataset, "model": a.model, "subset": 10000, "batch_size": a.batch_size}
    base.update({"device": a.device, "precision": a.precision, "channels_last": a.channels_last,
                 "threads": a.threads, "noise": {"kind": "sym", "rate": 0.4}})
    if a.val_frac is not None:
        base["val_frac"] = a.val_frac
    if not a.preset:
        # only training epochs are timed; smaller evaluation sets just shorten the command (a
        # preset keeps its own, so that its bookkeeping share is the real one)
        base.update({"test_subset": 1000, "memo_samples": 1000})
    if a.subset is not None:
        base["subset"] = a.subset
    methods = [m for m in a.methods.split(",") if m]
    if a.epochs < 3:
        raise UsageError("bench needs --epochs >= 3 (the first is left out, the last counts FLOPs)")
    # timings need fresh runs, never cached ones: a new directory of its own, removed afterwards
    # (nothing the user already had is touched)
    if a.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    runs = tempfile.mkdtemp(prefix="nlb-bench-", dir=a.tmp)
    try:
        out: dict[str, Any] = time_rounds(methods, base, a.epochs, runs, a.set, a.rounds)
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    if not a.no_loader:
        # the protocol's dataset, subset and batch size (a preset's when one is given)
        data = load_dataset(base["dataset"])
        subset = base.get("subset") or 0
        n = min(subset or len(data.train_y), len(data.train_y))
        out["loader"] = time_loaders(base["dataset"], n, base.get("batch_size", a.batch_size),
                                     data.crop_pad or 2, True, a.loader_workers)
    if a.strong:
        data = load_dataset(base["dataset"])
        n = min(base.get("subset") or len(data.train_y), len(data.train_y))
        dev = "cpu" if a.device == "auto" and not torch.cuda.is_available() else (
            "cuda" if a.device == "auto" else a.device)
        out["strong"] = time_strong_views(base["dataset"], n, base.get("batch_size", a.batch_size),
                                          data.crop_pad or 2, a.loader_workers, dev, base["threads"])
    out["threads"] = base["threads"]
    if a.json:
        print(json.dumps(json_safe(out)))
        return 0
    print(f"{'method':16s} {'s/epoch':>8s} {'GFLOP/ep':>9s} {'time/CE':>8s} {'FLOP/CE':>8s} "
          f"{'ratio':>6s} {'bookkeep':>8s} {'samples/s':>10s} {'peak MB':>8s} {'spread':>7s}")
    for r in out["methods"]:
        print(f"{r['method']:16s} {r['epoch_s_median']:8.2f} {r['flops_per_epoch'] / 1e9:9.2f} "
              f"{r['time_ratio']:8.2f} {r['flop_ratio']:8.2f} {r['time_over_flops']:6.2f} "
              f"{100 * (r['bookkeeping_share'] or float('nan')):7.1f}% {r['samples_per_s']:10.0f} "
              f"{r['peak_mb']:8.0f} {100 * r['spread']:6.0f}%")
    print("ratio = (time / CE's time) / (FLOPs / CE's FLOPs): 1 means the method costs exactly its "
          "FLOPs; bookkeep = share of the run's wall time outside training; spread = range of the "
          f"per-round s/epoch over its median ({a.rounds} round{'s' if a.rounds > 1 else ''})")
    if "bare" in out:
        print(f"bare forward/backward/step loop: {out['bare']['bare_epoch_s']:.2f} s/epoch; the harness's "
              f"CE epoch runs at {out['bare']['ce_speed_vs_bare']:.2f} of its speed")
    if "loader" in out:
        L = out["loader"]
        print(f"data pipeline, {L['images']} images: ours {L['ours_s']:.2f} s, per-sample DataLoader "
              f"({L['loader_workers']} workers) {L['per_sample_loader_s']:.2f} s: {L['speedup']:.1f}x")
    for S in out.get("strong", []):
        print(f"strong view {S['policy']}, {S['images']} images on {S['device']}: ours {S['ours_s']:.2f} s, "
              f"torchvision per-sample ({S['loader_workers']} workers) {S['torchvision_s']:.2f} s: "
              f"{S['speedup']:.1f}x")
    return 0


def cmd_ls(a: argparse.Namespace) -> int:
    from benchmark.store import ACCURACIES, Store
    store = Store(a.runs)
    pruned = store.prune() if a.prune else []
    rows = []
    for rid in store.run_ids():
        d = store.describe(rid)
        cfg, res = d["config"], d["result"] or {}
        rows.append({"run_id": rid, "status": d["status"], "detail": d["detail"],
                     "method": cfg.get("method", "?"), "dataset": cfg.get("dataset", "?"),
                     "noise": cfg.get("noise_label", ""), "seed": cfg.get("seed", -1),
                     "epochs": d["epochs"], **{k: res.get(k) for k in ACCURACIES},
                     "run_dir": str(store.run_dir(rid))})
    if a.json:
        print(json.dumps({"runs": json_safe(rows), "pruned": pruned}))
        return 0
    for rid in pruned:
        print(f"removed abandoned run folder {rid}")
    if not rows:
        print(f"no runs in {store.root}")
        return 0
    print(f"{'run_id':16s}  {'status':10s} {'method':16s} {'dataset':13s} {'noise':14s} seed ep  last  sel   best*")
    for r in rows:
        f = lambda v: f"{100 * v:5.1f}" if isinstance(v, (int, float)) and math.isfinite(v) else "  -  "
        line = (f"{r['run_id']:16s}  {r['status']:10s} {r['method']:16s} {r['dataset']:13s} {r['noise']:14s} "
                f"{r['seed']:4d} {r['epochs']:2d} " + " ".join(f(r[k]) for k in ACCURACIES))
        print(line + (f"  ({r['detail']})" if r["detail"] else ""))
    print("last = last epoch; sel = epoch chosen on noisy validation; best* = oracle (best test epoch)")
    if any(r["status"] == "abandoned" for r in rows):
        print("abandoned runs hold nothing to resume: `ls --prune` removes them")
    return 0


# ----- helpers -------------------------------------------------------------------------------

class _EpochBar:
    """The per-epoch progress bar of `run`; a context manager, so an error never prints on its line."""

    def __init__(self, total: int):
        from tqdm import tqdm
        self.bar = tqdm(total=total, desc="epochs", file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(self, row: dict[str, float]) -> None:
        self.bar.set_postfix(loss=f"{row.get('train/loss', math.nan):.3f}",
                             test=f"{row.get('test/acc', math.nan):.3f}",
                             val=f"{row.get('val_noisy/acc', math.nan):.3f}")
        self.bar.update(1)

    def __enter__(self) -> "_EpochBar":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()


def _print_result(res: dict[str, Any]) -> None:
    if not res.get("finished", True):
        print(f"stopped after epoch {res['epoch']}; resume with the same command ({res['run_dir']})")
        return
    tag = " (already finished: loaded from the store)" if res.get("cached") else ""
    pct = lambda k: f"{100 * res[k]:.2f}%" if isinstance(res.get(k), float) and math.isfinite(res[k]) else "n/a"
    print(f"run {res['run_id']}{tag}")
    print(f"  test acc, last epoch:               {pct('test/acc_last')}")
    print(f"  test acc, selected by noisy val:    {pct('test/acc_at_best_val')}")
    print(f"  test acc, best epoch (oracle):      {pct('test/acc_best')}")
    print(f"  measured noise rate:                {pct('noise/actual_rate')}")
    print(f"  results: {res['run_dir']}")


def cmd_merge(a: argparse.Namespace) -> int:
    """Exit 0 when every run merged or was already there; 1 when a run was refused or conflicts."""
    from benchmark.store import merge
    report = merge([Path(p) for p in a.sources], Path(a.into), dry_run=a.dry_run)
    if a.json:
        print(json.dumps(json_safe(report.to_dict())))
    else:
        print(report.summary())
    return 0 if report.ok else 1


def _bench_streaming(a: argparse.Namespace) -> int:
    from benchmark.bench_stream import time_streaming
    from benchmark.data.real_world import LISTINGS
    from benchmark.training import resolve_device
    if a.dataset not in LISTINGS:
        raise UsageError(f"bench --streaming reads a real-world dataset. Valid: {', '.join(sorted(LISTINGS))}")
    if a.images < a.batch_size or a.loader_workers < 1:
        raise UsageError("bench --streaming needs --images >= --batch-size and --loader-workers >= 1")
    dev = str(resolve_device(a.device))
    out = time_streaming(a.dataset, a.data_dir, a.images, a.batch_size, a.loader_workers, dev, a.tmp)
    if a.json:
        print(json.dumps(json_safe(out)))
        return 0
    print(f"{out['dataset']}: {out['images']} images at {out['size']} px (fed {out['crop_size']}), batch "
          f"{out['batch_size']}, {out['workers']} workers, {out['device']}; decode into memory "
          f"{out['decode_all_s']:.1f} s, pack {out['pack_s']:.1f} s")
    for name, r in out["paths"].items():
        print(f"  {name:18s} {r['s']:8.2f} s {r['images_per_s']:9.0f} images/s")
    return 0


def cmd_pack(a: argparse.Namespace) -> int:
    """Write the pack of a listed dataset; a pack already there is verified, not rewritten."""
    from benchmark.data import cache_dir
    from benchmark.data.files.pack import check_pack, pack_name, write_pack
    from benchmark.data.real_world import LISTINGS, listing_for
    if a.dataset not in LISTINGS:
        raise UsageError(f"dataset '{a.dataset}' cannot be packed. Valid: {', '.join(sorted(LISTINGS))}")
    listing = listing_for(a.dataset, a.data_dir)
    out = Path(a.out) if a.out else cache_dir() / "packs" / pack_name(listing)
    if (out / "manifest.json").is_file():
        manifest, state = check_pack(out, listing).manifest, "verified"
    else:
        if out.exists():
            raise UsageError(f"{out} exists and is not a pack: choose another --out")
        last = [0.0]

        def progress(split: str, done: int, total: int) -> None:
            if not a.json and (time.monotonic() - last[0] > 10 or done == total):
                last[0] = time.monotonic()
                print(f"{split}: {done}/{total} images", file=sys.stderr)
        manifest, state = write_pack(listing, out, progress), "written"
    if a.json:
        print(json.dumps({"pack": str(out), "state": state, **manifest}))
    else:
        rows = ", ".join(f"{k} {v['rows']}" for k, v in manifest["splits"].items())
        print(f"pack {state}: {out} ({manifest['dataset']} at {manifest['size']} px: {rows})")
    return 0


COMMANDS = {"run": cmd_run, "grid": cmd_grid, "noise": cmd_noise, "ls": cmd_ls, "tune": cmd_tune,
            "worker": cmd_worker, "report": cmd_report, "bench": cmd_bench, "merge": cmd_merge,
            "pack": cmd_pack}

INTERRUPTED = ("interrupted: finished runs are kept and an interrupted run resumes from its last "
               "checkpoint; run the same command again to go on")


def _fail(message: str, code: int, as_json: bool) -> int:
    """End a command with one message: on stderr (on a line of its own, after any progress bar)
    and, for --json, as one JSON object on stdout. The message is one line."""
    message = " ".join(str(message).split())
    try:
        from tqdm import tqdm
        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    print(f"error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "exit_code": code}))
    return code


def main(argv: list[str] | None = None) -> int:
    """Run one command; map the suite's two fault bases (benchmark/errors.py) to exit codes."""
    from benchmark.store import scrub, scrub_argv
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in argv
    scrub_argv()  # W&B records the program's arguments: never a password from --storage
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageFault as e:
        return _fail(scrub(str(e)), USAGE_EXIT, as_json)
    except RunInterrupted as e:
        if settings.is_child():  # a worker of a local study: its parent says it once
            return INTERRUPT_EXIT
        return _fail(str(e), INTERRUPT_EXIT, as_json)
    except RunFault as e:
        return _fail(scrub(str(e)), RUN_EXIT, as_json)
    except KeyboardInterrupt:
        if settings.is_child():  # a worker of a local study: its parent says it once
            return INTERRUPT_EXIT
        return _fail(INTERRUPTED, INTERRUPT_EXIT, as_json)
    except OSError as e:  # disk full, permissions, a path that is not what it should be
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return _fail(f"{e.strerror or e}{where}", 1, as_json)
