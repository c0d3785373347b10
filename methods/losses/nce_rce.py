"""NCE+RCE, the active-passive loss (APL) of normalised CE and reverse CE.

Method card
- Paper: Ma et al., "Normalized Loss Functions for Deep Learning with Noisy Labels", ICML 2020.
- Official code checked: HanxunH/Active-Passive-Losses @ 04bce53: loss.py:87-90 (NCE), 52-57
  (RCE, p clamped to [1e-7, 1], one-hot to [1e-4, 1]), 168-176 (NCEandRCE: alpha * NCE + beta *
  RCE, RCE not normalised); trainer.py:44 (gradient-norm clip 5.0, the protocol's grad_clip here);
  configs/cifar10/{sym,asym}/nce+rce.yaml (alpha 1, beta 1), configs/cifar100/sym/nce+rce.yaml
  (alpha 10, beta 0.1).
- Defaults: alpha 1.0, beta 1.0, label_clamp 1e-4 (CIFAR-10).
- Deviations: none in the loss. The APL CIFAR-100 config names a bottleneck ResNet-50; the
  losses-cifar100 preset uses ResNet-34, as the ANL repository and the epsilon-softmax paper (whose
  table is the published column) do for the same protocol.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from methods.base import register_method
from methods.single import SingleNetwork
from methods.losses.terms import nce, rce
from methods.params import param


@dataclass
class NCERCEConfig:
    alpha: float = param(1.0, ge=0.0)
    """Weight of the active term NCE (official CIFAR-10 1.0; CIFAR-100 10.0)."""
    beta: float = param(1.0, ge=0.0)
    """Weight of the passive term RCE (official CIFAR-10 1.0; CIFAR-100 0.1)."""
    label_clamp: float = param(1e-4, gt=0.0, lt=1.0)
    """Lower clamp of the one-hot inside RCE's log (official 1e-4)."""


@register_method("nce_rce")
class NCERCE(SingleNetwork):
    Config = NCERCEConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        c = self.cfg
        return c.alpha * nce(logits, y) + c.beta * rce(logits, y, c.label_clamp)

    @classmethod
    def search_space(cls):
        return {"hp.alpha": (0.1, 50.0, "log"), "hp.beta": (0.01, 10.0, "log")}
