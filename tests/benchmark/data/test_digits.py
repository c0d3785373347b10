"""benchmark/data/digits.py: scikit-learn's digits, split 80/20 by a fixed seed."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from benchmark.data import clear_cache, load_dataset
from benchmark.data.digits import digits_split
from benchmark.data.registry import channel_stats

pytestmark = pytest.mark.usefixtures("data_env")


# ----- digits ---------------------------------------------------------------------------------

def test_digits_shapes_values_and_fixed_split():
    from sklearn.datasets import load_digits
    d = load_dataset("digits")
    assert d.train_x.shape == (1438, 1, 8, 8) and d.test_x.shape == (359, 1, 8, 8)
    assert d.train_x.dtype == torch.uint8 and d.train_x.is_contiguous()
    assert d.train_y.dtype == np.int64 and d.num_classes == 10 and d.image_shape == (1, 8, 8)
    assert int(d.train_x.max()) == 255 and int(d.train_x.min()) == 0
    # the pixels are sklearn's 0..16 values scaled to 0..255
    bunch = load_digits()
    tr, te = digits_split(bunch.target)
    assert np.array_equal(d.train_y, bunch.target[tr]) and np.array_equal(d.test_y, bunch.target[te])
    expect = np.rint(bunch.images[te[0]] * 255 / 16).astype(np.uint8)
    assert np.array_equal(d.test_x[0, 0].numpy(), expect)
    # stratified 80/20, disjoint, covering everything
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 1797
    frac = np.bincount(d.test_y) / np.bincount(bunch.target)
    assert np.all(np.abs(frac - 0.2) < 0.01)
    # mean/std are the training-set statistics
    mean, std = channel_stats(d.train_x.numpy())
    assert d.mean == pytest.approx(mean) and d.std == pytest.approx(std)


def test_digits_split_is_deterministic_and_not_a_run_stream():
    a = load_dataset("digits")
    clear_cache()
    b = load_dataset("digits")
    assert a is not b
    assert torch.equal(a.train_x, b.train_x) and np.array_equal(a.test_y, b.test_y)
    y = np.repeat(np.arange(10), 50)
    np.random.seed(123)  # the global RNG must not matter
    s1 = digits_split(y)
    np.random.seed(456)
    s2 = digits_split(y)
    assert all(np.array_equal(u, v) for u, v in zip(s1, s2))
