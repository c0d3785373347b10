"""ANL-CE: active negative loss, alpha * NCE + beta * NNCE + delta * L1 of all parameters.

Method card
- Paper: Ye et al., "Active Negative Loss Functions for Learning with Noisy Labels", NeurIPS 2023.
- Official code checked: Virusdoll/Active-Negative-Loss @ 0c50009: loss.py:97-110 (NNCE, p clamped
  to [1e-7, 1]), loss.py:265-272 (ANL-CE: the L1 term is a *sum* of |theta| over every
  model.parameters(), batch-norm weights and biases included, added to the loss, so it passes
  through the gradient clip of trainer.py:45-50); config/cifar10_anl_ce.json (alpha 5, beta 5,
  delta 5e-5, min_prob 1e-7, weight_decay 0), config/cifar100_anl_ce.json (alpha 10, beta 1,
  delta 5e-7, weight_decay 0).
- Defaults: alpha 5, beta 5, delta 5e-5, min_prob 1e-7 (CIFAR-10); the L1 term replaces the
  protocol's L2 weight decay (replace_weight_decay, the official configs' weight_decay 0),
  recorded per epoch as train/weight_decay_replaced.
- Deviations: none. The journal version's entropy regulariser for asymmetric noise (ANL_CE_ER)
  is not implemented.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from methods.base import register_method
from methods.single import SingleNetwork
from methods.losses.terms import l1_of, nce, nnce
from methods.params import param


@dataclass
class ANLCEConfig:
    alpha: float = param(5.0, ge=0.0)
    """Weight of NCE, the active term (official CIFAR-10 5.0; CIFAR-100 10.0)."""
    beta: float = param(5.0, ge=0.0)
    """Weight of NNCE, the negative term (official CIFAR-10 5.0; CIFAR-100 1.0)."""
    delta: float = param(5e-5, ge=0.0)
    """Weight of the L1 sum over all parameters (official CIFAR-10 5e-5; CIFAR-100 5e-7)."""
    min_prob: float = param(1e-7, gt=0.0, lt=1.0)
    """Lower clamp of p in NNCE; A = -log(min_prob) (official 1e-7)."""
    replace_weight_decay: bool = param(True)
    """Train without the protocol's L2 weight decay (the L1 term replaces it, as the official
    configs' weight_decay 0); false keeps both."""


@register_method("anl_ce")
class ANLCE(SingleNetwork):
    Config = ANLCEConfig

    def weight_decay(self) -> float | None:
        return 0.0 if self.cfg.replace_weight_decay else None

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        c = self.cfg
        return c.alpha * nce(logits, y) + c.beta * nnce(logits, y, c.min_prob)

    def penalty(self) -> Tensor:
        return self.cfg.delta * l1_of(self.net.parameters())

    @classmethod
    def search_space(cls):
        return {"hp.alpha": (0.5, 50.0, "log"), "hp.beta": (0.1, 50.0, "log"),
                "hp.delta": (1e-7, 1e-3, "log")}
