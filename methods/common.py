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


def one_hot(y: Tensor, num_classes: int) -> Tensor:
    """(B,) int64 -> (B, C) float32 one-hot."""
    return F.one_hot(y, num_classes).float()


def ce_per_sample(logits: Tensor, y: Tensor) -> Tensor:
    """(B, C) logits, (B,) labels -> (B,) cross-entropy, computed in fp32."""
    return F.cross_entropy(logits.float(), y, reduction="none")


def gce_per_sample(logits: Tensor, y: Tensor, q: float) -> Tensor:
    """(B, C), (B,) -> (B,) generalised cross-entropy L_q = (1 - p_y^q) / q (Zhang & Sabuncu 2018)."""
    p_y = F.softmax(logits.float(), dim=1).gather(1, y[:, None]).squeeze(1)
    # clamp: p_y^q has an infinite derivative at 0 for q < 1
    return (1.0 - p_y.clamp_min(1e-12).pow(q)) / q


def supervised_epoch(model: nn.Module, opt: torch.optim.Optimizer, ctx: RunContext, epoch: int,
                     batch_loss: Callable[[Tensor, Tensor, Tensor], Tensor], stream: int = 0,
                     penalty: Callable[[], Tensor | None] | None = None,
                     before_step: Callable[[], None] | None = None) -> dict[str, float]:
    """One epoch of plain supervised training on the noisy labels.

    batch_loss: (B, C) logits, (B,) noisy labels, (B,) training positions -> scalar loss (the
    positions index per-sample state such as ELR's targets). penalty(): an optional term that
    depends on the parameters only (ANL-CE's L1), added to every batch's loss. before_step(): an
    optional hook between backward and the optimiser step (CDR's gradient mask; the protocol's
    gradient clipping, a step pre-hook of the optimiser, runs after it). Returns train/loss (the
    data term, penalty excluded, so runs with and without it stay comparable), train/acc
    (accuracy against the noisy labels) and train/penalty when there is one.
    """
    model.train()
    gen = ctx.generator(epoch, stream)
    total_loss = torch.zeros((), device=ctx.device)
    total_pen = torch.zeros((), device=ctx.device)
    correct = torch.zeros((), device=ctx.device, dtype=torch.long)
    seen = steps = 0
    for idx in batches(ctx.num_train, ctx.batch_size, gen, ctx.device):
        x = ctx.augment(ctx.train_x[idx], gen)
        y = ctx.noisy_labels[idx]
        logits = model(x)
        loss = batch_loss(logits, y, idx)
        pen = penalty() if penalty is not None else None
        opt.zero_grad(set_to_none=True)
        (loss if pen is None else loss + pen).backward()
        if before_step is not None:
            before_step()
        opt.step()
        # accumulate on the device: no host sync per step
        total_loss += loss.detach() * idx.numel()
        if pen is not None:
            total_pen += pen.detach()
        correct += (logits.detach().argmax(1) == y).sum()
        seen += idx.numel()
        steps += 1
    out = {"train/loss": float(total_loss) / seen, "train/acc": float(correct) / seen}
    if penalty is not None:
        out["train/penalty"] = float(total_pen) / max(steps, 1)
    return out


@torch.no_grad()
def per_sample_losses(model: nn.Module, ctx: RunContext, positions: Tensor | None = None) -> Tensor:
    """(N,) fp32 cross-entropy of every training sample against its noisy label, eval mode, or
    (M,) of the training samples at ``positions`` ((M,) int64), in their order.

    Batched passes written into one preallocated device tensor: no Python loop over samples.
    """
    model.eval()
    n = ctx.num_train if positions is None else len(positions)
    out = torch.empty(n, device=ctx.device)
    for rows in ordered(n, ctx.eval_batch_size, ctx.device):
        idx = rows if positions is None else positions[rows]
        logits = model(ctx.normalise(ctx.train_x[idx]))
        out[rows] = ce_per_sample(logits, ctx.noisy_labels[idx])
    return out


class PerSampleState:
    """Tensors with one row per training sample, indexed by training position (the ``idx`` a
    batch loss receives), kept on the device and saved in the method's checkpoint.

    ``state_dict()`` copies them to the CPU; ``load_state_dict()`` refuses a state whose row count
    or shapes differ (a checkpoint of another training split must not load silently) and writes
    into the existing tensors, so parameters keep their identity for the optimiser that holds
    them (SOP's u and v).
    """

    def __init__(self, **tensors: Tensor):
        self.tensors = dict(tensors)

    def __getitem__(self, name: str) -> Tensor:
        return self.tensors[name]

    def state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.tensors.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if set(state) != set(self.tensors):
            raise ValueError(f"per-sample state holds {sorted(state)}, expected {sorted(self.tensors)}")
        for k, v in self.tensors.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise ValueError(f"per-sample state '{k}' has shape {tuple(state[k].shape)}, this run "
                                 f"needs {tuple(v.shape)} (another training split?)")
            with torch.no_grad():
                v.copy_(state[k].to(v.device))

