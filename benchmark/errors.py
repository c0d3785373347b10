"""The suite's exceptions: two kinds of fault, and every exception the harness raises.

Every exception defined in benchmark/ derives from one of two bases, which decide the exit code
of ``runner.py`` (benchmark.cli.main catches the two bases, nothing else of ours):

- :class:`UsageFault`: the request cannot be carried out as given (a bad name, a value out of its
  range, a dataset that is not where it was said to be). Exit code 2; fixing the command fixes it.
- :class:`RunFault`: the request was valid, and carrying it out failed (corrupt or missing data
  files, a diverged run, a store or a study storage that contradicts or refuses the request).
  Exit code 1. :class:`RunInterrupted` (Ctrl-C) is the one run fault with its own code, 130.

Each concrete class also keeps the built-in base it had before the two bases existed
(``ValueError``, ``RuntimeError``), so code that catches those is unaffected.
"""
from __future__ import annotations

__all__ = ["UsageFault", "RunFault", "UsageError", "DataError", "DatasetNotFound", "StoreError",
           "StorageError", "SlurmError", "TrainingDiverged", "RunInterrupted", "Refused",
           "USAGE_EXIT", "RUN_EXIT", "INTERRUPT_EXIT"]

USAGE_EXIT, RUN_EXIT, INTERRUPT_EXIT = 2, 1, 130
"""Exit codes of a usage fault, a run fault and an interrupted run."""


class UsageFault(Exception):
    """Base of every fault in the request itself (exit code 2)."""


class RunFault(Exception):
    """Base of every fault met while carrying out a valid request (exit code 1)."""


class UsageError(UsageFault, ValueError):
    """Bad user input (unknown name, malformed value). The CLI exits with code 2."""


class DataError(RunFault):
    """Data that is missing, corrupt or inconsistent. The message says what was expected where
    and how to get it."""


class DatasetNotFound(UsageFault, DataError):
    """The dataset is not where it was looked for: a usage error (exit code 2), although it is
    also a DataError for code that handles data problems alike. The message names the layout
    expected, what is missing and where to obtain the data."""


class StoreError(RunFault, RuntimeError):
    """The store holds something that contradicts the request (exit code 1, with the reason)."""


class StorageError(RunFault, RuntimeError):
    """The study storage cannot be reached or read (exit code 1); the message has no password."""


class SlurmError(RunFault, RuntimeError):
    """Slurm refused the submission (exit code 1, with sbatch's own message)."""


class TrainingDiverged(RunFault, RuntimeError):
    """The loss became NaN or infinite; the run is recorded as failed, never as finished."""


class RunInterrupted(RunFault, RuntimeError):
    """Ctrl-C (or SIGTERM) during a run: its last checkpoint is kept, the same command resumes it
    (exit code 130)."""

    def __init__(self, run_id: str, run_dir: str, epoch: int):
        super().__init__(f"interrupted: run {run_id} stopped after epoch {epoch}; run the same "
                         f"command again to resume it from its last checkpoint ({run_dir})")
        self.run_id, self.run_dir, self.epoch = run_id, run_dir, epoch


class Refused(RunFault, ValueError):
    """A run folder that fails verification (runner.py merge); the message says which check and
    why."""
