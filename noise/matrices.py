"""Nominal and realised transition matrices.

Every matrix here has shape (C, C), dtype float64, and is row-stochastic:
T[i, j] = P(noisy = j | true = i), so each row sums to 1. Matrix generation is kept apart from
label sampling (noise.sampling) so both can be tested on their own.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from noise.spec import NoiseSpec


def _check(C: int, r: float) -> None:
    if int(C) < 2:
        raise ValueError(f"need at least 2 classes, got C={C}")
    if not 0.0 <= float(r) <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {r}")


def sym_matrix(C: int, r: float) -> np.ndarray:
    """Symmetric noise excluding the true class, shape (C, C), row-stochastic
    (T[i, j] = P(noisy = j | true = i)): diagonal 1 - r, every other entry r / (C - 1).
    The expected flip rate is exactly r."""
    _check(C, r)
    T = np.full((C, C), r / (C - 1), dtype=np.float64)
    np.fill_diagonal(T, 1.0 - r)
    return T


def sym_incl_matrix(C: int, r: float) -> np.ndarray:
    """Symmetric noise drawn from all classes (DivideMix's convention), shape (C, C),
    row-stochastic (T[i, j] = P(noisy = j | true = i)): a fraction r of labels is redrawn
    uniformly from all C classes, so the diagonal is 1 - r + r/C and the rest r/C.
    The expected flip rate is r (C - 1) / C."""
    _check(C, r)
    T = np.full((C, C), r / C, dtype=np.float64)
    np.fill_diagonal(T, 1.0 - r + r / C)
    return T


def pairflip_matrix(C: int, r: float) -> np.ndarray:
    """Pair flipping, shape (C, C), row-stochastic (T[i, j] = P(noisy = j | true = i)):
    class i keeps its label with probability 1 - r and becomes (i + 1) mod C with probability r."""
    _check(C, r)
    T = np.eye(C, dtype=np.float64) * (1.0 - r)
    idx = np.arange(C)
    T[idx, (idx + 1) % C] += r
    return T


def asym_matrix(C: int, r: float, mapping: Mapping[int, int]) -> np.ndarray:
    """Class-map noise, shape (C, C), row-stochastic (T[i, j] = P(noisy = j | true = i)):
    each source class i in `mapping` becomes mapping[i] with probability r; classes not in the
    map (and classes mapped to themselves) keep their label."""
    _check(C, r)
    T = np.eye(C, dtype=np.float64)
    for src, dst in mapping.items():
        if not (0 <= src < C and 0 <= dst < C):
            raise ValueError(f"class map entry {src}->{dst} is outside 0..{C - 1}")
        if src != dst:
            T[src, src] = 1.0 - r
            T[src, dst] = r
    return T


def nominal_matrix(spec: NoiseSpec, C: int, dataset: str) -> np.ndarray | None:
    """The nominal (intended) transition matrix of `spec`, shape (C, C), row-stochastic
    (T[i, j] = P(noisy = j | true = i)). Identity for `none`; None for idn (instance-dependent,
    no single matrix) and for human/twin (their matrix is measured from a label set)."""
    from noise.maps import asym_map  # local: keeps this module light to import

    r = float(spec.rate)
    if spec.kind == "none":
        return np.eye(C, dtype=np.float64)
    if spec.kind == "sym":
        return sym_matrix(C, r)
    if spec.kind == "sym_incl":
        return sym_incl_matrix(C, r)
    if spec.kind == "pairflip":
        return pairflip_matrix(C, r)
    if spec.kind == "asym":
        return asym_matrix(C, r, asym_map(dataset))
    if spec.kind in ("idn", "human", "twin"):
        return None
    raise ValueError(f"unknown noise kind {spec.kind!r}")


def realised_matrix(clean: np.ndarray, noisy: np.ndarray, C: int) -> np.ndarray:
    """Measured transition matrix, shape (C, C), row-stochastic
    (T[i, j] = fraction of samples with true class i that got noisy label j).

    clean, noisy: (N,) integer labels in [0, C). A class with no samples gets an identity row,
    so the result stays row-stochastic.
    """
    clean = np.asarray(clean, dtype=np.int64)
    noisy = np.asarray(noisy, dtype=np.int64)
    if clean.shape != noisy.shape or clean.ndim != 1:
        raise ValueError(f"clean and noisy must be (N,) of the same length, got "
                         f"{clean.shape} and {noisy.shape}")
    for name, a in (("clean", clean), ("noisy", noisy)):
        if a.size and (a.min() < 0 or a.max() >= C):
            raise ValueError(f"{name} labels must lie in [0, {C}), got [{a.min()}, {a.max()}]")
    counts = np.bincount(clean * C + noisy, minlength=C * C).reshape(C, C).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    empty = totals[:, 0] == 0
    T = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    T[empty, empty.nonzero()[0]] = 1.0
    return T


def flip_rate(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Fraction of the (N,) labels where noisy != clean (0.0 for N = 0)."""
    clean = np.asarray(clean)
    noisy = np.asarray(noisy)
    if clean.shape != noisy.shape:
        raise ValueError(f"shape mismatch: {clean.shape} vs {noisy.shape}")
    return float(np.mean(clean != noisy)) if clean.size else 0.0
