"""Evaluation by the runner: predictions, test accuracy and memorisation on tested epochs, the
epoch selected by noisy validation (kept and tested exactly), and what the runner knows about
which training labels are right. Clean labels enter here and in diagnostics.py only, never a
method.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np
import torch

from benchmark.config import RunConfig
from benchmark.data import DatasetArrays
from benchmark.data.augment import Augmenter
from benchmark.training.diagnostics import memorisation, selection_quality

__all__ = ["predict", "predict_with", "Truth", "BestVal", "evaluate", "accuracy", "memo_indices",
           "test_indices", "probe_indices"]


@torch.no_grad()
def predict(method, x: torch.Tensor, normalise: Callable, batch: int) -> torch.Tensor:
    """(M, C, H, W) uint8 on device -> (M,) int64 predicted classes."""
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for s in range(0, x.shape[0], batch):
        out[s:s + batch] = method.predict_logits(normalise(x[s:s + batch])).argmax(1)
    return out


@torch.no_grad()
def predict_with(net: torch.nn.Module, x: torch.Tensor, normalise: Callable, batch: int) -> torch.Tensor:
    """Predictions of one network (eval mode, restored afterwards): (M,) int64."""
    was_training = net.training
    net.eval()
    out = torch.cat([net(normalise(x[s:s + batch])).argmax(1) for s in range(0, x.shape[0], batch)])
    net.train(was_training)
    return out


class Truth:
    """What the runner knows about which training labels are right (never shown to a method).

    With clean labels (every synthetic noise, CIFAR-N) that is all of them. With a dataset's
    human verification flags instead (``DatasetArrays.verified``: Food-101N, Clothing1M) it is
    the verified samples only: selection quality is computed on them, and memorisation on the
    samples verified wrong (their noisy fit; their true class is unknown). Without any verified
    sample (WebVision, Animal-10N) there are no selection, memorisation, correction or
    gradient-error figures: nothing to compare with.
    """

    def __init__(self, data: DatasetArrays, tr: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor,
                 memo_cap: int, seed: int):
        dev = noisy.device
        if data.verified is None:
            self.rows = None
            self.is_clean = noisy == clean
            self.memo_idx = memo_indices(noisy != clean, memo_cap, seed)
            self.known_truth = True
            return
        v = torch.as_tensor(np.asarray(data.verified)[tr.numpy()], device=dev)
        self.rows = torch.nonzero(v >= 0).squeeze(1)
        self.is_clean = v[self.rows] == 1
        self.memo_idx = memo_indices(v == 0, memo_cap, seed)
        self.known_truth = False

    def selection(self, selected: torch.Tensor | None, scores: torch.Tensor | None) -> dict[str, float]:
        if self.rows is None:
            return selection_quality(selected, scores, self.is_clean)
        if not len(self.rows):
            return {}
        out = selection_quality(None if selected is None else selected.to(self.rows.device)[self.rows],
                                None if scores is None else scores.to(self.rows.device)[self.rows],
                                self.is_clean)
        if selected is not None:  # the share kept of all the samples divided, not of the verified
            scored = (torch.ones_like(selected, dtype=torch.bool) if scores is None
                      else torch.isfinite(scores).to(selected.device))
            out["select/fraction"] = float(selected[scored].float().mean()) if scored.any() else math.nan
        return out


class BestVal:
    """The epoch of best noisy-validation accuracy (earliest on ties) and, when the test schedule
    did not test that epoch, a copy of the networks as they were then (tested at the end).

    predict_logits of every method depends only on the state of ``method.networks()`` (the
    method contract), so their state dicts are all that is kept.
    """

    def __init__(self, epoch: int = 0, val: float = -math.inf, nets: list | None = None):
        self.epoch, self.val, self.nets = epoch, val, nets

    @property
    def pending(self) -> bool:
        return self.nets is not None

    def offer(self, epoch: int, row: dict[str, float], method) -> None:
        val = row.get("val_noisy/acc", math.nan)
        if not math.isfinite(val) or val <= self.val:
            return
        self.epoch, self.val = epoch, val
        self.nets = None if "test/acc" in row else [
            {k: (v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v))
             for k, v in net.state_dict().items()} for net in method.networks()]

    def test(self, method, x, y, norm, batch) -> float:
        """Test accuracy of the kept networks (loaded into the method: call after training)."""
        for net, state in zip(method.networks(), self.nets, strict=True):
            net.load_state_dict(state)
        return accuracy(predict(method, x, norm, batch), y)

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "val": self.val,
                "nets": None if self.nets is None else [
                    {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in n.items()} for n in self.nets]}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "BestVal":
        if not state:
            return cls()
        return cls(int(state["epoch"]), float(state["val"]), state.get("nets"))


def evaluate(cfg: RunConfig, method, aug: Augmenter, x_test, y_test, x_train, noisy_train,
              clean_train, memo_idx, epoch: int, known_truth: bool = True) -> dict[str, float]:
    """The runner's evaluation on a tested epoch (test accuracy, memorisation; each network's test
    accuracy at the last epoch), in the caller's precision context. Clean labels enter here only,
    never the method."""
    out: dict[str, float] = {}
    norm, eb = aug.normalise, cfg.eval_batch_size
    out["test/acc"] = accuracy(predict(method, x_test, norm, eb), y_test)
    if len(memo_idx):
        pred = predict(method, x_train[memo_idx], norm, eb)
        memo = memorisation(pred, noisy_train[memo_idx], clean_train[memo_idx])
        if not known_truth:  # samples verified wrong, true class unknown: only the fit of the noise
            memo.pop("memo/true_fit")
        out.update(memo)
    nets = method.networks()
    if len(nets) > 1 and epoch == cfg.epochs:
        # two-network methods: each network's own test accuracy, at the last epoch only
        # (one more test pass per network and epoch would double evaluation time)
        for k, net in enumerate(nets, 1):
            out[f"test/acc_net{k}"] = accuracy(predict_with(net, x_test, norm, eb), y_test)
    return out


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of (M,) predictions equal to (M,) labels; NaN for an empty set."""
    return float((pred == y).float().mean()) if y.numel() else math.nan


def memo_indices(wrong: torch.Tensor, cap: int, seed: int) -> torch.Tensor:
    """Indices of up to ``cap`` of the training samples where ``wrong`` ((N,) bool: label known
    to be wrong) holds, a fixed seeded sample."""
    idx = torch.nonzero(wrong).squeeze(1).cpu().numpy()
    if cap and len(idx) > cap:
        idx = np.sort(np.random.default_rng(seed + 1).choice(idx, cap, replace=False))
    return torch.as_tensor(idx, dtype=torch.long, device=wrong.device)


def test_indices(n: int, subset: int) -> torch.Tensor:
    """All test indices, or a fixed subset (seed 0: the same for every run, so runs compare)."""
    if not subset or subset >= n:
        return torch.arange(n)
    return torch.as_tensor(np.sort(np.random.default_rng(0).choice(n, subset, replace=False)))


def probe_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """A fixed seeded sample of min(n, size) training indices (the same every epoch)."""
    rng = np.random.default_rng(seed + 2)
    return torch.as_tensor(np.sort(rng.choice(n, min(n, size), replace=False)), dtype=torch.long)
