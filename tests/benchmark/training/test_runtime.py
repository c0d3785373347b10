"""Same run id, same numbers: the numerical setting is pinned per run, recorded, and checked.

Also the per-run compute figures (peak memory of the run, not of the process; wall time summed
over a resumed run's processes).
"""
from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from benchmark.errors import StoreError
from benchmark.store import Store
from benchmark.training import run
from tests.conftest import ROOT, tiny_config

GRID = """seeds = [0]
methods = ["ce", "gce"]
[base]
dataset = "digits"
model = "cnn"
epochs = 3
subset = 600
batch_size = 32
device = "cpu"
[[noise]]
kind = "sym"
rate = 0.4
[[noise]]
kind = "pairflip"
rate = 0.3
"""


def _metrics(runs: Path) -> dict[str, list[dict[str, str]]]:
    """run id -> metrics.csv rows without the timing columns (which differ by nature)."""
    out = {}
    for d in sorted(p for p in runs.iterdir() if (p / "result.json").is_file()):
        with open(d / "metrics.csv") as f:
            out[d.name] = [{k: v for k, v in r.items() if not k.startswith("time/")} for r in csv.DictReader(f)]
    return out


def test_sequential_grid_and_two_workers_compute_the_same_runs(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text(GRID)
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("OMP_NUM_THREADS", None)
    for runs, extra in (("A", ["--workers", "0"]), ("B", ["--workers", "2"])):
        p = subprocess.run([sys.executable, "runner.py", "grid", str(f), "--runs", str(tmp_path / runs),
                            "--no-report", "--json", *extra], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        assert json.loads(p.stdout.strip().splitlines()[-1])["runs"] == 4
    a, b = _metrics(tmp_path / "A"), _metrics(tmp_path / "B")
    assert set(a) == set(b) and len(a) == 4
    for rid in a:
        assert a[rid] == b[rid], rid  # bitwise: the CSV holds repr() of every float
    meta = json.loads((tmp_path / "B" / next(iter(b)) / "meta.json").read_text())
    assert meta["numerics"]["threads"] == 1 and meta["numerics"]["deterministic_algorithms"] is True
    assert meta["numerics"]["device_type"] == "cpu" and "sklearn" in meta["data_source"]


def test_threads_are_part_of_the_identity_and_pinned_per_run(tmp_path):
    one, two = tiny_config("ce", threads=1), tiny_config("ce", threads=2)
    assert one.run_id() != two.run_id()
    before = torch.get_num_threads()
    seen = []
    run(two, tmp_path, wandb="disabled", progress=lambda row: seen.append(torch.get_num_threads()))
    assert seen == [2, 2] and torch.get_num_threads() == before  # restored afterwards


def test_a_finished_run_made_under_another_setting_is_refused(tmp_path):
    res = run(tiny_config("ce"), tmp_path, wandb="disabled")
    cfg_file = Path(res["run_dir"]) / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["numerics"]["threads"] = 8
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(StoreError, match="threads 8 vs 1"):
        run(tiny_config("ce"), tmp_path, wandb="disabled")


def test_numerics_name_the_cpu_kernels():
    """Which kernels torch dispatches to decides the last digits: recorded with every run."""
    from benchmark.training import runtime
    n = runtime.numerics(1, "fp32", torch.device("cpu"))
    assert n["cpu"]["capability"] == torch.backends.cpu.get_cpu_capability() and n["cpu"]["model"]
    assert isinstance(n["cpu"]["isa"], list)
    other = {**n, "cpu": {**n["cpu"], "capability": "AVX2"}}
    assert runtime.same_machine(n, n) and not runtime.same_machine(n, other)
    assert runtime.same_machine(n, {k: v for k, v in n.items() if k != "cpu"})  # recorded before: agrees


def test_a_finished_run_from_another_kernel_set_is_still_the_same_run(tmp_path):
    """A run merged from a machine with other CPU kernels is that machine's result of the same
    run: reused, not refused (its numbers may differ in the last digits)."""
    res = run(tiny_config("ce"), tmp_path, wandb="disabled")
    cfg_file = Path(res["run_dir"]) / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["numerics"]["cpu"]["capability"] = "AVX2"
    cfg_file.write_text(json.dumps(cfg))
    assert run(tiny_config("ce"), tmp_path, wandb="disabled")["test/acc_last"] == res["test/acc_last"]


@pytest.mark.parametrize("key, value", [("torch", "1.0.0"), ("cpu", {"capability": "AVX2"})])
def test_a_checkpoint_from_another_setting_is_not_resumed(tmp_path, key, value):
    part = run(tiny_config("ce", epochs=3), tmp_path, stop_after=1, wandb="disabled")
    ck = Path(part["run_dir"]) / "checkpoint.pt"
    state = torch.load(ck, weights_only=True)
    state["numerics"][key] = value  # another torch, or another machine's kernels
    torch.save(state, ck)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = run(tiny_config("ce", epochs=3), tmp_path, wandb="disabled")
    assert any("another" in str(x.message) or "numerical setting" in str(x.message) for x in w)
    meta = json.loads((Path(res["run_dir"]) / "meta.json").read_text())
    assert meta["processes"] == 1  # started over: nothing of the other setting was kept
    assert (Path(res["run_dir"]) / "checkpoint.pt.bad").is_file()
    full = run(tiny_config("ce", epochs=3), tmp_path / "full", wandb="disabled")
    assert res["test/acc_last"] == full["test/acc_last"]


def _rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("VmRSS"))) / 1024


def test_peak_memory_is_the_runs_own(tmp_path):
    big = torch.ones(600 * 2**20 // 4)  # 600 MiB touched by this process before the run
    big += 1
    del big
    baseline = _rss_mb()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 > baseline + 500
    res = run(tiny_config("ce"), tmp_path, wandb="disabled")
    # the run's own peak: what the process held during the run, not its lifetime maximum
    assert baseline * 0.9 < res["mem/peak_mb"] < baseline + 300


def test_wall_time_adds_up_over_resumed_processes(tmp_path):
    part = run(tiny_config("ce", epochs=3), tmp_path, stop_after=2, wandb="disabled")
    first = torch.load(Path(part["run_dir"]) / "checkpoint.pt", weights_only=True)["resources"]["wall_s"]
    res = run(tiny_config("ce", epochs=3), tmp_path, wandb="disabled")
    meta = json.loads((Path(res["run_dir"]) / "meta.json").read_text())
    assert meta["processes"] == 2
    assert res["time/wall_s"] == meta["wall_s"] > first > 0
    assert meta["wall_s"] >= res["time/total_s"]  # wall includes every epoch's training time
    assert Store(tmp_path).describe(res["run_id"])["status"] == "finished"


@pytest.mark.parametrize("method", ["ce", "dividemix+obd"])
def test_a_sparse_test_schedule_keeps_the_selected_number_exact(tmp_path, method):
    """test_every = 4: the test set is scored at epochs 4 and 6 only, yet the accuracy at the
    epoch chosen by noisy validation is that of the networks of that epoch (kept and tested at
    the end), equal to the every-epoch run's."""
    every = run(tiny_config(method, epochs=6), tmp_path / "a", wandb="disabled")
    sparse = run(tiny_config(method, epochs=6, test_every=4), tmp_path / "b", wandb="disabled")
    rows_a = Store(tmp_path / "a").read_metrics(every["run_id"])
    rows_b = Store(tmp_path / "b").read_metrics(sparse["run_id"])
    sel = sparse["selected_epoch"]
    assert sel == every["selected_epoch"]
    tested = {int(r["epoch"]) for r in rows_b if "test/acc" in r}
    assert tested == {4, 6} | {sel}
    assert sparse["test/acc_at_best_val"] == every["test/acc_at_best_val"] == rows_a[sel - 1]["test/acc"]
    assert sparse["test/acc_last"] == every["test/acc_last"]
    assert [r["val_noisy/acc"] for r in rows_a] == [r["val_noisy/acc"] for r in rows_b]
    assert "memo/noisy_fit" in rows_b[3] and "memo/noisy_fit" not in rows_b[0]
    assert sparse["tested_epochs"] == len(tested) and every["tested_epochs"] == 6
