"""Bootstrapping: CE against a convex mix of the noisy label and the network's own prediction.

Method card
- Paper: Reed et al., "Training Deep Neural Networks on Noisy Labels with Bootstrapping",
  ICLR 2015 workshop.
- Official code checked: the implementation the field compares against, YisenWang/
  symmetric_cross_entropy_for_noisy_labels @ ec778df loss.py:51-73 (boot_soft beta 0.95,
  boot_hard beta 0.8; p renormalised and clipped to [1e-7, 1 - 1e-7]; no stop-gradient on the
  prediction inside the target, so the soft target's p also receives gradient).
- Defaults: mode soft, beta 0.95 for soft and 0.8 for hard (beta -1 picks the mode's value).
- Deviations: none.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from methods.base import register_method
from methods.single import SingleNetwork
from methods.per_sample import one_hot
from methods.params import param

MODES = ("soft", "hard")
OFFICIAL_BETA = {"soft": 0.95, "hard": 0.8}
EPS = 1e-7  # Keras' K.epsilon(), the clip of the official code


def bootstrap_loss(logits: Tensor, y: Tensor, beta: float, mode: str) -> Tensor:
    """(B, C), (B,) -> (B,) -sum_k (beta q_k + (1 - beta) z_k) log p_k, with q the one-hot noisy
    label and z = p (soft, gradient kept, as official) or onehot(argmax p) (hard)."""
    p = F.softmax(logits.float(), dim=1).clamp(EPS, 1.0 - EPS)
    q = one_hot(y, logits.shape[1])
    z = p if mode == "soft" else one_hot(p.argmax(dim=1), logits.shape[1])
    return -((beta * q + (1.0 - beta) * z) * p.log()).sum(dim=1)


@dataclass
class BootstrapConfig:
    mode: str = param("soft", choices=MODES)
    """soft: the target mixes in the prediction p; hard: onehot(argmax p)."""
    beta: float = param(-1.0, gt=0.0, le=1.0, also=(-1.0,))
    """Weight of the noisy label in the target, in (0, 1]; -1: the official value of the mode
    (soft 0.95, hard 0.8)."""


@register_method("bootstrap")
class Bootstrap(SingleNetwork):
    Config = BootstrapConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        beta = OFFICIAL_BETA[self.cfg.mode] if self.cfg.beta < 0 else self.cfg.beta
        return bootstrap_loss(logits, y, beta, self.cfg.mode)

    @classmethod
    def search_space(cls):
        return {"hp.mode": list(MODES), "hp.beta": (0.5, 1.0)}
