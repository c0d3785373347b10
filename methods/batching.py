"""Orders of training samples: shuffled mini-batches, in-order slices, cycled permutations.

Every order comes from an explicit ``torch.Generator`` (the run's order stream), so a resumed run
draws exactly what an uninterrupted one draws.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor


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


def cycled_order(n: int, total: int, gen: torch.Generator, device: torch.device) -> Tensor:
    """(total,) int64 indices into range(n): fresh random permutations of range(n) laid end to end.

    The index stream of a loader that is re-shuffled each time it runs out (DivideMix's unlabelled
    loader). All permutations are drawn at once (argsort of a (k, n) uniform matrix): no Python
    loop over passes or samples. n must be positive.
    """
    if n <= 0:
        raise ValueError("cycled_order needs n > 0")
    k = max(1, -(-total // n))
    if k == 1:
        return torch.randperm(n, generator=gen, device=gen.device)[:total].to(device)
    keys = torch.rand(k, n, generator=gen, device=gen.device)
    return keys.argsort(dim=1).reshape(-1)[:total].to(device)
