"""Per-sample quantities shared by the methods: per-sample losses, an eval pass that scores every
training sample, and per-sample state kept with a method's checkpoint."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import RunContext
from methods.batching import ordered


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

