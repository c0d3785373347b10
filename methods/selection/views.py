"""Pieces the selection methods share: strong-view settings, weight-EMA copies, seeded mixup."""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import Tensor, nn


def ema_copy(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` for weight averaging (mean teacher, ELR+'s EMA networks).

    Its parameters take no gradients. An OBD-masked classifier of the copy is switched off: the
    mask acts on the gradients of the network that trains, and an averaged copy receives none;
    it averages the trained network's full weights."""
    return frozen(copy.deepcopy(net))


def frozen(net: nn.Module) -> nn.Module:
    """``net`` with its parameters out of autograd and any OBD mask off: a weight-averaged copy."""
    for p in net.parameters():
        p.requires_grad_(False)
    deactivate_mask(net)
    return net


def deactivate_mask(net: nn.Module) -> None:
    """Switch off an OBD mask on ``net.classifier`` (a no-op for a plain Linear)."""
    cls = getattr(net, "classifier", None)
    if cls is not None and hasattr(cls, "active"):
        cls.active = False


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, alpha: float) -> None:
    """ema <- alpha * ema + (1 - alpha) * net, over parameters only (buffers are left alone, as
    in SED's utils/ema.py and ELR+'s trainer: the copies keep their own BatchNorm statistics)."""
    for e, p in zip(ema.parameters(), net.parameters()):
        e.mul_(alpha).add_(p.detach(), alpha=1.0 - alpha)


def epoch_rng(gen: torch.Generator) -> np.random.Generator:
    """A numpy generator for an epoch's Beta draws, seeded from the epoch's torch generator."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
    return np.random.default_rng(seed)


def mixup_lambda(rng: np.random.Generator, alpha: float) -> float:
    """max(l, 1 - l) with l ~ Beta(alpha, alpha): the mixed sample stays nearer its first input."""
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1.0 - lam)


def sigmoid_rampup(current: float, length: float) -> float:
    """exp(-5 (1 - clip(current, 0, length) / length)^2); 1 when length is 0 (ELR+'s util.py)."""
    if length == 0:
        return 1.0
    t = min(max(current, 0.0), length) / length
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


def soft_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """(B, C) logits, (B, C) soft targets -> (B,) -sum_c t_c log softmax_c, in fp32."""
    return -(torch.log_softmax(logits.float(), dim=1) * targets).sum(dim=1)
