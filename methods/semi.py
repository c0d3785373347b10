"""Semi-supervised building blocks shared by methods that divide the data (DivideMix and kin).

Pure functions: no module state, no global random numbers. Randomness comes in explicitly as a
``torch.Generator`` or a ``numpy.random.Generator``, or as a seed.
"""
from __future__ import annotations

import math
import warnings

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
    return -(F.log_softmax(logits.float(), dim=1) * targets).sum(dim=1).mean()


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


def minmax(x: Tensor) -> Tensor:
    """(N,) -> (N,) scaled to [0, 1]; a constant vector maps to zeros (no division by zero)."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo).clamp_min(1e-12)


def gmm_clean_prob(losses: Tensor, seed: int, max_iter: int = 10, tol: float = 1e-2,
                   reg_covar: float = 5e-4) -> Tensor:
    """(N,) per-sample losses -> (N,) float32 P(clean): the posterior of the low-mean component
    of a two-component 1-D Gaussian mixture fitted to the losses (DivideMix's co-divide step).

    The defaults are the official settings (max_iter 10, tol 1e-2, reg_covar 5e-4); ``seed`` fixes
    scikit-learn's k-means initialisation so a resumed run refits exactly the same mixture.
    The result lives on the device of ``losses``. Non-finite losses are treated as the largest.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    x = losses.detach().double()
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        x = torch.where(finite, x, x[finite].max() if bool(finite.any()) else torch.zeros_like(x))
    arr = x.cpu().numpy().reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
                          random_state=seed)
    with warnings.catch_warnings():
        # 10 EM iterations often stop short of tol, on purpose (the official setting)
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(arr)
        post = gmm.predict_proba(arr)
    low = int(np.argmin(gmm.means_.reshape(-1)))
    return torch.as_tensor(post[:, low], dtype=torch.float32, device=losses.device)


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
