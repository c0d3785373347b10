"""Mixup and semi-supervised building blocks (DivideMix, DISC, ELR+): sharpening, mixing,
Beta draws, ramps, soft-target losses and the regularisers that go with them.

Pure functions: no module state, no global random numbers. Randomness comes in explicitly as a
``torch.Generator`` or a ``numpy.random.Generator``, or as a seed.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def sharpen(p: Tensor, temperature: float) -> Tensor:
    """(B, C) probabilities -> (B, C) sharpened distribution p^(1/T) / sum_c p^(1/T).

    Rows sum to 1. T < 1 makes each row more peaked; T = 1 only renormalises.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    q = p.clamp_min(0).pow(1.0 / temperature)
    # a row whose mass underflowed to 0 would divide by 0: fall back to the uniform distribution
    s = q.sum(dim=1, keepdim=True)
    uniform = torch.full_like(q, 1.0 / q.shape[1])
    return torch.where(s > 0, q / s.clamp_min(torch.finfo(q.dtype).tiny), uniform)


def mixup_lambdas(rng: np.random.Generator, alpha: float, size: int) -> np.ndarray:
    """(size,) MixMatch coefficients lambda' = max(lambda, 1 - lambda), lambda ~ Beta(alpha, alpha).

    Every value lies in [0.5, 1], so a mixed sample stays closer to its first input (MixMatch's
    modification, kept by DivideMix). Drawn from ``rng`` only: reproducible and resumable.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    lam = rng.beta(alpha, alpha, size=size)
    return np.maximum(lam, 1.0 - lam)


def mix(inputs: Tensor, targets: Tensor, lam: float, perm: Tensor) -> tuple[Tensor, Tensor]:
    """Mixup of a batch with a permutation of itself.

    inputs: (M, ...) float; targets: (M, C) soft targets; perm: (M,) int64 permutation of range(M).
    Returns (M, ...) lam * inputs + (1 - lam) * inputs[perm] and the (M, C) targets mixed alike.
    """
    return (lam * inputs + (1.0 - lam) * inputs[perm],
            lam * targets + (1.0 - lam) * targets[perm])


def linear_rampup(current: float, start: float, length: float) -> float:
    """clip((current - start) / length, 0, 1): the weight of the unlabelled loss, in [0, 1].

    ``current`` counts epochs as a float (completed epochs + fraction of the current one), so the
    weight grows batch by batch. ``length <= 0`` means no ramp (1 from ``start`` on).
    """
    if length <= 0:
        return 1.0 if current >= start else 0.0
    return float(min(max((current - start) / length, 0.0), 1.0))


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """(B, C) logits, (B, C) target distributions -> scalar mean of -sum_c t_c log softmax_c."""
    return soft_ce(logits, targets).mean()


def uniform_prior_penalty(probs: Tensor) -> Tensor:
    """(M, C) softmax outputs -> scalar KL(uniform || mean prediction) = sum_c pi_c log(pi_c / pbar_c).

    Zero when the batch's mean prediction is uniform; keeps a network from putting every sample
    into one class (DivideMix's regulariser, from Tanaka et al. 2018).
    """
    c = probs.shape[1]
    pbar = probs.mean(dim=0).clamp_min(1e-12)
    return (math.log(1.0 / c) - pbar.log()).sum() / c


def negative_entropy(logits: Tensor) -> Tensor:
    """(B, C) logits -> scalar mean over the batch of sum_c p_c log p_c (<= 0).

    Added to the loss it penalises confident predictions (DivideMix's warm-up ``conf_penalty``
    for asymmetric noise).
    """
    logp = F.log_softmax(logits.float(), dim=1)
    return (logp.exp() * logp).sum(dim=1).mean()


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
