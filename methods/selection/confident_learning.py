"""Confident Learning (CL): find the label issues from out-of-sample probabilities, train on the rest.

Method card
- Paper: Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
  Labels", JAIR 70, 2021 (arXiv 1911.00068).
- Code used and checked: cleanlab 2.9.0 (Apache-2.0, pinned in requirements.txt), the library
  the authors maintain: ``cleanlab.count.estimate_py_and_noise_matrices_from_probabilities``
  (the calibrated confident joint and the noise matrix, count.py) and
  ``cleanlab.filter.find_label_issues`` (filter.py:57-71), called as ``CleanLearning.fit`` calls
  them when given out-of-sample probabilities (classification.py:675-900, 500-580);
  cgnorthcutt/confidentlearning-reproduce @ 2f31556 for the paper's CIFAR-10 pipeline.
- Algorithm, three stages, each network trained by the suite's own loop and the run's protocol:
  1. K-fold cross-validation on the noisy training split (folds stratified by noisy label, drawn
     from the run's order stream, as CleanLearning's StratifiedKFold(shuffle=True)): network k
     (init key k) trains the run's epochs on the other K - 1 folds with CE; its softmax on fold k
     (eval mode, no augmentation) gives those samples' out-of-sample probabilities. These are the
     method's preparation epochs (K x epochs, checkpointed like epochs, nothing evaluated).
  2. cleanlab estimates the confident joint and the noise matrix from them, and
     find_label_issues flags the label issues (default filter ``prune_by_noise_rate``: for each
     off-diagonal cell of the calibrated joint, that many samples with the largest margin;
     estimated, never the true noise rate); n_jobs = 1 (deterministic, no forked processes).
  3. A fresh network (init key K) trains the run's epochs on the kept samples with CE, each
     sample weighted by 1 / max(noise_matrix[y, y], 1e-3) of its class (CleanLearning.fit's
     sample weights, which keep each class's apparent size; ``reweight``).
  The runner's epochs are stage 3's; its test curve, selection and last epoch are the final
  network's. Cost: about K + 1 CE runs (docs/BENCHMARKS.md).
- Defaults and their source: folds 5 (CleanLearning cv_n_folds=5; the paper's CIFAR-10 runs used
  4, repro cifar10_train_crossval.py --cvn 4); filter_by prune_by_noise_rate, frac_noise 1.0,
  min_examples_per_class 1 (find_label_issues defaults); reweight on (CleanLearning.fit).
- Diagnostics: select/* from the kept set against the clean labels (the runner's), clean_scores =
  the out-of-sample probability of the given label (self-confidence).
- Deviations (numbered):
  1. The paper's CIFAR-10 Table 2 trains Co-teaching on the kept samples (two 9-layer CNNs, Adam,
     forget rate from the true noise level) and reports the best test epoch; CleanLearning, and
     this method, train one network with CE on them. The published CL numbers are therefore not
     this method's protocol (and the paper's noise, matrices of a given trace and sparsity, is not
     a noise kind of the suite): no published column is attached.
  2. Every network trains the run's protocol (augmentation included); cleanlab's example wraps
     any scikit-learn-style classifier. Out-of-sample probabilities are the softmax of the fold
     network at its last epoch (no selection on a validation split inside the fold).
  3. Folds are dealt per class from one seeded permutation (round robin), not by scikit-learn's
     StratifiedKFold; the same stratification, another random split.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Method, RunContext, register_method
from methods.batching import ordered
from methods.params import param
from methods.per_sample import ce_per_sample
from methods.single import supervised_epoch

FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_normalized_margin", "low_self_confidence")
FOLD_STREAM = 7000
"""ctx.generator(0, FOLD_STREAM) deals the folds; fold k's epoch e draws from ctx.generator(e, 100 + k)."""


@dataclass
class CLConfig:
    folds: int = param(5, ge=2, le=20)
    """K, cross-validation folds for the out-of-sample probabilities (CleanLearning cv_n_folds 5;
    the paper's CIFAR-10 runs 4). Cost: K + 1 trainings of the protocol."""
    filter_by: str = param("prune_by_noise_rate", choices=FILTERS)
    """cleanlab.filter.find_label_issues filter_by (its default prune_by_noise_rate)."""
    frac_noise: float = param(1.0, gt=0.0, le=1.0)
    """find_label_issues frac_noise: the fraction of the estimated issues to flag (PBNR, PBC, both)."""
    min_examples_per_class: int = param(1, ge=0)
    """find_label_issues min_examples_per_class: never flag a class below this many kept samples."""
    reweight: bool = param(True)
    """Weight each kept sample's loss by 1 / max(noise_matrix[y, y], 1e-3) (CleanLearning.fit)."""


def fold_of(labels: Tensor, folds: int, gen: torch.Generator) -> Tensor:
    """(N,) int64 noisy labels -> (N,) fold index in [0, folds): each class's samples, in one seeded
    random order, dealt round robin, so every fold holds about 1/K of every class."""
    n = labels.shape[0]
    order = torch.randperm(n, generator=gen, device=gen.device).to(labels.device)
    y = labels[order]
    # rank of each sample within its class, in the random order (a stable sort keeps that order)
    by_class = torch.sort(y, stable=True).indices
    sorted_y = y[by_class]
    starts = torch.searchsorted(sorted_y, sorted_y, right=False)
    rank = torch.arange(n, device=labels.device) - starts
    out = torch.empty(n, dtype=torch.long, device=labels.device)
    out[order[by_class]] = rank % folds
    return out


def label_issues(noisy: np.ndarray, pred_probs: np.ndarray, cfg: CLConfig) -> tuple[np.ndarray, np.ndarray]:
    """(N,) noisy labels, (N, C) out-of-sample probabilities -> (N,) bool label issues and (C,)
    class weights 1 / max(noise_matrix[k, k], 1e-3), as CleanLearning computes them."""
    from cleanlab.count import estimate_py_and_noise_matrices_from_probabilities
    from cleanlab.filter import find_label_issues
    _py, noise_matrix, _inv, joint = estimate_py_and_noise_matrices_from_probabilities(
        labels=noisy, pred_probs=pred_probs)
    kwargs: dict[str, Any] = {}
    if cfg.filter_by in ("prune_by_noise_rate", "prune_by_class", "both"):
        # the joint CleanLearning computed; the count-based filters read their counts from it
        kwargs = {"confident_joint": joint, "frac_noise": cfg.frac_noise}
    issues = find_label_issues(labels=noisy, pred_probs=pred_probs, filter_by=cfg.filter_by,
                               min_examples_per_class=cfg.min_examples_per_class, n_jobs=1, **kwargs)
    weights = 1.0 / np.maximum(np.diag(noise_matrix), 1e-3)
    return np.asarray(issues, dtype=bool), weights.astype(np.float32)


@register_method("cl")
class ConfidentLearning(Method):
    Config = CLConfig

    def setup(self, ctx: RunContext, cfg: CLConfig) -> None:
        self.ctx, self.cfg = ctx, cfg
        n, c = ctx.num_train, ctx.num_classes
        self.fold = fold_of(ctx.noisy_labels, cfg.folds, ctx.generator(0, FOLD_STREAM))
        self.oos = torch.zeros(n, c, device=ctx.device)
        """(N, C) out-of-sample softmax, filled fold by fold."""
        self.net: torch.nn.Module | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.kept: Tensor | None = None
        self.weights: Tensor | None = None
        self.prepared = 0
        """Preparation epochs done (which fold network is in training after a resume)."""

    # ----- stage 1: cross-validation (the preparation epochs) ------------------------------------
    def preparation_epochs(self) -> int:
        return self.cfg.folds * self.ctx.epochs

    def prepare_epoch(self, step: int) -> dict[str, float]:
        ctx = self.ctx
        k, e = divmod(step - 1, ctx.epochs)
        e += 1
        if e == 1:
            self.net = ctx.build_model(k)
            self.opt = ctx.make_optimizer(self.net.parameters())
        lr = ctx.set_epoch_lr(self.opt, e)
        train_pos = torch.nonzero(self.fold != k).squeeze(1)
        out = supervised_epoch(self.net, self.opt, ctx, e, lambda z, y, idx: ce_per_sample(z, y).mean(),
                               stream=100 + k, positions=train_pos)
        if e == ctx.epochs:  # fold k trained: its held-out probabilities, then it is dropped
            held = torch.nonzero(self.fold == k).squeeze(1)
            self.oos[held] = self._softmax(self.net, held)
            self.net = self.opt = None
        self.prepared = step
        return {"cl/fold": float(k), "cl/fold_epoch": float(e), "train/lr": lr, **out}

    @torch.no_grad()
    def _softmax(self, net: torch.nn.Module, positions: Tensor) -> Tensor:
        """(M,) training positions -> (M, C) softmax of ``net`` on them (eval mode, no augmentation)."""
        net.eval()
        ctx = self.ctx
        out = torch.empty(len(positions), ctx.num_classes, device=ctx.device)
        for rows in ordered(len(positions), ctx.eval_batch_size, ctx.device):
            idx = positions[rows]
            out[rows] = F.softmax(net(ctx.normalise(ctx.train_x[idx])).float(), 1)
        return out

    # ----- stages 2 and 3 ---------------------------------------------------------------------------
    def _divide(self) -> None:
        ctx, cfg = self.ctx, self.cfg
        noisy = ctx.noisy_labels.cpu().numpy()
        issues, weights = label_issues(noisy, self.oos.double().cpu().numpy(), cfg)
        self.kept = torch.as_tensor(~issues, device=ctx.device)
        self.weights = torch.as_tensor(weights if cfg.reweight else np.ones_like(weights), device=ctx.device)
        self.net = ctx.build_model(cfg.folds)
        self.opt = ctx.make_optimizer(self.net.parameters())

    def train_epoch(self, epoch: int) -> dict[str, float]:
        if self.kept is None:  # the first training epoch (or a resume before it): divide once
            self._divide()
        ctx = self.ctx
        lr = ctx.set_epoch_lr(self.opt, epoch)
        w = self.weights

        def weighted_ce(z: Tensor, y: Tensor, idx: Tensor) -> Tensor:
            return (w[y] * ce_per_sample(z, y)).mean()

        out = supervised_epoch(self.net, self.opt, ctx, epoch, weighted_ce,
                               positions=torch.nonzero(self.kept).squeeze(1))
        oos_acc = (self.oos.argmax(1) == ctx.noisy_labels).float().mean()
        out.update({"train/lr": lr, "cl/kept_fraction": float(self.kept.float().mean()),
                    "cl/oos_noisy_acc": float(oos_acc), "cl/weight_mean": float(w.mean())})
        return out

    @torch.no_grad()
    def predict_logits(self, x: Tensor) -> Tensor:
        self.net.eval()
        return self.net(x)

    def selected(self) -> Tensor | None:
        return self.kept

    def clean_scores(self) -> Tensor | None:
        """(N,) the out-of-sample probability of the given label (cleanlab's self-confidence)."""
        return None if self.kept is None else self.oos.gather(1, self.ctx.noisy_labels[:, None]).squeeze(1)

    def networks(self):
        return [self.net] if self.net is not None else []

    def state_dict(self) -> dict[str, Any]:
        return {"oos": self.oos.cpu(), "fold": self.fold.cpu(), "prepared": self.prepared,
                "net": None if self.net is None else self.net.state_dict(),
                "opt": None if self.opt is None else self.opt.state_dict(),
                "kept": None if self.kept is None else self.kept.cpu(),
                "weights": None if self.weights is None else self.weights.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores whichever stage the checkpoint was taken in: a fold network mid-training
        (rebuilt with the fold's init key), or the final network after the division."""
        ctx = self.ctx
        if tuple(state["oos"].shape) != tuple(self.oos.shape) or not torch.equal(state["fold"], self.fold.cpu()):
            raise ValueError("Confident Learning state of another training split")
        self.oos = state["oos"].to(ctx.device)
        self.prepared = int(state["prepared"])
        if state["kept"] is not None:
            self.kept = state["kept"].to(ctx.device)
            self.weights = state["weights"].to(ctx.device)
            self.net = ctx.build_model(self.cfg.folds)
            self.opt = ctx.make_optimizer(self.net.parameters())
        elif state["net"] is not None:  # a fold network mid-training: fold (prepared - 1) // epochs
            self.net = ctx.build_model((self.prepared - 1) // ctx.epochs)
            self.opt = ctx.make_optimizer(self.net.parameters())
        if state["net"] is not None:
            self.net.load_state_dict(state["net"])
            self.opt.load_state_dict(state["opt"])

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {"hp.filter_by": ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning"],
                "hp.frac_noise": (0.5, 1.0)}
