"""Label sampling from a transition matrix: measured rates, exact counts, maps, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from noise import (asym_map, asym_matrix, exact_counts, flip_rate, pairflip_matrix,
                   realised_matrix, sample_from_matrix, sym_incl_matrix, sym_matrix)

N, C = 20000, 10


def _clean(seed: int = 0, n: int = N, c: int = C) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, c, n)


def _tol(p: float, n: int, k: float = 4.0) -> float:
    """k binomial standard errors of a proportion p measured on n samples."""
    return k * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("r", [0.2, 0.5, 0.8])
def test_sym_measured_rate_is_r(r):
    clean = _clean()
    noisy = sample_from_matrix(clean, sym_matrix(C, r), np.random.default_rng(1))
    assert noisy.dtype == np.int64 and noisy.shape == clean.shape
    assert abs(flip_rate(clean, noisy) - r) < _tol(r, N)
    # wrong labels are spread evenly over the other classes
    T = realised_matrix(clean, noisy, C)
    off = T[~np.eye(C, dtype=bool)]
    assert np.abs(off - r / (C - 1)).max() < _tol(r / (C - 1), N // C, 5.0)
    np.testing.assert_allclose(T.sum(axis=1), 1.0)


@pytest.mark.parametrize("r", [0.5, 0.8])
def test_sym_incl_measured_rate_is_r_times_c_minus_1_over_c(r):
    clean = _clean()
    noisy = sample_from_matrix(clean, sym_incl_matrix(C, r), np.random.default_rng(2))
    expected = r * (C - 1) / C
    assert abs(flip_rate(clean, noisy) - expected) < _tol(expected, N)
    assert abs(flip_rate(clean, noisy) - r) > _tol(r, N)  # distinguishable from plain sym


@pytest.mark.parametrize("mode", ["bernoulli", "exact"])
def test_pairflip_goes_only_to_next_class(mode):
    clean = _clean()
    noisy = sample_from_matrix(clean, pairflip_matrix(C, 0.45), np.random.default_rng(3), mode)
    flipped = noisy != clean
    assert (noisy[flipped] == (clean[flipped] + 1) % C).all()
    assert abs(flipped.mean() - 0.45) < _tol(0.45, N)


@pytest.mark.parametrize("dataset", ["cifar10", "digits", "fashion_mnist"])
@pytest.mark.parametrize("mode", ["bernoulli", "exact"])
def test_asym_follows_class_map_exactly(dataset, mode):
    m, r = asym_map(dataset), 0.4
    clean = _clean(4)
    noisy = sample_from_matrix(clean, asym_matrix(C, r, m), np.random.default_rng(5), mode)
    flipped = noisy != clean
    # every flipped label is the mapped class of its clean label
    assert all(noisy[k] == m[int(clean[k])] for k in np.flatnonzero(flipped))
    for c in range(C):
        in_c = clean == c
        if c in m:
            assert abs(flipped[in_c].mean() - r) < _tol(r, int(in_c.sum()))
        else:
            assert not flipped[in_c].any()  # non-source classes untouched


def test_flips_are_chosen_from_clean_labels_for_swapped_pairs():
    # cat (3) <-> dog (5): relabelling in place would flip some samples twice (3 -> 5 -> 3)
    m = asym_map("cifar10")
    clean = np.repeat(np.arange(C), 1000)
    noisy = sample_from_matrix(clean, asym_matrix(C, 0.4, m), np.random.default_rng(6), "exact")
    assert (noisy[clean == 3] == 5).sum() == 400 and (noisy[clean == 3] == 3).sum() == 600
    assert (noisy[clean == 5] == 3).sum() == 400 and (noisy[clean == 5] == 5).sum() == 600


def test_exact_counts_largest_remainder():
    np.testing.assert_array_equal(exact_counts(7, np.array([0.5, 0.25, 0.25])), [3, 2, 2])
    np.testing.assert_array_equal(exact_counts(100, np.array([0.55, 0.45])), [55, 45])
    np.testing.assert_array_equal(exact_counts(10, np.array([1 / 3, 1 / 3, 1 / 3])), [4, 3, 3])
    assert exact_counts(0, np.array([0.5, 0.5])).sum() == 0


def test_exact_mode_gives_rounded_count_per_class():
    rng = np.random.default_rng(7)
    sizes = [1, 7, 33, 101, 250, 999, 10, 3, 57, 500]
    clean = rng.permutation(np.repeat(np.arange(C), sizes))
    T = sym_matrix(C, 0.37)
    noisy = sample_from_matrix(clean, T, np.random.default_rng(8), "exact")
    for c, n in enumerate(sizes):
        got = np.bincount(noisy[clean == c], minlength=C)
        np.testing.assert_array_equal(got, exact_counts(n, T[c]))


def test_exact_mode_permutes_within_class():
    clean = np.repeat(np.arange(C), 200)
    T = sym_matrix(C, 0.3)
    a = sample_from_matrix(clean, T, np.random.default_rng(9), "exact")
    b = sample_from_matrix(clean, T, np.random.default_rng(10), "exact")
    assert (a != clean).sum() == (b != clean).sum() == 600  # same counts ...
    assert not np.array_equal(a != clean, b != clean)        # ... on different samples


@pytest.mark.parametrize("mode", ["bernoulli", "exact"])
def test_same_seed_same_labels_other_seed_other_labels(mode):
    clean = _clean()
    T = sym_matrix(C, 0.4)
    a = sample_from_matrix(clean, T, np.random.default_rng(11), mode)
    b = sample_from_matrix(clean, T, np.random.default_rng(11), mode)
    c = sample_from_matrix(clean, T, np.random.default_rng(12), mode)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.1


def test_global_rng_untouched():
    state = np.random.get_state()[1].copy()
    sample_from_matrix(_clean(), sym_matrix(C, 0.4), np.random.default_rng(0))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_rejects_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="row-stochastic"):
        sample_from_matrix(np.array([0, 1]), np.full((2, 2), 0.6), rng)
    with pytest.raises(ValueError, match="lie in"):
        sample_from_matrix(np.array([0, 2]), np.eye(2), rng)
    with pytest.raises(ValueError, match="valid modes"):
        sample_from_matrix(np.array([0, 1]), np.eye(2), rng, mode="poisson")
