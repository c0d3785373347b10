"""Generalised cross-entropy (GCE).

Method card
- Paper: Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks with
  Noisy Labels", NeurIPS 2018.
- Official code checked: the paper's equations (no official repository was released by the authors;
  the loss is L_q = (1 - p_y^q) / q, q -> 0 gives CE, q = 1 gives MAE).
- Defaults: q = 0.7 (the paper's value for all its experiments).
- Deviations:
  1. The truncated variant L_trunc (threshold k, pruning every 10 epochs) is not implemented: the
     suite reports plain L_q, the form most follow-up work compares against.
  2. p_y is clamped at 1e-12 before the power, so the gradient stays finite at p_y = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from methods.base import register_method
from methods.single import SingleNetwork
from methods.per_sample import gce_per_sample
from methods.params import param


@dataclass
class GCEConfig:
    q: float = param(0.7, gt=0.0, le=1.0)
    """Exponent of L_q in (0, 1]: towards 0 behaves like CE, 1 is MAE. Paper default 0.7."""


@register_method("gce")
class GCE(SingleNetwork):
    Config = GCEConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return gce_per_sample(logits, y, self.cfg.q)

    @classmethod
    def search_space(cls):
        return {"hp.q": (0.1, 1.0)}
