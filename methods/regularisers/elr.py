"""ELR: early-learning regularisation towards a running average of the network's own predictions.

Method card
- Paper: Liu et al., "Early-Learning Regularization Prevents Memorization of Noisy Labels",
  NeurIPS 2020.
- Official code checked: shengliu66/ELR @ 934af53: ELR/model/loss.py:11-29 (targets t start at
  zeros; p = softmax clamped to [1e-4, 1 - 1e-4]; t[idx] <- beta t[idx] + (1 - beta) p / sum p
  with p detached, *then* the loss CE + lambda * mean log(1 - <t, p>) with p not detached);
  ELR/config_cifar10.json (beta 0.7, lambda 3; SGD 0.02, wd 1e-3, CosineAnnealingWarmRestarts
  T_0 10, eta_min 1e-3, 150 epochs, ResNet-34), config_cifar10_asym.json (beta 0.9, lambda 1,
  MultiStep [40, 80] x0.01, 120 epochs), config_cifar100.json (beta 0.9, lambda 7, MultiStep
  [80, 120] x0.01, 150 epochs).
- Defaults: beta 0.7, lambda 3 (CIFAR-10 symmetric); the presets set the others.
- Deviations: none. Targets are per training position, saved with the checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import RunContext, register_method
from methods.single import SingleNetwork
from methods.per_sample import PerSampleState
from methods.params import param


def elr_loss(logits: Tensor, y: Tensor, target: Tensor, beta: float, lam: float) -> tuple[Tensor, Tensor]:
    """(B, C) logits, (B,) labels, (B, C) targets of the batch -> (scalar loss, (B, C) new targets).

    The targets are updated first from the detached, clamped prediction; the regulariser then
    uses the new targets and the undetached prediction (official order).
    """
    p = F.softmax(logits.float(), dim=1).clamp(1e-4, 1.0 - 1e-4)
    pd = p.detach()
    new_t = beta * target + (1.0 - beta) * pd / pd.sum(dim=1, keepdim=True)
    reg = (1.0 - (new_t * p).sum(dim=1)).log().mean()
    return F.cross_entropy(logits.float(), y) + lam * reg, new_t


@dataclass
class ELRConfig:
    beta: float = param(0.7, ge=0.0, lt=1.0)
    """Momentum of the per-sample target average (official CIFAR-10 sym 0.7; asym / CIFAR-100 0.9)."""
    lam: float = param(3.0, ge=0.0)
    """lambda, the weight of the regulariser (official CIFAR-10 sym 3; asym 1; CIFAR-100 7)."""


@register_method("elr")
class ELR(SingleNetwork):
    Config = ELRConfig

    def setup(self, ctx: RunContext, cfg: ELRConfig) -> None:
        super().setup(ctx, cfg)
        self.state = PerSampleState(target=torch.zeros(ctx.num_train, ctx.num_classes, device=ctx.device))

    def batch_loss(self, logits: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        t = self.state["target"]
        loss, new_t = elr_loss(logits, y, t[idx], self.cfg.beta, self.cfg.lam)
        t[idx] = new_t
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "per_sample": self.state.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.state.load_state_dict(state["per_sample"])

    @classmethod
    def search_space(cls):
        return {"hp.beta": (0.5, 0.99), "hp.lam": (0.1, 10.0, "log")}
