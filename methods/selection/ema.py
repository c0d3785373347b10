"""Weight-averaged copies of a network (mean teachers, ELR+'s averaged networks): made, frozen, updated."""
from __future__ import annotations

import copy

import torch
from torch import nn


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


