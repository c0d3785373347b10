"""The contract every registered method must meet; a new method is tested by being registered.

The checks themselves are benchmark/training/conformance.py, the ones ``runner.py check`` runs on
a plugin's method: one implementation, so a built-in and a plugin meet the same contract.
"""
from __future__ import annotations

import dataclasses
import math

import pytest

from benchmark.store import Store
from benchmark.training import conformance, run
from methods import RunContext, get_method, list_methods
from tests.conftest import tiny_config

METHODS = list_methods()


def _rows(runs_dir, res):
    rows = Store(runs_dir).read_metrics(res["run_id"])
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def _same(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert (math.isnan(ra[k]) and math.isnan(rb[k])) or ra[k] == rb[k], k


@pytest.mark.parametrize("check", list(conformance.CHECKS))
@pytest.mark.parametrize("method", METHODS)
def test_conformance(method, check, tmp_path):
    outcome = conformance.check(check, method, tmp_path)
    assert outcome.ok, f"{method} fails {check}: {outcome.detail}"


def test_context_holds_no_clean_labels():
    names = {f.name for f in dataclasses.fields(RunContext)}
    assert not any("clean" in n or n in ("labels", "train_y", "targets") for n in names)


@pytest.mark.parametrize("method", METHODS)
def test_kan_head_trains_resumes_and_is_masked(method, tmp_path):
    """Every method with the KAN classifier head (``classifier = kan``): finite metrics, the same
    numbers when stopped after an epoch and resumed, and X+obd masks the KAN's edges."""
    cfg = lambda: tiny_config(method, epochs=3, classifier="kan")  # noqa: E731
    full = run(cfg(), tmp_path / "full")
    part = run(cfg(), tmp_path / "part", stop_after=1)
    assert not part["finished"]
    resumed = run(cfg(), tmp_path / "part")
    assert resumed["run_id"] == full["run_id"] != run(tiny_config(method, epochs=3), tmp_path / "lin")["run_id"]
    rows = _rows(tmp_path / "full", full)
    _same(rows, _rows(tmp_path / "part", resumed))
    for k in ("train/loss", "test/acc", "val_noisy/acc"):
        assert all(math.isfinite(r[k]) for r in rows), k
    if getattr(get_method(method), "masked", False):
        # the default sparsity 0.5 of the cnn's 128 x 10 edges, per row: 64 of 128 masked
        assert rows[-1]["mask/sparsity"] == pytest.approx(0.5)
        assert rows[-1]["mask/refreshes"] > 0
