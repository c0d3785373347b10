"""Symmetric cross-entropy (SCE): alpha * CE + beta * reverse CE.

Method card
- Paper: Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy Labels", ICCV 2019.
- Official code checked: YisenWang/symmetric_cross_entropy_for_noisy_labels @ ec778df (Keras),
  loss.py:9-21 (the CE term on softmax outputs clipped to [1e-7, 1], loss.py:17; the RCE term
  with the one-hot clipped to [1e-4, 1] and p unclipped, loss.py:18-20); the PyTorch protocol of
  HanxunH/Active-Passive-Losses @ 04bce53, loss.py:18-40 (SCELoss: CE on logits, no clip; p
  clamped to [1e-7, 1] in the RCE term) and configs/cifar10/sym/sce.yaml (alpha 0.1, beta 1.0),
  configs/cifar100/sym/sce.yaml (alpha 6.0, beta 0.1).
- Defaults: alpha 0.1, beta 1.0 (CIFAR-10, both codes); label_clamp 1e-4, so the constant A of
  the paper is ln 1e-4 ~ -9.21, as in both codes (the paper's "A = -4" is a log10 reading).
- Deviations:
  1. The SCE code's CIFAR-10 network has an L2 of 0.01 on its first fully connected layer
     (models.py:86); the suite's 8-layer CNN follows the APL protocol, which has none. Can change
     results on SCE's own protocol; not on APL's, where the published SCE numbers come from.
  2. The default ``variant = "apl"`` is APL's PyTorch SCE, the code behind the loss-family
     protocol's published SCE numbers. The SCE authors' Keras code differs: its CE term clips
     p_y at 1e-7, so a sample with p_y < 1e-7 (logit gap above about 16: typically a confidently
     "wrong", i.e. mislabelled, sample) contributes a CE of -ln 1e-7 = 16.12 and no gradient,
     where APL's contributes its full CE and gradient; and its RCE term leaves p unclipped (a
     difference of at most 1e-7 x 9.21 x (C - 1) in value). ``variant = "keras"`` is that
     behaviour, the reference on SCE's own protocol. The two can change results (the CE cap
     matters once the network fits some labels with p_y < 1e-7, late in a memorising run).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from methods.base import register_method
from methods.single import SingleNetwork
from methods.per_sample import ce_per_sample
from methods.losses.terms import rce
from methods.params import param


VARIANTS = ("apl", "keras")


@dataclass
class SCEConfig:
    alpha: float = param(0.1, ge=0.0)
    """Weight of CE (official CIFAR-10 0.1; CIFAR-100 6.0)."""
    beta: float = param(1.0, ge=0.0)
    """Weight of reverse CE (official CIFAR-10 1.0; CIFAR-100 0.1)."""
    label_clamp: float = param(1e-4, gt=0.0, lt=1.0)
    """Lower clamp of the one-hot inside RCE's log (official 1e-4, i.e. A = ln 1e-4)."""
    variant: str = param("apl", choices=VARIANTS)
    """"apl": APL's PyTorch SCELoss (CE on logits, unclipped; p clamped at 1e-7 in RCE); "keras":
    the SCE authors' Keras loss (CE of p clipped to [1e-7, 1]: capped at 16.12 with no gradient
    below; RCE of unclipped p). See deviation 2."""


@register_method("sce")
class SCE(SingleNetwork):
    Config = SCEConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        c = self.cfg
        if c.variant == "keras":
            return c.alpha * keras_ce(logits, y) + c.beta * rce(logits, y, c.label_clamp, clip_p=False)
        return c.alpha * ce_per_sample(logits, y) + c.beta * rce(logits, y, c.label_clamp)


def keras_ce(logits: Tensor, y: Tensor) -> Tensor:
    """(B, C), (B,) -> (B,) -log(clip(softmax(z)_y, 1e-7, 1)), in fp32: the Keras SCE's CE term
    (loss.py:17, 20). Below p_y = 1e-7 it is constant (16.12) and passes no gradient, as
    tf.clip_by_value does outside its range."""
    p = F.softmax(logits.float(), dim=1).gather(1, y[:, None]).squeeze(1)
    return -p.clamp(1e-7, 1.0).log()

    @classmethod
    def search_space(cls):
        return {"hp.alpha": (0.01, 10.0, "log"), "hp.beta": (0.1, 10.0, "log")}
