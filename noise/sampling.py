"""Draw noisy labels from a class-conditional transition matrix.

T has shape (C, C) and is row-stochastic: T[i, j] = P(noisy = j | true = i). The row used for a
sample is always that of its clean label, so which samples flip never depends on labels that
were already changed.
"""
from __future__ import annotations

import numpy as np

from noise.spec import MODES


def _check_inputs(clean: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clean = np.asarray(clean)
    T = np.asarray(T, dtype=np.float64)
    if clean.ndim != 1 or not np.issubdtype(clean.dtype, np.integer):
        raise ValueError(f"clean labels must be a 1-D integer array, got {clean.dtype} {clean.shape}")
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        raise ValueError(f"T must be square (C, C), got {T.shape}")
    C = T.shape[0]
    if clean.size and (clean.min() < 0 or clean.max() >= C):
        raise ValueError(f"clean labels must lie in [0, {C}), got [{clean.min()}, {clean.max()}]")
    if (T < 0).any() or not np.allclose(T.sum(axis=1), 1.0, atol=1e-8):
        raise ValueError("T must be row-stochastic: non-negative with rows summing to 1")
    return clean.astype(np.int64), T


def exact_counts(n: int, row: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding of n * row: (C,) int64 counts summing to n.

    Ties in the remainder go to the lower class index (a stable sort), so the counts are a
    deterministic function of (n, row).
    """
    x = n * np.asarray(row, dtype=np.float64)
    # snap values within float error of an integer (100 * 0.45 = 45.00000000000001), else floor
    # would give 44 or 45 depending on rounding noise rather than on the intended count
    near = np.isclose(x, np.round(x), rtol=0.0, atol=1e-9)
    x = np.where(near, np.round(x), x)
    counts = np.floor(x).astype(np.int64)
    short = n - int(counts.sum())
    if short > 0:
        order = np.argsort(-(x - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def sample_from_matrix(clean: np.ndarray, T: np.ndarray, rng: np.random.Generator,
                       mode: str = "bernoulli") -> np.ndarray:
    """Noisy labels drawn from T given the clean labels.

    clean: (N,) integer labels in [0, C). T: (C, C) row-stochastic, T[i, j] = P(noisy = j |
    true = i). Returns (N,) int64.

    mode "bernoulli": every sample draws its label independently from row T[clean[k]].
    mode "exact": within each true class i with n_i samples, exactly exact_counts(n_i, T[i])[j]
    samples get label j; which samples get which label is a random permutation of the class's
    indices. This removes the sampling variance of the realised matrix.
    """
    if mode not in MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; valid modes: {', '.join(MODES)}")
    clean, T = _check_inputs(clean, T)
    C = T.shape[0]
    noisy = np.empty_like(clean)
    if mode == "bernoulli":
        cdf = np.cumsum(T, axis=1)
        # one uniform per sample, drawn in sample order, so the result depends only on the seed
        u = rng.random(clean.size)
        for c in range(C):
            idx = np.flatnonzero(clean == c)
            # min() guards against a last cumulative value a hair below 1
            noisy[idx] = np.minimum(np.searchsorted(cdf[c], u[idx], side="right"), C - 1)
    else:
        for c in range(C):
            idx = np.flatnonzero(clean == c)
            if idx.size == 0:
                continue
            counts = exact_counts(idx.size, T[c])
            noisy[rng.permutation(idx)] = np.repeat(np.arange(C, dtype=np.int64), counts)
    return noisy
