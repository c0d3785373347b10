"""Local worker processes of a study: ``runner.py worker`` started N times on this machine.

A worker executes trials of a study until it is done (studies.work). One worker runs in this
process; several are child processes, each a ``runner.py worker`` command. A child's command line
carries the storage URL without its password (``ps`` shows command lines to every user of the
machine); the password travels in the child's environment as PGPASSWORD.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from benchmark import settings
from benchmark.orchestration.studies import storage_for_children, work
from benchmark.store import scrub

__all__ = ["run_workers", "shown_storage", "RUNNER"]

RUNNER = Path(__file__).resolve().parents[2] / "runner.py"
"""The command every child runs (``runner.py worker ...``)."""


def shown_storage(url: str) -> str:
    """A storage URL as messages may show it: without its password, as the children get it."""
    return scrub(storage_for_children(url)[0])


def run_workers(name: str, storage: str, runs: str, n: int, wandb: str | None,
                log: Callable[[str], None]) -> int:
    """Run n workers of study ``name``: in this process for n <= 1, else as n child processes.
    Returns 0 when every worker ended well, else 1."""
    if n <= 1:
        work(name, storage, runs, wandb, log=log)
        return 0
    url, secret = storage_for_children(storage)
    cmd = [sys.executable, str(RUNNER), "worker", "--study", name, "--storage", url, "--runs", runs] + (
        ["--wandb", wandb] if wandb else [])
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
