"""grid --launcher slurm on a real single-node Slurm cluster (slurm_cluster.py beside this file;
skipped without slurm-wlm and munge): a tiny grid as a 3-task job array, one task cancelled
mid-run, and every cell x seed still finished exactly once."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import optuna

from benchmark.config import expand, load_preset
from benchmark.orchestration.studies import load_definition
from benchmark.store import Store, read_json
from tests.benchmark.orchestration.slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401  (fixture)

GRID = """
description = "tiny grid for the Slurm launcher test"
seeds = [0, 1, 2]
methods = ["ce", "gce"]
[base]
dataset = "digits"
model = "mlp"
epochs = 100
batch_size = 32
checkpoint_s = 0.0
[[noise]]
kind = "sym"
rate = 0.4
"""


def _running_tasks(cluster: SlurmCluster) -> list[str]:
    out = cluster.run("squeue", "-h", "-t", "RUNNING", "-o", "%i").stdout.split()
    return [j for j in out if "_" in j]


def test_a_grid_on_slurm_survives_a_cancelled_job(slurm_cluster: SlurmCluster, tmp_path):
    grid = tmp_path / "tiny.toml"
    grid.write_text(GRID)
    runs = tmp_path / "runs"
    env = {**slurm_cluster.env, "NLB_HEARTBEAT_S": "1", "NLB_GRACE_S": "4", "MPLBACKEND": "Agg",
           "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "runner.py", "grid", str(grid), "--launcher", "slurm", "--slurm-jobs", "3",
           "--slurm-partition", slurm_cluster.partition, "--slurm-time-min", "10", "--runs", str(runs),
           "--no-report", "--json", "--wandb", "disabled"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # cancel one array task once it is training a run (a checkpoint exists somewhere)
        deadline = time.monotonic() + 180
        cancelled = None
        while cancelled is None:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no array task started training"
            tasks = _running_tasks(slurm_cluster)
            if tasks and list(runs.glob("*/checkpoint.pt")):
                cancelled = tasks[0]
                slurm_cluster.scancel(cancelled)
            time.sleep(0.3)
        out, err = proc.communicate(timeout=420)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["failed"] == []
    assert slurm_cluster.job_states()[cancelled] == "CANCELLED"
    # every cell x seed exactly once: six run folders, each finished, no checkpoint left
    cfgs = expand(load_preset(str(grid)))
    store = Store(runs)
    finished = [r for r in store.run_ids() if store.is_finished(r)]
    assert len(cfgs) == 6 and len(finished) == 6 and len(store.run_ids()) == 6
    assert not list(runs.glob("*/checkpoint.pt"))
    # each run trained once: every epoch recorded exactly once (a resumed run continues its rows)
    for rid in finished:
        assert [int(r["epoch"]) for r in store.read_metrics(rid)] == list(range(1, 101))
    # the cancelled task was killed mid-run (submitit lets SIGTERM pass; slurmd kills after
    # KillWait), and another worker resumed that run from its checkpoint in a second process
    processes = {rid: read_json(store.run_dir(rid) / "meta.json")["processes"] for rid in finished}
    assert max(processes.values()) >= 2, processes
    # every cell has a complete trial in the study the jobs shared (a re-queued trial of the
    # cancelled task may complete too: it finds its run finished in the store and trains nothing)
    (name,) = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{runs / 'optuna.db'}")]
    study, defn = load_definition(name, f"sqlite:///{runs / 'optuna.db'}")
    complete = {t.params["cell"] for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE}
    assert complete == set(range(6))
    assert "submitted 3 Slurm workers" in err
