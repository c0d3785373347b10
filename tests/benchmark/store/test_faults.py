"""Fault injection: a grid SIGKILLed at seeded moments (mid-checkpoint, mid-metrics, mid-result,
mid-config and mid-meta write), rerun each time, ends exactly like an uninterrupted grid.

The kill comes from the store's fault hook (benchmark/store/atomic.py, env
NLB_KILL_AT=<file kind>:<n>): the process kills itself with SIGKILL after writing the n-th
temporary file of that kind and before renaming it, the worst moment for a store that writes
atomically.
"""
from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

GRID = """seeds = [0]
methods = ["ce", "coteaching"]
[base]
dataset = "digits"
model = "cnn"
epochs = 3
subset = 400
batch_size = 64
device = "cpu"
checkpoint_s = 0
[[noise]]
kind = "sym"
rate = 0.4
[[noise]]
kind = "pairflip"
rate = 0.3
"""
KINDS = ("checkpoint", "metrics", "result", "config", "meta")


def _grid(grid: Path, runs: Path, kill: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("NLB_KILL_AT", None)
    if kill:
        env["NLB_KILL_AT"] = kill
    return subprocess.run([sys.executable, "runner.py", "grid", str(grid), "--runs", str(runs),
                           "--no-report", "--workers", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _snapshot(runs: Path) -> dict[str, list[dict[str, str]]]:
    out = {}
    for d in sorted(p for p in runs.iterdir() if len(p.name) == 16):
        with open(d / "metrics.csv") as f:
            out[d.name] = [{k: v for k, v in r.items() if not k.startswith("time/")} for r in csv.DictReader(f)]
        res = json.loads((d / "result.json").read_text())
        out[d.name].append({k: v for k, v in res.items() if not k.startswith(("time/", "mem/"))})
    return out


def test_grid_killed_at_seeded_moments_ends_like_an_uninterrupted_one(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    clean = _grid(grid, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr[-2000:]

    rng = random.Random(20261201)  # seeded kill points: the same moments on every test run
    # 4 runs x 3 epochs: 12 checkpoint and metrics writes, 4 of each of result, config and meta
    kills = [f"checkpoint:{rng.randint(1, 10)}", f"metrics:{rng.randint(1, 10)}",
             f"result:{rng.randint(1, 3)}", f"config:{rng.randint(1, 3)}", f"meta:{rng.randint(1, 3)}",
             f"any:{rng.randint(1, 30)}"]
    runs = tmp_path / "runs"
    killed = 0
    for kill in kills:
        p = _grid(grid, runs, kill)
        if p.returncode == -signal.SIGKILL:
            killed += 1
        else:  # the grid had finished before reaching this write
            assert p.returncode == 0, p.stderr[-2000:]
    assert killed >= 5
    final = _grid(grid, runs)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "Traceback" not in final.stderr

    # every cell x seed finished exactly once, nothing else in the store
    folders = sorted(p.name for p in runs.iterdir() if p.is_dir() and len(p.name) == 16)
    assert folders == sorted(_snapshot(tmp_path / "clean"))
    for rid in folders:
        d = runs / rid
        assert (d / "result.json").is_file()
        assert not (d / "checkpoint.pt").exists() and not (d / "checkpoint.prev.pt").exists()
        for f in d.glob("*.json"):
            json.loads(f.read_text())  # no corrupt JSON
        epochs = [int(r["epoch"]) for r in csv.DictReader(open(d / "metrics.csv"))]
        assert epochs == [1, 2, 3]
    # no stale temporary file anywhere (run folders, the noise cache)
    assert not [p for p in runs.rglob("*.tmp")]
    # and the numbers are those of the uninterrupted grid, bit for bit
    assert _snapshot(runs) == _snapshot(tmp_path / "clean")
