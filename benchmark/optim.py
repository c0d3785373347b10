"""The protocol's optimiser and learning-rate schedules, as pure functions of the epoch.

The lr is set at the start of every epoch from ``lr_at(cfg, epoch, epochs)`` instead of a stateful
scheduler object, so a resumed run gets exactly the lr of an uninterrupted one.
"""
from __future__ import annotations

import math

import torch

from benchmark.config import OptimConfig


def build_optimizer(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)


def lr_at(cfg: OptimConfig, epoch: int, epochs: int) -> float:
    """Learning rate for 1-based ``epoch`` of ``epochs``.

    cosine: lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2, so epoch 1 uses the full lr.
    linear: constant until decay_start, then linearly to 0 after the last epoch
    (Co-teaching's schedule: decay_start = 80 of 200 epochs).
    """
    if cfg.schedule == "none":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(1 for m in cfg.milestones if epoch > m)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max(epochs, 1)))
    start = cfg.decay_start
    if epoch <= start:
        return cfg.lr
    return cfg.lr * (epochs - epoch + 1) / max(epochs - start, 1)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
