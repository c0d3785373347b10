"""Loss terms shared by the robust-loss methods: pure functions, fp32, per sample.

Every function takes (B, C) logits and (B,) int64 labels and returns (B,) per-sample values; the
methods average them over the batch (as the official code does with ``.mean()``). Clamps are the
official ones, with the file and line they come from, because they change the numbers: RCE's
clamp of the one-hot at 1e-4 *is* its constant A = ln 1e-4 ~ -9.21 (not the -4 that papers print,
HanxunH/SCELoss-Reproduce#1).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.per_sample import one_hot


def mae(logits: Tensor, y: Tensor) -> Tensor:
    """(B, C), (B,) -> (B,) 1 - p_y: MAE sum_k |p_k - q_k| = 2 - 2 p_y up to the factor 2, as
    APL's MeanAbsoluteError computes it (loss.py:137-147, no clamp)."""
    return 1.0 - F.softmax(logits.float(), dim=1).gather(1, y[:, None]).squeeze(1)


def rce(logits: Tensor, y: Tensor, label_clamp: float = 1e-4, clip_p: bool = True) -> Tensor:
    """(B, C), (B,) -> (B,) reverse cross-entropy -sum_k p_k log q_k.

    The one-hot q clamped to [label_clamp, 1] and, with ``clip_p`` (APL loss.py:52-57), p to
    [1e-7, 1], so RCE = -ln(label_clamp) * (1 - p_y) up to the p clamp; the SCE authors' Keras
    loss (loss.py:18-20) leaves p unclipped (``clip_p=False``).
    """
    p = F.softmax(logits.float(), dim=1)
    if clip_p:
        p = p.clamp(1e-7, 1.0)
    q = one_hot(y, logits.shape[1]).clamp(label_clamp, 1.0)
    return -(p * q.log()).sum(dim=1)


def nce(logits: Tensor, y: Tensor) -> Tensor:
    """(B, C), (B,) -> (B,) normalised cross-entropy (-log p_y) / (-sum_k log p_k) (APL
    loss.py:87-90: log_softmax, no clamp). In [0, 1]: small when p_y is the largest."""
    logp = F.log_softmax(logits.float(), dim=1)
    return logp.gather(1, y[:, None]).squeeze(1) / logp.sum(dim=1)


def nnce(logits: Tensor, y: Tensor, min_prob: float = 1e-7) -> Tensor:
    """(B, C), (B,) -> (B,) normalised negative cross-entropy of ANL (Virusdoll loss.py:97-110).

    p clamped to [min_prob, 1]; t_k = A + log p_k with A = -log(min_prob), so t_k >= 0 (a
    vertically flipped CE); NNCE = 1 - t_y / sum_k t_k.
    """
    p = F.softmax(logits.float(), dim=1).clamp(min_prob, 1.0)
    t = -math.log(min_prob) + p.log()
    return 1.0 - t.gather(1, y[:, None]).squeeze(1) / t.sum(dim=1)


def l1_of(params) -> Tensor:
    """Scalar sum of |theta| over every tensor in ``params`` (ANL's L1: a sum, not a mean, over all
    parameters, batch-norm weights and biases included; loss.py:265-272)."""
    return torch.stack([p.abs().sum() for p in params]).sum()

