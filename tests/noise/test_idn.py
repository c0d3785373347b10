"""Instance-dependent noise (Xia et al. 2020): measured rate, the one-hot target, determinism."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import truncnorm

import noise.idn as idn_mod
from noise import idn_labels

N, D, C = 4000, 64, 10


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    # raw-pixel-like features, as the official code feeds them
    return rng.integers(0, 256, (N, D), dtype=np.uint8), rng.integers(0, C, N)


@pytest.mark.parametrize("r", [0.2, 0.4])
def test_mean_measured_rate_is_r(r):
    x, y = _data()
    noisy = idn_labels(x, y, C, r, np.random.default_rng(1))
    assert noisy.dtype == np.int64 and noisy.shape == (N,)
    assert ((noisy >= 0) & (noisy < C)).all()
    assert abs((noisy != y).mean() - r) < 0.03


def test_flipped_samples_go_to_their_argmax_class():
    # with 0..255 features the softmax is one-hot: a flip goes to argmax_{j != y} x @ W[y]
    x, y = _data(2)
    seed = 3
    noisy = idn_labels(x, y, C, 0.4, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)  # replay the documented draw order: q, then W
    truncnorm(-4.0, 6.0, loc=0.4, scale=0.1).rvs(size=N, random_state=rng)
    W = rng.standard_normal((C, D, C))
    a = np.einsum("nd,ndc->nc", x.astype(np.float64), W[y])
    a[np.arange(N), y] = -np.inf
    flipped = noisy != y
    assert flipped.sum() > 1000
    np.testing.assert_array_equal(noisy[flipped], a.argmax(axis=1)[flipped])


def test_deterministic_and_chunk_independent(monkeypatch):
    x, y = _data(4)
    a = idn_labels(x, y, C, 0.3, np.random.default_rng(5))
    b = idn_labels(x.astype(np.float32), y, C, 0.3, np.random.default_rng(5))
    monkeypatch.setattr(idn_mod, "_CHUNK_BYTES", 8 * D * 7)  # 7 rows per matmul
    c = idn_labels(x, y, C, 0.3, np.random.default_rng(5))
    d = idn_labels(x, y, C, 0.3, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert (a != d).mean() > 0.1


def test_rate_zero_is_clean_and_bad_shapes_refused():
    x, y = _data()
    np.testing.assert_array_equal(idn_labels(x, y, C, 0.0, np.random.default_rng(0)), y)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        idn_labels(x[:-1], y, C, 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        idn_labels(x.reshape(N, 8, 8), y, C, 0.2, np.random.default_rng(0))
