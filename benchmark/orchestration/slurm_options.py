"""How a grid's workers are submitted to Slurm: the --slurm-* options of ``runner.py grid``, each
with its valid values next to its docstring, checked before anything is written.

Every value here reaches sbatch: submitit writes each one into the job script as an ``#SBATCH``
line. A newline in a partition name would end that line and make the rest a shell command of
every job; NaN or infinite memory stops submitit with a traceback; 10^12 jobs would be built in
memory one by one. So numbers are checked for their type, finiteness and a range with a sensible
cap (the same ``param`` declarations as the run config's, methods/params.py), and names against
Slurm's own character set. :meth:`SlurmOptions.check` refuses a bad value with a UsageError
(exit code 2) naming the flag, before a noise artifact, a study or a job file is written.

This module imports no scheduler code (submitit, optuna), so the command line can take the
options' help from their docstrings without slowing ``runner.py --help``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from benchmark.errors import UsageError
from methods.params import field_check, param

__all__ = ["SLURM_NAME", "SLURM_NAMES", "SlurmOptions", "flag"]

SLURM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
"""A partition or account name: letters, digits and ``_ - .`` (Slurm's own names use no more; no
space, quote, ``;``, ``$`` or newline can reach a job script through one)."""

SLURM_NAMES = re.compile(r"[A-Za-z0-9_.-]{1,128}(?:,[A-Za-z0-9_.-]{1,128}){0,63}")
"""A list of partitions, comma-separated: sbatch runs the job on whichever can start it first."""

EXTRA_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
"""An sbatch long option name for ``extra`` (submitit writes ``#SBATCH --<key>=<value>``)."""


@dataclass
class SlurmOptions:
    """How the workers are submitted (the --slurm-* options of ``runner.py grid``)."""

    jobs: int = param(2, ge=1, le=10_000)
    """Workers (array tasks) to submit.

    More than 10,000 is no grid worker count (and clusters cap an array lower: MaxArraySize, 1,001
    by default); submitit builds every job in memory before sbatch answers."""
    partition: str = param("")
    """Partition ('' = the cluster's default): letters, digits and _ - . ; several partitions
    separated by commas."""
    account: str = param("")
    """Account to charge ('' = your default account): letters, digits and _ - . only."""
    gpus_per_job: int = param(0, ge=0, le=64)
    """GPUs per job (sbatch --gpus-per-node; 0 = none).

    At most 64, more than any node holds."""
    cpus_per_job: int = param(1, ge=1, le=1024)
    """CPUs per job (sbatch --cpus-per-task).

    At most 1024, more than any node holds."""
    array_parallelism: int = param(0, ge=0, le=10_000)
    """At most this many jobs of the array run at once (0: all of them)."""
    time_min: int = param(60, ge=1, le=43_200)
    """Time limit per job in minutes; a job that reaches it is requeued and resumes.

    At most 30 days: a longer limit gains nothing, since a requeued job resumes its run."""
    mem_gb: float = param(0.0, ge=0.01, le=16_384.0, also=(0.0,))
    """Memory per job in GB (0: the partition's default).

    At least 0.01 when given: submitit writes whole MB, and less would reach sbatch as --mem=0,
    which asks for all of a node's memory. At most 16 TiB, the largest nodes' memory."""
    folder: str = param("")
    """Where submitit keeps the jobs' pickles and logs (default: RUNS/slurm/%j); no control
    characters."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More sbatch options (submitit's slurm_additional_parameters): option name -> True, an
    integer or a string without control characters (an ``account`` here is checked as one)."""

    def check(self) -> None:
        """Check (and coerce: ``2.0`` jobs is 2) every option; UsageError naming the flag of the
        first bad one, with its valid values and the value given."""
        for f in fields(self):
            chk = field_check(f)
            if chk is None:
                continue
            try:
                setattr(self, f.name, chk.coerce(getattr(self, f.name)))
            except ValueError as e:
                raise UsageError(f"{flag(f.name)} {e}") from None
        if self.partition and not SLURM_NAMES.fullmatch(self.partition):
            raise UsageError(f"{flag('partition')} {self.partition!r:.80} is not a partition name: use "
                             f"letters, digits and _ - . (several partitions separated by commas)")
        if self.account and not SLURM_NAME.fullmatch(self.account):
            raise UsageError(f"{flag('account')} {self.account!r:.80} is not an account name: use "
                             f"letters, digits and _ - .")
        if not self.folder.isprintable():
            raise UsageError(f"the Slurm folder {self.folder!r:.80} holds control characters")
        self._check_extra()

    def _check_extra(self) -> None:
        if not isinstance(self.extra, dict):
            raise UsageError(f"extra sbatch options must be a mapping, got {self.extra!r:.80}")
        for key, value in self.extra.items():
            if not isinstance(key, str) or not EXTRA_KEY.fullmatch(key):
                raise UsageError(f"extra sbatch option {key!r:.80} is not an option name")
            if key == "account" and not (isinstance(value, str) and SLURM_NAME.fullmatch(value)):
                raise UsageError(f"extra sbatch option account {value!r:.80} is not an account name: "
                                 f"use letters, digits and _ - .")
            ok = (value is True or (isinstance(value, int) and not isinstance(value, bool))
                  or (isinstance(value, str) and value.isprintable()))
            if not ok:
                raise UsageError(f"extra sbatch option {key} = {value!r:.80}: use true, an integer or "
                                 f"a string without control characters")


def flag(name: str) -> str:
    """The command-line flag of option ``name``: jobs -> --slurm-jobs."""
    return "--slurm-" + name.replace("_", "-")
