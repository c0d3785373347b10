"""Confident Learning: folds, cleanlab's label issues as CleanLearning computes them, the
preparation epochs (cross-validation) checkpointed and resumed, and what the kept set holds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cleanlab.count import estimate_py_and_noise_matrices_from_probabilities
from cleanlab.filter import find_label_issues

from benchmark.store import Store
from benchmark.training import RunInterrupted, run
from methods.selection.confident_learning import CLConfig, ConfidentLearning, fold_of, label_issues
from tests.conftest import tiny_config


def test_folds_are_stratified_and_seeded():
    y = torch.arange(1000) % 7
    f = fold_of(y, 4, torch.Generator().manual_seed(3))
    for c in range(7):
        counts = torch.bincount(f[y == c], minlength=4)
        assert int(counts.max() - counts.min()) <= 1  # every fold holds its share of every class
    assert torch.equal(f, fold_of(y, 4, torch.Generator().manual_seed(3)))
    assert not torch.equal(f, fold_of(y, 4, torch.Generator().manual_seed(4)))


def _probs(n=600, c=4, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, c, n)
    noisy = np.where(rng.random(n) < 0.3, rng.integers(0, c, n), true)
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), true] += 2.5
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return noisy, p, true


@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "prune_by_class", "confident_learning"])
def test_label_issues_are_cleanlabs(filter_by):
    """The issues and weights CleanLearning derives from the same out-of-sample probabilities."""
    noisy, p, true = _probs()
    issues, weights = label_issues(noisy, p, CLConfig(filter_by=filter_by))
    _py, nm, _inv, joint = estimate_py_and_noise_matrices_from_probabilities(labels=noisy, pred_probs=p)
    kwargs = {"confident_joint": joint} if filter_by != "confident_learning" else {}
    expect = find_label_issues(labels=noisy, pred_probs=p, filter_by=filter_by, n_jobs=1, **kwargs)
    assert np.array_equal(issues, expect)
    assert np.allclose(weights, 1 / np.maximum(np.diag(nm), 1e-3))
    # the flagged samples are mostly the mislabelled ones
    wrong = noisy != true
    assert (issues & wrong).sum() / issues.sum() > 0.6 and (issues & wrong).sum() / wrong.sum() > 0.4


def test_preparation_is_k_networks_times_the_epochs_and_resumes_exactly(tmp_path, monkeypatch):
    """The cross-validation runs as preparation epochs (3 folds x 2 epochs here), checkpointed
    between them; a run interrupted in the middle of fold 2 resumes there and ends with the
    numbers of an uninterrupted run."""
    cfg = lambda: tiny_config("cl", epochs=2, **{"hp.folds": 3, "checkpoint_s": 0})  # noqa: E731
    full = run(cfg(), tmp_path / "full")
    calls = []
    real = ConfidentLearning.prepare_epoch

    def flaky(self, step):
        calls.append(step)
        if step == 4 and len(calls) == 4:  # fold 1's first epoch is done (steps 1-3), then Ctrl-C
            raise KeyboardInterrupt
        return real(self, step)

    monkeypatch.setattr(ConfidentLearning, "prepare_epoch", flaky)
    with pytest.raises(RunInterrupted):
        run(cfg(), tmp_path / "part")
    resumed = run(cfg(), tmp_path / "part")
    assert calls == [1, 2, 3, 4, 4, 5, 6]  # resumed at step 4, not from the start
    assert resumed["run_id"] == full["run_id"]
    for k in ("test/acc_last", "test/acc_at_best_val", "select/precision"):
        assert resumed[k] == full[k], k
    rows = Store(tmp_path / "full").read_metrics(full["run_id"])
    assert len(rows) == 2 and rows[0]["cl/kept_fraction"] < 1.0
    meta = json.loads((tmp_path / "part" / resumed["run_id"] / "meta.json").read_text())
    assert meta["processes"] == 2
    assert full["time/prepare_s"] > 0


def test_the_kept_set_is_cleaner_than_the_noisy_labels(tmp_path):
    res = run(tiny_config("cl", epochs=4, subset=600, **{"hp.folds": 3}), tmp_path)
    # 40% symmetric noise: 60% of the labels are right; the kept set is clearly cleaner
    assert res["select/precision"] > 0.75
    assert 0.0 < res["select/recall"] <= 1.0
