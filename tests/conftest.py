"""Fixtures shared by the whole suite: tiny run configs on scikit-learn's bundled digits."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import submitit  # noqa: F401  (see below)
import torch

from benchmark.training.conformance import tiny_config  # noqa: F401  (one definition: the checks' tiny run)

ROOT = Path(__file__).resolve().parents[1]
"""The repository's root (runner.py's folder), for tests that run the CLI or read its files."""

# submitit configures logging when it is first imported (logging.config.dictConfig), which closes
# every handler already installed; absl, imported with rliable by tests/reports, installs one on
# the stream pytest captures. Imported first, here, submitit closes nothing of pytest's.

# deterministic CPU kernels, and no W&B network traffic from any test
torch.use_deterministic_algorithms(True, warn_only=True)
# tests that exercise W&B ask for it explicitly; everything else stays off the W&B code path
os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture
def no_hang():
    """Fail (rather than hang) a test whose code under test would block or loop for ever (a merge
    reading a named pipe, a submission building 10^12 jobs): SIGALRM after 60 s."""
    def expired(*_):
        raise TimeoutError("the code under test did not end within 60 s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
