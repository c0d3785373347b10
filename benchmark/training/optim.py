"""The protocol's optimiser and learning-rate schedules, as pure functions of the epoch.

The lr is set at the start of every epoch from ``lr_at(cfg, epoch, epochs)`` instead of a stateful
scheduler object, so a resumed run gets exactly the lr of an uninterrupted one.
"""
from __future__ import annotations

import math

import torch

from benchmark.config import OptimConfig


def build_optimizer(cfg: OptimConfig, params, weight_decay: float | None = None) -> torch.optim.Optimizer:
    """The protocol's optimiser over ``params``.

    ``weight_decay`` replaces the protocol's L2 weight decay for a method that brings its own
    regulariser instead (ANL-CE's L1 term: the official configs set weight_decay 0). With
    ``cfg.grad_clip`` > 0 a step pre-hook clips the global gradient norm of every parameter of the
    optimiser before each step, so every method that uses the protocol's optimiser is clipped the
    same way, without code of its own (APL / ANL trainer.py: clip_grad_norm_(params, 5.0) between
    backward and step).
    """
    wd = cfg.weight_decay if weight_decay is None else weight_decay
    if cfg.name == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd,
                              nesterov=bool(cfg.nesterov))
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=wd)
    if cfg.grad_clip > 0:
        max_norm = float(cfg.grad_clip)
        clipped = [p for g in opt.param_groups for p in g["params"]]  # listed once, not every step

        def clip(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
            torch.nn.utils.clip_grad_norm_(clipped, max_norm)  # parameters without a gradient are skipped

        opt.register_step_pre_hook(clip)
    return opt


def lr_at(cfg: OptimConfig, epoch: int, epochs: int) -> float:
    """Learning rate for 1-based ``epoch`` of ``epochs``.

    cosine: eta_min + (lr - eta_min) * (1 + cos(pi * (epoch - 1) / epochs)) / 2, so epoch 1 uses
    the full lr (torch's CosineAnnealingLR with T_max = epochs, stepped once per epoch).
    cosine_restarts: the same over cycles of restart_every epochs, (epoch - 1) mod restart_every
    in place of epoch - 1 (torch's CosineAnnealingWarmRestarts, T_mult 1, stepped per epoch).
    linear: constant until decay_start, then linearly to 0 after the last epoch
    (Co-teaching's schedule: decay_start = 80 of 200 epochs).
    """
    if cfg.schedule == "none":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(1 for m in cfg.milestones if epoch > m)
    if cfg.schedule == "cosine":
        return cfg.eta_min + (cfg.lr - cfg.eta_min) * 0.5 * (
            1.0 + math.cos(math.pi * (epoch - 1) / max(epochs, 1)))
    if cfg.schedule == "cosine_restarts":
        t = (epoch - 1) % cfg.restart_every
        return cfg.eta_min + (cfg.lr - cfg.eta_min) * 0.5 * (
            1.0 + math.cos(math.pi * t / cfg.restart_every))
    start = cfg.decay_start
    if epoch <= start:
        return cfg.lr
    return cfg.lr * (epochs - epoch + 1) / max(epochs - start, 1)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
