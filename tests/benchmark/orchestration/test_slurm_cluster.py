"""End-to-end checks of the throw-away Slurm cluster in slurm_cluster.py beside this file (skipped
without Slurm)."""
from __future__ import annotations

import os
import sys
import time

import pytest

from tests.benchmark.orchestration.slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401  (fixture)


def _wait_for_file(path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} missing after {timeout}s"
        time.sleep(0.2)


def test_sbatch_wrap_writes_file(slurm_cluster: SlurmCluster, tmp_path):
    out = tmp_path / "hi.txt"
    job = slurm_cluster.sbatch_wrap(f"echo hi > {out}")
    slurm_cluster.wait_gone(job, timeout=120)
    assert out.read_text() == "hi\n"
    assert slurm_cluster.job_states()[job] == "COMPLETED"


def test_array_job_writes_one_file_per_task(slurm_cluster: SlurmCluster, tmp_path):
    job = slurm_cluster.sbatch_wrap(f'echo "task $SLURM_ARRAY_TASK_ID" > {tmp_path}/task.$SLURM_ARRAY_TASK_ID',
                                    "--array=0-2")
    slurm_cluster.wait_empty(timeout=120)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["task.0", "task.1", "task.2"]
    for i in range(3):
        assert (tmp_path / f"task.{i}").read_text() == f"task {i}\n"
    states = slurm_cluster.job_states()
    assert [states[f"{job}_{i}"] for i in range(3)] == ["COMPLETED"] * 3


def test_scancel_removes_sleeping_job(slurm_cluster: SlurmCluster, tmp_path):
    started = tmp_path / "started"
    job = slurm_cluster.sbatch_wrap(f"touch {started}; sleep 600")
    _wait_for_file(started, timeout=120)
    assert job in slurm_cluster.squeue_ids()
    slurm_cluster.scancel(job)
    slurm_cluster.wait_gone(job, timeout=60)
    assert job not in slurm_cluster.squeue_ids()
    assert slurm_cluster.job_states()[job] == "CANCELLED"


# -- submitit ---------------------------------------------------------------------------------

def _add(a: int, b: int) -> dict:
    """Runs inside the Slurm job: report what the job saw."""
    return {"sum": a + b, "python": sys.executable, "job_id": os.environ.get("SLURM_JOB_ID"),
            "array_task": os.environ.get("SLURM_ARRAY_TASK_ID")}


def _square(x: int) -> int:
    return x * x


@pytest.fixture
def executor(slurm_cluster: SlurmCluster, tmp_path):
    submitit = pytest.importorskip("submitit")
    with slurm_cluster.activated():  # submitit runs sbatch/sacct/scancel with os.environ
        ex = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
        ex.update_parameters(slurm_partition=slurm_cluster.partition, timeout_min=5, cpus_per_task=1)
        yield ex


def test_submitit_function_result(executor, slurm_cluster: SlurmCluster):
    job = executor.submit(_add, 2, 3)
    result = job.result()
    assert result["sum"] == 5
    assert result["python"] == sys.executable  # submitit runs the job with the submitter's interpreter
    assert result["job_id"] == job.job_id
    assert job.get_info()["State"] == "COMPLETED"  # forced sacct call, answered by the shim


def test_submitit_job_array(executor, slurm_cluster: SlurmCluster):
    jobs = executor.map_array(_square, [0, 1, 2])
    assert [j.result() for j in jobs] == [0, 1, 4]
    assert all("_" in j.job_id for j in jobs)  # one Slurm array, one task per input


def test_submitit_cancel_is_seen(executor, slurm_cluster: SlurmCluster):
    job = executor.submit(time.sleep, 600)
    deadline = time.monotonic() + 120
    while job.job_id not in slurm_cluster.squeue_ids() or slurm_cluster.job_states().get(job.job_id) != "RUNNING":
        assert time.monotonic() < deadline, "submitit job never started"
        time.sleep(0.3)
    job.cancel()
    slurm_cluster.wait_gone(job.job_id, timeout=60)
    deadline = time.monotonic() + 30
    while not job.done(force_check=True):
        assert time.monotonic() < deadline, f"submitit still thinks the job runs: {job.state}"
        time.sleep(0.5)
    assert job.state.startswith("CANCELLED")
