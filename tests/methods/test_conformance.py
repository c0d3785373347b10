"""The contract every registered method must meet; a new method is tested by being registered."""
from __future__ import annotations

import dataclasses
import importlib
import json
import math

import numpy as np
import pytest

from benchmark.data import load_dataset
from benchmark.store import Store
from benchmark.training import run
from methods import RunContext, get_method, list_methods
from noise import NoiseSpec, build_artifact, save_artifact
from tests.conftest import tiny_config

# the module where prepare() looks up load_dataset and noise_for: patches go there (a patch on the
# package's face would leave prepare's own names in place); imported by name, because the package
# attribute benchmark.training.prepare is the function
prepare_mod = importlib.import_module("benchmark.training.prepare")

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


@pytest.mark.parametrize("method", METHODS)
class TestConformance:
    def test_one_epoch_gives_finite_metrics(self, method, tmp_path):
        res = run(tiny_config(method, epochs=1), tmp_path)
        assert res["finished"]
        row = _rows(tmp_path, res)[0]
        for k in ("train/loss", "test/acc", "val_noisy/acc", "memo/noisy_fit", "memo/true_fit"):
            assert math.isfinite(row[k]), k
        for k in ("test/acc_last", "test/acc_best", "test/acc_at_best_val"):
            assert 0.0 <= res[k] <= 1.0
        assert res["noise/actual_rate"] == pytest.approx(0.4, abs=0.1)

    def test_same_seed_same_metrics(self, method, tmp_path):
        a = run(tiny_config(method), tmp_path / "a")
        b = run(tiny_config(method), tmp_path / "b")
        _same(_rows(tmp_path / "a", a), _rows(tmp_path / "b", b))
        c = run(tiny_config(method, seed=1), tmp_path / "c")
        assert _rows(tmp_path / "c", c)[-1]["train/loss"] != _rows(tmp_path / "a", a)[-1]["train/loss"]

    def test_resume_matches_uninterrupted(self, method, tmp_path):
        full = run(tiny_config(method, epochs=3), tmp_path / "full")
        part = run(tiny_config(method, epochs=3), tmp_path / "part", stop_after=1)
        assert not part["finished"] and (tmp_path / "part" / part["run_id"] / "checkpoint.pt").is_file()
        resumed = run(tiny_config(method, epochs=3), tmp_path / "part")
        assert resumed["finished"] and resumed["run_id"] == full["run_id"]
        _same(_rows(tmp_path / "full", full), _rows(tmp_path / "part", resumed))
        assert resumed["test/acc_last"] == full["test/acc_last"]
        # it really resumed (a restart from scratch would give the same numbers too)
        meta = json.loads((tmp_path / "part" / resumed["run_id"] / "meta.json").read_text())
        assert meta["processes"] == 2
        assert not list((tmp_path / "part" / resumed["run_id"]).glob("*.bad"))

    def test_training_never_sees_clean_labels(self, method, tmp_path, monkeypatch):
        """Changing the clean labels (same noisy labels) must not change what the method does."""
        data = load_dataset("digits")
        art = build_artifact(NoiseSpec("sym", 0.4), data.train_y, dataset="digits",
                             num_classes=10, seed=3)
        f = tmp_path / "noise.npz"
        save_artifact(art, f)
        a = run(tiny_config(method, **{"noise.file": str(f)}), tmp_path / "a")
        fake = dataclasses.replace(data, train_y=np.asarray(art.noisy_labels).copy())
        monkeypatch.setattr(prepare_mod, "load_dataset", lambda *a, **k: fake)
        # the import check would (rightly) refuse a file whose clean labels are not the data's
        monkeypatch.setattr(prepare_mod, "noise_for", lambda *a, **k: art)
        b = run(tiny_config(method, **{"noise.file": str(f)}), tmp_path / "b")
        ra, rb = _rows(tmp_path / "a", a), _rows(tmp_path / "b", b)
        for x, y in zip(ra, rb):
            for k in x:
                if k.startswith(("train/", "test/acc", "val_noisy/")):
                    assert x[k] == y[k], k
        assert b["noise/actual_rate"] == 0.0 and a["noise/actual_rate"] > 0.3


def test_context_holds_no_clean_labels():
    names = {f.name for f in dataclasses.fields(RunContext)}
    assert not any("clean" in n or n in ("labels", "train_y", "targets") for n in names)


def test_every_method_has_a_method_card_and_documented_config():
    import ast
    import inspect
    import sys
    for name in METHODS:
        cls = get_method(name)
        assert "Method card" in (sys.modules[cls.__module__].__doc__ or ""), name
        # every Config field is followed by a docstring (a bare string expression)
        body = ast.parse(inspect.getsource(cls.Config)).body[0].body
        for i, node in enumerate(body):
            if isinstance(node, ast.AnnAssign):
                nxt = body[i + 1] if i + 1 < len(body) else None
                assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), \
                    f"{name}.Config.{node.target.id} needs a docstring"


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
