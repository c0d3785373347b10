"""Symmetric cross-entropy (SCE): alpha * CE + beta * reverse CE.

Method card
- Paper: Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy Labels", ICCV 2019.
- Official code checked: YisenWang/symmetric_cross_entropy_for_noisy_labels @ ec778df (Keras),
  loss.py:9-20 (p clipped to [1e-7, 1], one-hot clipped to [1e-4, 1]); the PyTorch protocol of
  HanxunH/Active-Passive-Losses @ 04bce53, loss.py:27-40 (SCELoss) and configs/cifar10/sym/sce.yaml
  (alpha 0.1, beta 1.0), configs/cifar100/sym/sce.yaml (alpha 6.0, beta 0.1).
- Defaults: alpha 0.1, beta 1.0 (CIFAR-10, both codes); label_clamp 1e-4, so the constant A of
  the paper is ln 1e-4 ~ -9.21, as in both codes (the paper's "A = -4" is a log10 reading).
- Deviations:
  1. The SCE code's CIFAR-10 network has an L2 of 0.01 on its first fully connected layer
     (models.py:86); the suite's 8-layer CNN follows the APL protocol, which has none. Can change
     results on SCE's own protocol; not on APL's, where the published SCE numbers come from.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from methods.base import register_method
from methods.single import SingleNetwork
from methods.per_sample import ce_per_sample
from methods.losses.terms import rce
from methods.params import param


@dataclass
class SCEConfig:
    alpha: float = param(0.1, ge=0.0)
    """Weight of CE (official CIFAR-10 0.1; CIFAR-100 6.0)."""
    beta: float = param(1.0, ge=0.0)
    """Weight of reverse CE (official CIFAR-10 1.0; CIFAR-100 0.1)."""
    label_clamp: float = param(1e-4, gt=0.0, lt=1.0)
    """Lower clamp of the one-hot inside RCE's log (official 1e-4, i.e. A = ln 1e-4)."""


@register_method("sce")
class SCE(SingleNetwork):
    Config = SCEConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        c = self.cfg
        return c.alpha * ce_per_sample(logits, y) + c.beta * rce(logits, y, c.label_clamp)

    @classmethod
    def search_space(cls):
        return {"hp.alpha": (0.01, 10.0, "log"), "hp.beta": (0.1, 10.0, "log")}
