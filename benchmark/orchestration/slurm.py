"""Grid workers as a Slurm job array, submitted with submitit.

``runner.py grid PRESET --launcher slurm`` creates the grid's study on a storage every node can
reach (the store's SQLite file on a shared file system, or PostgreSQL with ``--storage``), then
submits ``--slurm-jobs`` workers as one job array. Each job runs the same worker loop as a local
worker (:func:`benchmark.studies.work`): it takes cells that have no complete trial, trains them
into the store and stops when the grid is done. Nothing is assigned to a job in advance, so a job
that is cancelled, preempted or times out costs only its unfinished run: its trial's heartbeat
goes stale and another worker re-queues it, and the run resumes from its last checkpoint. A
preempted or timed-out job is also requeued by submitit (``SlurmWorker.checkpoint``) and simply
joins the study again.

The storage URL given to a job never carries a password: it travels as PGPASSWORD in the
environment Slurm copies from the submitting process (``--export=ALL``), not in the job's pickled
arguments or its command line.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import submitit

from benchmark.errors import SlurmError, UsageError
from benchmark.orchestration.slurm_options import SlurmOptions
from benchmark.orchestration.studies import storage_for_children, work

# SlurmOptions lives apart (slurm_options.py, no submitit import) so --help stays fast; re-exported
__all__ = ["SlurmOptions", "SlurmWorker", "executor_for", "submit_workers", "wait"]


class SlurmWorker(submitit.helpers.Checkpointable):
    """One grid worker in a Slurm job. submitit calls ``checkpoint`` on preemption or timeout;
    the inherited one resubmits the same call, which rejoins the study (the store and the trials'
    heartbeats, not this object, hold the progress)."""

    def __call__(self, study: str, storage: str, runs: str, wandb: str | None) -> int:
        return work(study, storage, runs, wandb, log=lambda m: print(m, flush=True))


def executor_for(opts: SlurmOptions, runs: str) -> submitit.AutoExecutor:
    """A submitit executor for the workers (cluster 'slurm': fails clearly without sbatch).
    ``opts`` must have passed ``opts.check()``: every value goes into the job script."""
    folder = opts.folder or str(Path(runs) / "slurm" / "%j")
    try:
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    except Exception as e:  # noqa: BLE001 - submitit says why Slurm is unusable
        raise UsageError(f"--launcher slurm: Slurm is not usable from here ({e})") from None
    params: dict[str, Any] = {"timeout_min": opts.time_min, "cpus_per_task": opts.cpus_per_job,
                              "name": "nlb-worker", "slurm_additional_parameters": dict(opts.extra)}
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.account:
        params["slurm_account"] = opts.account
    if opts.gpus_per_job:
        params["gpus_per_node"] = opts.gpus_per_job
    if opts.array_parallelism:
        params["slurm_array_parallelism"] = opts.array_parallelism
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    ex.update_parameters(**params)
    return ex


def submit_workers(study: str, storage: str, runs: str, opts: SlurmOptions,
                   wandb: str | None = None) -> list[submitit.Job]:
    """Submit ``opts.jobs`` workers of ``study`` as one job array; returns the jobs."""
    opts.check()
    url, secret = storage_for_children(storage)
    os.environ.update(secret)  # sbatch copies the environment into the jobs (--export=ALL)
    ex = executor_for(opts, runs)
    try:
        with ex.batch():  # one sbatch call: a job array
            jobs = [ex.submit(SlurmWorker(), study, url, str(Path(runs).resolve()), wandb)
                    for _ in range(opts.jobs)]
    except submitit.core.utils.FailedJobError as e:
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        raise SlurmError("sbatch refused the workers: " + (lines[-1] if lines else str(e))) from None
    return jobs


def wait(jobs: list[submitit.Job], done: Callable[[], bool], *, poll_s: float = 5.0,
         log: Callable[[str], None] = print) -> dict[str, int]:
    """Wait until the grid is done (``done()``) or no job is left alive; returns job states.

    A job that ends early (cancelled, failed) is not an error as long as the others finish the
    grid; if every job has ended and the grid is not done, the caller reports what is missing."""
    last = ""
    while True:
        states = [j.state for j in jobs]
        alive = [s for s in states if s in ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING",
                                            "SUSPENDED", "UNKNOWN")]
        counts: dict[str, int] = {}
        for s in states:
            counts[s] = counts.get(s, 0) + 1
        line = ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()))
        if line != last:
            log(f"slurm jobs: {line}")
            last = line
        if done() and not alive:
            return counts
        if not alive:
            return counts
        time.sleep(poll_s)
