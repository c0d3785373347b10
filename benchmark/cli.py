"""Command-line interface. runner.py calls main(); every command is a thin layer over benchmark/.

Exit codes: 0 success, 1 runtime failure (missing data, diverged run), 2 usage error.
Progress goes to stderr; ``--json`` prints exactly one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config import UsageError, build_config


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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="runner.py", description="Benchmark suite for learning with noisy labels.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    g.add_argument("preset", help="preset name (benchmark/presets) or path to a .toml grid")
    g.add_argument("--seeds", type=_seeds, help="comma-separated seeds, e.g. 0,1,2")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every cell")
    g.add_argument("--runs", default="runs"); g.add_argument("--data-dir"); g.add_argument("--device")
    g.add_argument("--dry-run", action="store_true", help="list the runs and their status, train nothing")
    g.add_argument("--json", action="store_true")
    _wandb_flag(g)

    n = sub.add_parser("noise", help="build (or load) a noise artifact and print it")
    n.add_argument("--dataset", default="fashion_mnist")
    _noise_flags(n)
    n.add_argument("--seed", type=int, default=0, help="base seed (the run's noise stream is derived from it)")
    n.add_argument("--export", help="write the artifact to this .npz file")
    n.add_argument("--runs", default="runs"); n.add_argument("--data-dir")
    n.add_argument("--json", action="store_true")

    ls = sub.add_parser("ls", help="list the runs in the store")
    ls.add_argument("--runs", default="runs"); ls.add_argument("--json", action="store_true")
    return ap


# ----- commands -------------------------------------------------------------------------------

def cmd_run(a: argparse.Namespace) -> int:
    from benchmark.train import run
    cfg = build_config(_base_from_args(a), a.set, a.config)
    bar = _EpochBar(cfg.epochs)
    res = run(cfg, a.runs, progress=bar.update, wandb=a.wandb)
    bar.close()
    if a.json:
        print(json.dumps(_jsonable(res), sort_keys=True))
    else:
        _print_result(res)
    return 0


def cmd_grid(a: argparse.Namespace) -> int:
    from benchmark.grid import expand, load_preset
    from benchmark.store import Store
    from benchmark.train import TrainingDiverged, prepare, run
    spec = load_preset(a.preset)
    sets = list(a.set)
    if a.data_dir:
        sets.append(f"data_dir={a.data_dir}")
    if a.device:
        sets.append(f"device={a.device}")
    cfgs = expand(spec, a.seeds, sets)
    store = Store(a.runs)
    plan = []
    for cfg in cfgs:  # validate every cell before training any (a bad cell fails fast)
        prep = prepare(cfg, store)
        plan.append((cfg, prep.run_id, store.is_finished(prep.run_id), prep.artifact.spec.label()))
    todo = [p for p in plan if not p[2]]
    print(f"grid {spec['name']}: {len(plan)} runs, {len(plan) - len(todo)} finished, "
          f"{len(todo)} to train (store: {store.root})", file=sys.stderr)
    if a.dry_run:
        rows = [{"run_id": rid, "method": c.method, "dataset": c.dataset, "noise": label,
                 "seed": c.seed, "status": "finished" if done else "pending"} for c, rid, done, label in plan]
        if a.json:
            print(json.dumps({"runs": rows, "total": len(plan), "pending": len(todo)}))
        else:
            for r in rows:
                print(f"{r['run_id']}  {r['status']:9s} {r['method']:16s} {r['noise']:14s} seed={r['seed']}")
        return 0
    from tqdm import tqdm
    failed = []
    t0 = time.time()
    with tqdm(total=len(todo), desc=f"grid {spec['name']}", unit="run", file=sys.stderr,
              dynamic_ncols=True) as bar:
        for cfg, rid, _, label in todo:
            bar.set_postfix_str(f"{cfg.method} {label} s{cfg.seed}")
            try:
                run(cfg, a.runs, wandb=a.wandb)
            except TrainingDiverged as e:
                failed.append(rid)
                print(f"\nrun failed: {e}", file=sys.stderr)
            bar.update(1)
    summary = {"preset": spec["name"], "runs": len(plan), "trained": len(todo) - len(failed),
               "failed": failed, "store": str(store.root.resolve()), "seconds": round(time.time() - t0, 1)}
    if a.json:
        print(json.dumps(summary))
    else:
        print(f"done: {summary['trained']} trained, {len(failed)} failed, results in {summary['store']}")
        print(f"  list them: python runner.py ls --runs {a.runs}")
    return 1 if failed else 0


def cmd_noise(a: argparse.Namespace) -> int:
    from benchmark.data import load_dataset
    from benchmark.noise_cache import noise_for
    from noise import save_artifact
    base = _base_from_args(a)
    base.setdefault("noise", {})
    cfg = build_config(base)
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
        print(json.dumps(_jsonable(info), sort_keys=True))
        return 0
    print(f"noise {info['label']} on {cfg.dataset} (base seed {cfg.seed}, noise seed {art.seed})")
    print(f"  measured flip rate: {art.actual_rate:.4f}   samples: {len(art.noisy_labels)}")
    print(f"  sha256: {art.sha256}")
    print("  realised T (row = true class, T[i, j] = P(noisy = j | true = i)):")
    with np.printoptions(precision=3, suppress=True, linewidth=140):
        print("  " + str(np.asarray(art.transition)).replace("\n", "\n  "))
    if a.export:
        print(f"  exported to {info['exported_to']}")
    return 0


def cmd_ls(a: argparse.Namespace) -> int:
    from benchmark.store import Store, read_json
    store = Store(a.runs)
    rows = []
    for rid in store.run_ids():
        cfg = read_json(store.run_dir(rid) / "config.json")
        res = store.result(rid) or {}
        rows.append({"run_id": rid, "status": store.status(rid), "method": cfg["method"],
                     "dataset": cfg["dataset"], "noise": cfg.get("noise_label", ""),
                     "seed": cfg["seed"], "epochs": len(store.read_metrics(rid)),
                     "test/acc_last": res.get("test/acc_last"),
                     "test/acc_at_best_val": res.get("test/acc_at_best_val"),
                     "test/acc_best": res.get("test/acc_best"), "run_dir": str(store.run_dir(rid))})
    if a.json:
        print(json.dumps({"runs": _jsonable(rows)}))
        return 0
    if not rows:
        print(f"no runs in {store.root}")
        return 0
    print(f"{'run_id':16s}  {'status':10s} {'method':16s} {'dataset':13s} {'noise':14s} seed ep  last  sel   best*")
    for r in rows:
        f = lambda v: f"{100 * v:5.1f}" if isinstance(v, (int, float)) and math.isfinite(v) else "  -  "
        print(f"{r['run_id']:16s}  {r['status']:10s} {r['method']:16s} {r['dataset']:13s} {r['noise']:14s} "
              f"{r['seed']:4d} {r['epochs']:2d} {f(r['test/acc_last'])} {f(r['test/acc_at_best_val'])} {f(r['test/acc_best'])}")
    print("last = last epoch; sel = epoch chosen on noisy validation; best* = oracle (best test epoch)")
    return 0


# ----- helpers -------------------------------------------------------------------------------

class _EpochBar:
    def __init__(self, total: int):
        from tqdm import tqdm
        self.bar = tqdm(total=total, desc="epochs", file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(self, row: dict[str, float]) -> None:
        self.bar.set_postfix(loss=f"{row.get('train/loss', math.nan):.3f}",
                             test=f"{row.get('test/acc', math.nan):.3f}",
                             val=f"{row.get('val_noisy/acc', math.nan):.3f}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


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


COMMANDS = {"run": cmd_run, "grid": cmd_grid, "noise": cmd_noise, "ls": cmd_ls}


def main(argv: list[str] | None = None) -> int:
    from benchmark.data import DataError
    from benchmark.train import TrainingDiverged
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (DataError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
