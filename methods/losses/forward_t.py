"""Forward correction (Forward-T): train through an estimated noise transition matrix.

Method card
- Paper: Patrini et al., "Making Deep Neural Networks Robust to Label Noise: a Loss Correction
  Approach", CVPR 2017.
- Official code checked: giorgiop/loss-correction @ 15a79de: loss.py:23-29 (forward loss
  -sum_k q_k log (p @ T)_k, p renormalised and clipped to [1e-7, 1 - 1e-7]); models.py:413-477
  (NoiseEstimator: for each class i the anchor is the training sample with the largest p(i|x),
  or with filter_outlier the largest value strictly below the column's 97th percentile
  (interpolation "higher"), whose values at or above it are zeroed in place; T[i, :] = p(. | anchor);
  rows normalised); experiment.py:58-62 (filter_outlier on except for CIFAR-100); models.py:250-253
  and 318-321 (the corrected network is built and trained afresh).
- Defaults: estimator anchor, filter_outliers true, warmup_frac 0.5 (two equal stages, as the
  noisypy reproduction: 120 CE epochs then 120 corrected ones), restart true.
- Stages: epochs 1..W train CE (W = round(warmup_frac * epochs)); then T is estimated on the
  training split from that network; with restart a new network (init stream key 1, the
  official "afresh") and optimiser train epochs W+1..E with the forward loss. Each stage runs the
  protocol's lr schedule over its own length (milestones count from the stage's start). T is
  estimated at the start of epoch W+1 (so resuming from epoch W's checkpoint gives the same T). With
  estimator oracle, T is the noise artifact's realised matrix (oracle knowledge, recorded as
  fwd/T_is_oracle = 1) and every epoch trains with the forward loss.
- Deviations:
  1. T is estimated on the training split only (the official code used all of X_train, its
     validation part included): methods never see the validation split. Can change T slightly.
  2. The run's selected epoch is chosen over both stages (the official code keeps the corrected
     network's best noisy validation loss). Can change the "selected" figure; "last" is unaffected.
  3. The official in-place zeroing of each column (which can lower later rows' entries) is kept,
     as the published numbers came from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import RunContext, register_method
from methods.single import SingleNetwork
from methods.batching import ordered
from methods.per_sample import ce_per_sample
from methods.params import param

ESTIMATORS = ("anchor", "oracle")
EPS = 1e-7


def forward_loss(logits: Tensor, y: Tensor, T: Tensor) -> Tensor:
    """(B, C) logits, (B,) noisy labels, (C, C) row-stochastic T -> (B,) -log (p @ T)_y."""
    p = F.softmax(logits.float(), dim=1).clamp(EPS, 1.0 - EPS)
    return -(p @ T).gather(1, y[:, None]).squeeze(1).log()


def anchor_transition(probs: Tensor, filter_outliers: bool = True) -> Tensor:
    """(N, C) predicted noisy-label probabilities -> (C, C) row-normalised estimate of T.

    Row i is the prediction at class i's anchor: the sample with the largest p(i|x), or with
    ``filter_outliers`` the largest value strictly below the column's 97th percentile (numpy's
    "higher" interpolation), values at or above it being zeroed in place first (official).
    """
    eta = probs.detach().double().clone()
    n, c = eta.shape
    T = torch.empty(c, c, dtype=torch.float64, device=eta.device)
    for i in range(c):
        col = eta[:, i]
        if filter_outliers:
            k = min(n - 1, math.ceil(0.97 * (n - 1)))  # numpy's percentile, interpolation "higher"
            thresh = torch.sort(col).values[k]
            col[col >= thresh] = 0.0  # in place, as the official numpy view
        T[i] = eta[int(torch.argmax(col))]
    return (T / T.sum(dim=1, keepdim=True)).float()


@dataclass
class ForwardTConfig:
    estimator: str = param("anchor", choices=ESTIMATORS)
    """anchor: estimate T from a CE warm-up stage (Patrini's estimator); oracle: the noise
    artifact's realised T (oracle knowledge, recorded)."""
    warmup_frac: float = param(0.5, gt=0.0, lt=1.0)
    """anchor: fraction of the run's epochs in the CE stage that estimates T (0.5: two equal
    stages); at least one epoch is left for each stage."""
    filter_outliers: bool = param(True)
    """anchor: skip the top 3% of each column (official on, except CIFAR-100)."""
    restart: bool = param(True)
    """anchor: train the corrected stage with a new network and optimiser (official); false
    continues the warm-up network."""


@register_method("forward_t")
class ForwardT(SingleNetwork):
    Config = ForwardTConfig

    def setup(self, ctx: RunContext, cfg: ForwardTConfig) -> None:
        super().setup(ctx, cfg)
        self.oracle = cfg.estimator == "oracle"
        if self.oracle:
            if ctx.noise_transition is None:
                raise ValueError("forward_t: estimator oracle needs the noise's realised T")
            self.T: Tensor | None = ctx.noise_transition.float().clone()
            self.warmup = 0
        else:
            self.T = None
            self.warmup = min(ctx.epochs - 1, max(1, round(cfg.warmup_frac * ctx.epochs)))
            if ctx.epochs < 2:
                self.warmup = ctx.epochs  # no room for a second stage: CE only, said in fwd/stage

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return ce_per_sample(logits, y) if self.T is None else forward_loss(logits, y, self.T)

    @torch.no_grad()
    def predict_noisy(self) -> Tensor:
        """(N, C) softmax of the current network over the training split (eval mode)."""
        self.net.eval()
        out = torch.empty(self.ctx.num_train, self.ctx.num_classes, device=self.ctx.device)
        for idx in ordered(self.ctx.num_train, self.ctx.eval_batch_size, self.ctx.device):
            out[idx] = F.softmax(self.net(self.ctx.normalise(self.ctx.train_x[idx])).float(), dim=1)
        return out

    def epoch_lr(self, epoch: int) -> float:
        ctx, W = self.ctx, self.warmup
        if self.oracle or not self.cfg.restart:
            return ctx.set_epoch_lr(self.opt, epoch)
        if self.T is not None:
            return ctx.set_epoch_lr(self.opt, epoch - W, ctx.epochs - W)
        return ctx.set_epoch_lr(self.opt, epoch, W)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        if self.T is None and epoch == self.warmup + 1:
            # stage 2 starts: T from the network trained through epoch W (done here, not at the
            # end of epoch W, so a run resumed from epoch W's checkpoint computes the same T)
            self.T = anchor_transition(self.predict_noisy(), self.cfg.filter_outliers)
            if self.cfg.restart:
                self.net = self.ctx.build_model(1)
                self.opt = self.ctx.make_optimizer(self.net.parameters(), weight_decay=self.weight_decay())
        out = super().train_epoch(epoch)
        out.update(self._figures(stage=2 if self.T is not None else 1))
        return out

    def _figures(self, stage: int) -> dict[str, float]:
        out = {"fwd/stage": float(stage), "fwd/T_is_oracle": 1.0 if self.oracle else 0.0}
        if self.T is not None:
            out["fwd/T_diag_mean"] = float(self.T.diagonal().mean())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "T": None if self.T is None else self.T.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.T = None if state["T"] is None else state["T"].to(self.ctx.device)

    @classmethod
    def search_space(cls):
        return {"hp.warmup_frac": (0.2, 0.8), "hp.filter_outliers": [True, False]}
