"""What the commands print for a person (``--json`` prints one JSON object instead): tables,
progress bars and one-line summaries."""
from __future__ import annotations

import math
import sys
from typing import Any, Callable

from tqdm import tqdm

__all__ = ["EpochBar", "print_result", "print_best", "print_dry_run", "print_bench", "print_streaming",
           "print_runs", "model_line"]


class EpochBar:
    """The per-epoch progress bar of `run`; a context manager, so an error never prints on its line."""

    def __init__(self, total: int):
        self.bar = tqdm(total=total, desc="epochs", file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(self, row: dict[str, float]) -> None:
        self.bar.set_postfix(loss=f"{row.get('train/loss', math.nan):.3f}",
                             test=f"{row.get('test/acc', math.nan):.3f}",
                             val=f"{row.get('val_noisy/acc', math.nan):.3f}")
        self.bar.update(1)

    def __enter__(self) -> "EpochBar":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()


def print_result(res: dict[str, Any]) -> None:
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


def print_best(b: dict) -> None:
    print(f"study {b['study']} ({b['kind']}, method {b['method']}): objective = {b['objective']}")
    print(f"  best trial #{b['best_trial']}: value {b['best_value']:.4f}  params {b['best_params']}")
    for t in b["trials"]:
        v = f"{t['value']:.4f}" if isinstance(t["value"], float) else "   -  "
        print(f"  #{t['number']:<3d} {t['state']:8s} {v}  {t['params']}")


def print_dry_run(rows: list[dict[str, Any]], hp_text: Callable[[str, dict], str]) -> None:
    """The protocol the runs share, once; then each run with the settings of its own."""
    shared = ({k: v for k, v in rows[0]["protocol"].items() if all(r["protocol"].get(k) == v for r in rows)}
              if rows else {})
    print("protocol: " + ", ".join(f"{k}={v}" for k, v in shared.items()))
    for r in rows:
        own = {k: v for k, v in r["protocol"].items() if shared.get(k, object()) != v}
        hp = hp_text(r["method"], r["hp"])
        extra = "  ".join(x for x in (hp, ", ".join(f"{k}={v}" for k, v in own.items())) if x)
        print(f"{r['run_id']}  {r['status']:9s} {r['method']:16s} {r['noise']:16s} seed={r['seed']}  {extra}")


def print_bench(out: dict[str, Any], rounds: int) -> None:
    print(f"{'method':16s} {'s/epoch':>8s} {'GFLOP/ep':>9s} {'time/CE':>8s} {'FLOP/CE':>8s} "
          f"{'ratio':>6s} {'bookkeep':>8s} {'samples/s':>10s} {'peak MB':>8s} {'spread':>7s}")
    for r in out["methods"]:
        print(f"{r['method']:16s} {r['epoch_s_median']:8.2f} {r['flops_per_epoch'] / 1e9:9.2f} "
              f"{r['time_ratio']:8.2f} {r['flop_ratio']:8.2f} {r['time_over_flops']:6.2f} "
              f"{100 * (r['bookkeeping_share'] or float('nan')):7.1f}% {r['samples_per_s']:10.0f} "
              f"{r['peak_mb']:8.0f} {100 * r['spread']:6.0f}%")
    print("ratio = (time / CE's time) / (FLOPs / CE's FLOPs): 1 means the method costs exactly its "
          "FLOPs; bookkeep = share of the run's wall time outside training; spread = range of the "
          f"per-round s/epoch over its median ({rounds} round{'s' if rounds > 1 else ''})")
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


def print_streaming(out: dict[str, Any]) -> None:
    print(f"{out['dataset']}: {out['images']} images at {out['size']} px (fed {out['crop_size']}), batch "
          f"{out['batch_size']}, {out['workers']} workers, {out['device']}; decode into memory "
          f"{out['decode_all_s']:.1f} s, pack {out['pack_s']:.1f} s")
    for name, r in out["paths"].items():
        print(f"  {name:18s} {r['s']:8.2f} s {r['images_per_s']:9.0f} images/s")


def print_runs(rows: list[dict[str, Any]], accuracies: tuple[str, ...]) -> None:
    """``ls``: one line per run folder, its status and its three test accuracies."""
    print(f"{'run_id':16s}  {'status':10s} {'method':16s} {'dataset':13s} {'noise':14s} seed ep  last  sel   best*")
    for r in rows:
        f = lambda v: f"{100 * v:5.1f}" if isinstance(v, (int, float)) and math.isfinite(v) else "  -  "
        line = (f"{r['run_id']:16s}  {r['status']:10s} {r['method']:16s} {r['dataset']:13s} {r['noise']:14s} "
                f"{r['seed']:4d} {r['epochs']:2d} " + " ".join(f(r[k]) for k in accuracies))
        print(line + (f"  ({r['detail']})" if r["detail"] else ""))
    print("last = last epoch; sel = epoch chosen on noisy validation; best* = oracle (best test epoch)")
    if any(r["status"] == "stale" for r in rows):
        print("stale runs were made by an older revision of their method or of the training loop: reports "
              "leave them out; rerunning their grid trains the current revision next to them")
    if any(r["status"] == "abandoned" for r in rows):
        print("abandoned runs hold nothing to resume: `ls --prune` removes them")


def model_line(spec) -> str:
    """A model's name and what it needs of its input, for ``ls --models``."""
    needs = (["3 channels"] if spec.rgb_only else []) + (
        [f"side >= {spec.min_image_size}"] if spec.min_image_size else []) + (
        ["pretrained weights"] if spec.pretrained else [])
    return f"{spec.name} ({', '.join(needs)})" if needs else spec.name
