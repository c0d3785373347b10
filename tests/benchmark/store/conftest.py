"""Fixtures of the merge tests (test_merge.py, test_merge_received.py): real runs of the suite
(digits, 2 epochs), trained once per session and copied by every test that changes them."""
from __future__ import annotations

import shutil

import pytest

from benchmark.training import run
from tests.conftest import tiny_config


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    """Three stores, as three machines would leave them (never modified: tests copy them).

    a: ce seed 0 (finished) and gce seed 0 stopped after epoch 1 (unfinished);
    b: ce seed 1 (another run, another noise artifact);
    c: ce seed 0 computed again (the same run as in a, its own timings).
    """
    root = tmp_path_factory.mktemp("made")
    ids = {"a": run(tiny_config("ce"), root / "a", wandb="disabled")["run_id"],
           "u": run(tiny_config("gce"), root / "a", stop_after=1, wandb="disabled")["run_id"],
           "b": run(tiny_config("ce", seed=1), root / "b", wandb="disabled")["run_id"],
           "c": run(tiny_config("ce"), root / "c", wandb="disabled")["run_id"]}
    assert ids["c"] == ids["a"] and len({ids["a"], ids["b"], ids["u"]}) == 3
    return root, ids


@pytest.fixture
def stores(made, tmp_path):
    """A fresh copy of each store in this test's folder, and the run ids."""
    root, ids = made
    for name in ("a", "b", "c"):
        shutil.copytree(root / name, tmp_path / name)
    return tmp_path, ids
