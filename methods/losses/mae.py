"""Mean absolute error (MAE): the bounded, noise-tolerant passive loss.

Method card
- Paper: Ghosh, Kumar & Sastry, "Robust Loss Functions under Label Noise for Deep Neural
  Networks", AAAI 2017.
- Official code checked: HanxunH/Active-Passive-Losses @ 04bce53, loss.py:137-147
  (MeanAbsoluteError: scale * mean(1 - p_y)); configs/cifar10/sym/mae.yaml (scale 1.0).
- Defaults: scale 1.0 (the APL CIFAR-10 config).
- Deviations: none. MAE is known to underfit hard tasks (5.31% clean CIFAR-100 accuracy in the
  epsilon-softmax paper's Table 3): that is the method, not a bug.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from methods.base import register_method
from methods.single import SingleNetwork
from methods.losses.terms import mae
from methods.params import param


@dataclass
class MAEConfig:
    scale: float = param(1.0, gt=0.0)
    """Factor on 1 - p_y (APL's `scale`; CIFAR-10 config 1.0). With SGD it acts as an lr factor."""


@register_method("mae")
class MAE(SingleNetwork):
    Config = MAEConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return self.cfg.scale * mae(logits, y)

    @classmethod
    def search_space(cls):
        return {"hp.scale": (0.1, 100.0, "log")}
