"""The GPU checks: every method on a CUDA device (fp32, and bf16 with channels-last), the same run
id giving the same numbers on the same GPU, resume equality, runs sharing one GPU through
workers, the strong views on the device. Marked ``gpu``: skipped (and counted as skipped) where
there is no CUDA device; ``bash scripts/gpu_check.sh`` runs them with the GPU rows of
docs/BENCHMARKS.md.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.config import build_config
from benchmark.store import Store
from benchmark.training import run
from methods import list_methods

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

ROOT = Path(__file__).resolve().parents[1]


def gpu_config(method: str, **over):
    """One epoch of a CIFAR backbone on 512 random CIFAR-shaped images, on the GPU."""
    base = {"dataset": "synthetic_cifar10", "model": "preact_resnet18", "method": method, "epochs": 1,
            "subset": 512, "val_frac": 0.125, "batch_size": 64, "eval_batch_size": 256,
            "device": "cuda", "noise": {"kind": "sym", "rate": 0.4}, "test_subset": 512}
    return build_config(base, [f"{k}={v}" for k, v in over.items()])


def _rows(store, res):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in Store(store).read_metrics(res["run_id"])]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("method", list_methods())
def test_every_method_trains_an_epoch_on_the_gpu(method, precision, tmp_path):
    extra = {"precision": "bf16", "channels_last": "true"} if precision == "bf16" else {}
    res = run(gpu_config(method, **extra), tmp_path, wandb="disabled")
    row = _rows(tmp_path, res)[0]
    for k in ("train/loss", "test/acc", "val_noisy/acc"):
        assert math.isfinite(row[k]), k
    cfg = json.loads((tmp_path / res["run_id"] / "config.json").read_text())
    assert cfg["numerics"]["device_type"] == "cuda" and cfg["numerics"]["gpu"]


@pytest.mark.parametrize("method", ["ce", "dividemix", "disc", "sed+obd"])
def test_same_run_id_same_numbers_on_the_same_gpu(method, tmp_path):
    a = run(gpu_config(method, epochs=2), tmp_path / "a", wandb="disabled")
    b = run(gpu_config(method, epochs=2), tmp_path / "b", wandb="disabled")
    assert a["run_id"] == b["run_id"]
    assert _rows(tmp_path / "a", a) == _rows(tmp_path / "b", b)


@pytest.mark.parametrize("method", ["ce", "coteaching", "elr_plus"])
def test_resume_on_the_gpu_equals_an_uninterrupted_run(method, tmp_path):
    full = run(gpu_config(method, epochs=3), tmp_path / "full", wandb="disabled")
    run(gpu_config(method, epochs=3), tmp_path / "part", stop_after=1, wandb="disabled")
    resumed = run(gpu_config(method, epochs=3), tmp_path / "part", wandb="disabled")
    assert _rows(tmp_path / "full", full) == _rows(tmp_path / "part", resumed)


def test_runs_sharing_one_gpu_through_workers_equal_sequential_runs(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('seeds = [0, 1]\nmethods = ["ce", "gce"]\n[base]\ndataset = "synthetic_cifar10"\n'
                    'model = "preact_resnet18"\nepochs = 1\nsubset = 512\nval_frac = 0.125\n'
                    'batch_size = 64\ntest_subset = 512\ndevice = "cuda"\n[[noise]]\nkind = "sym"\nrate = 0.4\n')
    env = {**os.environ, "WANDB_MODE": "disabled"}
    for name, workers in (("seq", "0"), ("par", "3")):
        p = subprocess.run([sys.executable, "runner.py", "grid", str(grid), "--runs", str(tmp_path / name),
                            "--workers", workers, "--no-report", "--wandb", "disabled", "--json"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr
    seq, par = Store(tmp_path / "seq"), Store(tmp_path / "par")
    ids = sorted(rid for rid, *_ in seq.finished_runs())
    assert len(ids) == 4 and ids == sorted(rid for rid, *_ in par.finished_runs())
    for rid in ids:
        assert seq.result(rid)["test/acc_last"] == par.result(rid)["test/acc_last"]


def test_strong_views_run_on_the_device_and_are_reproducible():
    from benchmark.data.augment import Augmenter, StrongAugmenter
    from methods.base import StrongSpec
    weak = Augmenter((0.5,) * 3, (0.25,) * 3, crop_pad=4, hflip=True)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, device="cuda")
    for spec in (StrongSpec("autoaugment"), StrongSpec("randaugment", "disc", 2, 10)):
        view = StrongAugmenter(weak, spec)
        a = view(x, torch.Generator(device="cuda").manual_seed(0))
        b = view(x, torch.Generator(device="cuda").manual_seed(0))
        assert a.device.type == "cuda" and a.shape == x.shape and a.dtype == torch.float32
        assert torch.equal(a, b) and torch.isfinite(a).all()
