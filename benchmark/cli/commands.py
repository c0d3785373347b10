"""The commands of ``runner.py``: each one turns its flags into a call to the harness and prints
the answer (one JSON object on stdout with ``--json``; progress on stderr).

Imports of the harness sit inside the commands: a command loads only what it uses, so
``runner.py --help`` and ``runner.py ls`` stay fast (torch, optuna, matplotlib, submitit and
Kornia each take seconds to import).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmark.cli import output
from benchmark.cli.parser import base_from_args
from benchmark.config import build_config, check_config, stale_reason
from benchmark.errors import UsageError
from benchmark.store import json_safe

__all__ = ["COMMANDS"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _with_paths(a: argparse.Namespace) -> list[str]:
    """The command's --set overrides, plus --data-dir and --device when given."""
    return (list(a.set) + ([f"data_dir={a.data_dir}"] if a.data_dir else [])
            + ([f"device={a.device}"] if a.device else []))


def cmd_run(a: argparse.Namespace) -> int:
    from benchmark.training import run, validate
    cfg = build_config(base_from_args(a), a.set, a.config)
    validate(cfg)  # a bad setting is one line, before any progress bar is drawn
    with output.EpochBar(cfg.epochs) as bar:
        res = run(cfg, a.runs, progress=bar.update, wandb=a.wandb)
    if a.json:
        print(json.dumps(json_safe(res), sort_keys=True))
    else:
        output.print_result(res)
    return 0


def cmd_grid(a: argparse.Namespace) -> int:
    from benchmark.orchestration import grids
    from benchmark.orchestration.slurm_options import SlurmOptions
    slurm = SlurmOptions(jobs=a.slurm_jobs, partition=a.slurm_partition, account=a.slurm_account,
                         gpus_per_job=a.slurm_gpus_per_job, cpus_per_job=a.slurm_cpus_per_job,
                         array_parallelism=a.slurm_array_parallelism, time_min=a.slurm_time_min,
                         mem_gb=a.slurm_mem_gb)
    # every value reaches sbatch: refused before anything is read or written, and with
    # --launcher local too, where a bad value would otherwise pass unnoticed until it mattered
    slurm.check()
    grid = grids.plan(a.preset, a.seeds, _with_paths(a), runs=a.runs, workers=a.workers, study=a.study,
                      tuned=a.tuned, storage=a.storage, log=_stderr)
    if a.dry_run:
        rows = grids.dry_run(grid)
        pending = sum(r["status"] == "pending" for r in rows)
        _stderr(grids.status_line(grid.name, len(rows), pending, grid.store))
        if a.json:
            print(json.dumps(json_safe({"runs": rows, "total": len(rows), "pending": pending})))
        else:
            output.print_dry_run(rows, grids.hp_text)
        return 0
    opts = grids.GridOptions(runs=a.runs, workers=a.workers, storage=a.storage, study=a.study,
                             launcher=a.launcher, slurm=slurm, wandb=a.wandb, report=not a.no_report)
    rc, summary = grids.execute(grid, opts, log=_stderr)
    if a.json:
        print(json.dumps(summary))
    else:
        print(f"done: {summary['trained']} trained, {len(summary['failed'])} failed, results in {summary['store']}")
        print(f"  list them: python runner.py ls --runs {a.runs}")
        if summary.get("report"):
            print(f"  leaderboard: {summary['report']}")
    return rc


def cmd_noise(a: argparse.Namespace) -> int:
    from benchmark.data import load_dataset
    from benchmark.store import noise_for
    from noise import save_artifact
    base = base_from_args(a)
    base.setdefault("noise", {})
    cfg = build_config(base)
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
    art = noise_for(cfg, data, cfg.streams()["noise"], Path(a.runs))
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
    from benchmark.orchestration.studies import best, default_storage
    storage = a.storage or default_storage(a.runs)
    if a.show:
        b = best(a.show, storage)
        if a.json:
            print(json.dumps(json_safe(b)))
        else:
            output.print_best(b)
        return 0
    if not a.method:
        raise UsageError("tune needs --method (or --show NAME)")
    if a.trials < 1 or a.seeds < 1 or a.workers < 1:
        raise UsageError("--trials, --seeds and --workers must be at least 1")
    from benchmark.orchestration.tuning import tune, tune_base
    cfg = tune_base(base_from_args(a), a.method, _with_paths(a), a.config, a.preset)
    rc, b = tune(cfg, storage, runs=a.runs, params=a.param, only_params=a.only_params, study=a.study,
                 where=a.preset or cfg.dataset, trials=a.trials, seeds=a.seeds, pruner=a.pruner,
                 sampler_seed=a.sampler_seed, workers=a.workers, wandb=a.wandb, log=_stderr)
    if a.json:
        print(json.dumps(json_safe(b)))
    else:
        output.print_best(b)
    return rc


def cmd_worker(a: argparse.Namespace) -> int:
    from benchmark.orchestration.studies import default_storage, work
    n = work(a.study, a.storage or default_storage(a.runs), a.runs, a.wandb, log=_stderr)
    if a.json:
        print(json.dumps({"study": a.study, "trials": n}))
    _stderr(f"worker done: {n} trials")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    out = Path(a.out) if a.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {a.out}: exists and is not a directory")
    if a.study:
        from benchmark.orchestration.studies import default_storage
        from benchmark.orchestration.study_plots import study_report
        names, paths = study_report(a.study, a.storage or default_storage(a.runs), out, a.runs)
        if a.json:
            print(json.dumps({"studies": names, "plots": [str(p) for p in paths]}))
        else:
            print("\n".join(str(p) for p in paths) or "no complete trial to plot")
        return 0
    from benchmark.orchestration.publish import report
    from benchmark.store import parse_filters
    index = report(a.runs, out or Path(a.runs) / "report", parse_filters(a.filter), a.wandb, a.include_tuning)
    if a.json:
        print(json.dumps({"index": str(index.resolve())}))
    else:
        print(f"report: {index.resolve()}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    if a.tmp is not None and not Path(a.tmp).is_dir():
        raise UsageError(f"--tmp {a.tmp}: not an existing directory")
    if a.streaming:
        from benchmark.bench import bench_streaming
        out = bench_streaming(a.dataset, a.data_dir, a.images, a.batch_size, a.loader_workers, a.device, a.tmp)
        if a.json:
            print(json.dumps(json_safe(out)))
        else:
            output.print_streaming(out)
        return 0
    from benchmark.bench import BenchOptions, bench
    out = bench(BenchOptions(
        methods=[m for m in a.methods.split(",") if m], preset=a.preset, dataset=a.dataset, model=a.model,
        subset=a.subset, epochs=a.epochs, batch_size=a.batch_size, device=a.device, threads=a.threads,
        sets=a.set, rounds=a.rounds, loader_workers=a.loader_workers, precision=a.precision,
        channels_last=a.channels_last, val_frac=a.val_frac, loader=not a.no_loader, strong=a.strong,
        tmp=a.tmp))
    if a.json:
        print(json.dumps(json_safe(out)))
    else:
        output.print_bench(out, a.rounds)
    return 0


def cmd_ls(a: argparse.Namespace) -> int:
    if a.datasets or a.models or a.methods or a.presets:
        return _ls_names(a)
    from benchmark.store import ACCURACIES, Store
    store = Store(a.runs)
    pruned = store.prune() if a.prune else []
    rows = []
    for rid in store.run_ids():
        d = store.describe(rid)
        cfg, res = d["config"], d["result"] or {}
        status, detail = d["status"], d["detail"]
        if status == "finished" and (why := stale_reason(cfg)):  # made by an older revision of the code
            status, detail = "stale", f"{why}; reports leave it out, its grid retrains it"
        rows.append({"run_id": rid, "status": status, "detail": detail,
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
    output.print_runs(rows, ACCURACIES)
    return 0


def _ls_names(a: argparse.Namespace) -> int:
    """ls --datasets / --models / --methods / --presets: the valid names, from the registries."""
    names: dict[str, list[str]] = {}
    if a.datasets:
        from benchmark.data import list_datasets, prefix_forms
        names["datasets"] = list_datasets() + prefix_forms()
    if a.models:
        from benchmark.models import list_models, model_spec
        names["models"] = [output.model_line(model_spec(m)) for m in list_models()]
    if a.methods:
        from methods import list_methods
        names["methods"] = list_methods()
    if a.presets:
        from benchmark.config import list_presets
        names["presets"] = list_presets()
    if a.json:
        print(json.dumps(names))
    else:
        for kind, items in names.items():
            print(f"{kind}: {', '.join(items)}")
    return 0


def cmd_merge(a: argparse.Namespace) -> int:
    """Exit 0 when every run merged or was already there; 1 when a run was refused or conflicts."""
    from benchmark.store import merge
    report = merge([Path(p) for p in a.sources], Path(a.into), dry_run=a.dry_run)
    if a.json:
        print(json.dumps(json_safe(report.to_dict())))
    else:
        print(report.summary())
    return 0 if report.ok else 1


def cmd_pack(a: argparse.Namespace) -> int:
    """Write the pack of a listed dataset; a pack already there is verified, not rewritten."""
    from benchmark.data import cache_dir
    from benchmark.data.files import check_pack, pack_name, write_pack
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
                _stderr(f"{split}: {done}/{total} images")
        manifest, state = write_pack(listing, out, progress), "written"
    if a.json:
        print(json.dumps({"pack": str(out), "state": state, **manifest}))
    else:
        rows = ", ".join(f"{k} {v['rows']}" for k, v in manifest["splits"].items())
        print(f"pack {state}: {out} ({manifest['dataset']} at {manifest['size']} px: {rows})")
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    from benchmark.training.conformance import CHECKS, run_checks
    unknown = [c for c in a.only if c not in CHECKS]
    if unknown:
        raise UsageError(f"unknown check(s) {', '.join(unknown)}. Valid: {', '.join(CHECKS)}")

    def show(o) -> None:
        if not a.json:
            print(f"{'PASS' if o.ok else 'FAIL'}  {o.check:<16} {o.seconds:6.1f} s  {o.detail}", flush=True)

    outcomes = run_checks(a.method, a.only or None, log=show)
    failed = [o for o in outcomes if not o.ok]
    if a.json:
        print(json.dumps({"method": a.method, "ok": not failed,
                          "checks": [vars(o) for o in outcomes]}))
    else:
        print(f"{a.method}: {len(outcomes) - len(failed)} of {len(outcomes)} checks passed"
              + (f"; failed: {', '.join(o.check for o in failed)}" if failed else ""))
    return 1 if failed else 0


def cmd_verify(a: argparse.Namespace) -> int:
    """Exit 0 when every chosen run re-derives its recorded figures; 1 when one differs."""
    from benchmark.orchestration.rederive import TOLERANCE, choose, verify_run
    from benchmark.store import Store
    if a.run_ids and a.sample:
        raise UsageError("give RUN_IDs or --sample N, not both")
    store = Store(a.runs)
    chosen = choose(store, a.run_ids, a.sample)
    verdicts = []
    for rid in chosen:
        if not a.json:
            _stderr(f"retraining {rid} ...")
        v = verify_run(store, rid, data_dir=a.data_dir)
        verdicts.append(v)
        if not a.json:
            how = "bit for bit" if v.exact else f"within {TOLERANCE:g} (other numerics: {v.why_not_exact})"
            print(f"{'OK  ' if v.ok else 'DIFF'}  {rid}  compared {how}", flush=True)
            for line in v.differences:
                print(f"      {line}")
    bad = [v for v in verdicts if not v.ok]
    if a.json:
        print(json.dumps(json_safe({"ok": not bad, "runs": [{**vars(v), "ok": v.ok} for v in verdicts]})))
    else:
        print(f"{len(verdicts) - len(bad)} of {len(verdicts)} runs re-derived their recorded figures"
              + (f"; differ: {', '.join(v.run_id for v in bad)}" if bad else ""))
    return 1 if bad else 0


COMMANDS = {"run": cmd_run, "grid": cmd_grid, "noise": cmd_noise, "ls": cmd_ls, "tune": cmd_tune,
            "worker": cmd_worker, "report": cmd_report, "bench": cmd_bench, "merge": cmd_merge,
            "pack": cmd_pack, "check": cmd_check, "verify": cmd_verify}
"""Command name -> function(args) -> exit code; cli/parser.py declares each one's flags."""
