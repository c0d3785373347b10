"""Helpers shared by the methods: batching, one supervised epoch, per-sample losses, losses."""
from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import RunContext


def batches(n: int, batch_size: int, gen: torch.Generator, device: torch.device) -> Iterator[Tensor]:
    """Index slices of one random permutation of range(n): (B,) int64 on ``device``.

    The last partial batch is kept unless it has a single sample (BatchNorm cannot train on it).
    """
    perm = torch.randperm(n, generator=gen, device=gen.device).to(device)
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        if idx.numel() > 1:
            yield idx


def ordered(n: int, batch_size: int, device: torch.device) -> Iterator[Tensor]:
    """Index slices of range(n) in order: (B,) int64 on ``device``."""
    for start in range(0, n, batch_size):
        yield torch.arange(start, min(n, start + batch_size), device=device)


def ce_per_sample(logits: Tensor, y: Tensor) -> Tensor:
    """(B, C) logits, (B,) labels -> (B,) cross-entropy, computed in fp32."""
    return F.cross_entropy(logits.float(), y, reduction="none")


def gce_per_sample(logits: Tensor, y: Tensor, q: float) -> Tensor:
    """(B, C), (B,) -> (B,) generalised cross-entropy L_q = (1 - p_y^q) / q (Zhang & Sabuncu 2018)."""
    p_y = F.softmax(logits.float(), dim=1).gather(1, y[:, None]).squeeze(1)
    # clamp: p_y^q has an infinite derivative at 0 for q < 1
    return (1.0 - p_y.clamp_min(1e-12).pow(q)) / q


def supervised_epoch(model: nn.Module, opt: torch.optim.Optimizer, ctx: RunContext, epoch: int,
                     loss_fn: Callable[[Tensor, Tensor], Tensor], stream: int = 0) -> dict[str, float]:
    """One epoch of plain supervised training on the noisy labels with a per-sample loss.

    loss_fn: (B, C) logits, (B,) labels -> (B,) losses. Returns train/loss and train/acc
    (accuracy against the noisy labels).
    """
    model.train()
    gen = ctx.generator(epoch, stream)
    total_loss = torch.zeros((), device=ctx.device)
    correct = torch.zeros((), device=ctx.device, dtype=torch.long)
    seen = 0
    for idx in batches(ctx.num_train, ctx.batch_size, gen, ctx.device):
        x = ctx.augment(ctx.train_x[idx], gen)
        y = ctx.noisy_labels[idx]
        logits = model(x)
        loss = loss_fn(logits, y).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # accumulate on the device: no host sync per step
        total_loss += loss.detach() * idx.numel()
        correct += (logits.detach().argmax(1) == y).sum()
        seen += idx.numel()
    return {"train/loss": float(total_loss) / seen, "train/acc": float(correct) / seen}


@torch.no_grad()
def per_sample_losses(model: nn.Module, ctx: RunContext) -> Tensor:
    """(N,) fp32 cross-entropy of every training sample against its noisy label, eval mode.

    Batched passes written into one preallocated device tensor: no Python loop over samples.
    """
    model.eval()
    out = torch.empty(ctx.num_train, device=ctx.device)
    for idx in ordered(ctx.num_train, ctx.eval_batch_size, ctx.device):
        logits = model(ctx.normalise(ctx.train_x[idx]))
        out[idx] = ce_per_sample(logits, ctx.noisy_labels[idx])
    return out
