"""Nominal and realised transition matrices: row-stochastic, the right entries, the right maps."""
from __future__ import annotations

import numpy as np
import pytest

from noise import (ASYM_MAPS, NoiseSpec, NoiseSpecError, asym_map, asym_matrix, flip_rate,
                   nominal_matrix, pairflip_matrix, realised_matrix, sym_incl_matrix, sym_matrix)

DATASET_C = {"cifar10": 10, "cifar100": 100, "digits": 10, "fashion_mnist": 10}


@pytest.mark.parametrize("kind", ["none", "sym", "sym_incl", "pairflip", "asym"])
@pytest.mark.parametrize("dataset", sorted(DATASET_C))
@pytest.mark.parametrize("rate", [0.0, 0.2, 0.45])
def test_nominal_rows_sum_to_one(kind, dataset, rate):
    C = DATASET_C[dataset]
    spec = NoiseSpec(kind=kind, rate=0.0 if kind == "none" else rate)
    T = nominal_matrix(spec, C, dataset)
    assert T.shape == (C, C) and T.dtype == np.float64
    assert (T >= 0).all()
    np.testing.assert_allclose(T.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("kind", ["idn", "human", "twin"])
def test_nominal_is_none_without_class_matrix(kind):
    assert nominal_matrix(NoiseSpec(kind=kind), 10, "cifar10") is None


def test_sym_entries_and_expected_rates():
    C, r = 10, 0.4
    T = sym_matrix(C, r)
    assert np.allclose(np.diag(T), 1 - r)
    assert np.allclose(T[~np.eye(C, dtype=bool)], r / (C - 1))
    Ti = sym_incl_matrix(C, r)
    assert np.allclose(np.diag(Ti), 1 - r + r / C)
    assert np.allclose(Ti[~np.eye(C, dtype=bool)], r / C)
    # expected flip rate = 1 - mean diagonal
    assert 1 - np.diag(T).mean() == pytest.approx(r)
    assert 1 - np.diag(Ti).mean() == pytest.approx(r * (C - 1) / C)


def test_pairflip_goes_to_next_class_circularly():
    T = pairflip_matrix(5, 0.3)
    for i in range(5):
        expected = np.zeros(5)
        expected[i] = 0.7
        expected[(i + 1) % 5] = 0.3
        np.testing.assert_allclose(T[i], expected)


def test_asym_matrix_only_moves_source_rows():
    m = asym_map("cifar10")
    T = asym_matrix(10, 0.4, m)
    for i in range(10):
        if i in m:
            assert T[i, i] == pytest.approx(0.6) and T[i, m[i]] == pytest.approx(0.4)
        else:
            np.testing.assert_array_equal(T[i], np.eye(10)[i])


def test_asym_maps_as_documented():
    assert ASYM_MAPS["cifar10"] == {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
    assert ASYM_MAPS["digits"] == {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}
    assert ASYM_MAPS["fashion_mnist"] == {0: 6, 2: 4, 4: 2, 5: 7, 9: 7}
    c100 = ASYM_MAPS["cifar100"]
    assert len(c100) == 100 and c100[0] == 1 and c100[3] == 4 and c100[4] == 0 and c100[99] == 95
    # every target stays in its block of 5 and no class maps to itself
    assert all(t // 5 == s // 5 and t != s for s, t in c100.items())
    with pytest.raises(NoiseSpecError, match="cifar10"):
        asym_map("svhn")
    asym_map("cifar10")[9] = 0  # a copy: callers cannot change the registry
    assert ASYM_MAPS["cifar10"][9] == 1


def test_realised_matrix_counts_and_empty_rows():
    clean = np.array([0, 0, 0, 0, 1, 1])
    noisy = np.array([0, 0, 0, 1, 1, 0])
    T = realised_matrix(clean, noisy, 3)
    np.testing.assert_allclose(T, [[0.75, 0.25, 0], [0.5, 0.5, 0], [0, 0, 1]])
    np.testing.assert_allclose(T.sum(axis=1), 1.0)
    assert flip_rate(clean, noisy) == pytest.approx(2 / 6)
    with pytest.raises(ValueError):
        realised_matrix(clean, noisy, 1)  # labels out of range
