"""scikit-learn's bundled 8x8 digits (1797 images): a tiny dataset for tests and smoke runs;
nothing to find or download."""
from __future__ import annotations

import numpy as np

from benchmark.data.registry import DatasetArrays, channel_stats, contiguous_uint8, register_dataset

__all__ = ["DIGITS_SPLIT_SEED", "DIGITS_TEST_FRAC", "digits_split"]

DIGITS_SPLIT_SEED = 20240601
DIGITS_TEST_FRAC = 0.2


def digits_split(y: np.ndarray, test_frac: float = DIGITS_TEST_FRAC,
                 seed: int = DIGITS_SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified split: per class, round(test_frac * n_class) samples go to the test set,
    chosen by a constant-seeded numpy Generator (not a run stream). Indices come back sorted."""
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        test.append(rng.permutation(idx)[: int(round(test_frac * len(idx)))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


@register_dataset("digits")
def _load_digits(*, data_dir: str | None = None, download: bool = True,
                 cifar_n_path: str | None = None) -> DatasetArrays:
    """scikit-learn's 1797 8x8 digits, 0..16 scaled to 0..255, split 80/20 by :func:`digits_split`."""
    # imported here: scikit-learn's datasets module is only needed by this tiny test set
    import sklearn
    from sklearn.datasets import load_digits
    bunch = load_digits()
    x = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    tr, te = digits_split(y)
    mean, std = channel_stats(x[tr])
    return DatasetArrays(
        name="digits", train_x=contiguous_uint8(x[tr]), train_y=y[tr].copy(),
        test_x=contiguous_uint8(x[te]), test_y=y[te].copy(),
        classes=[str(i) for i in range(10)], mean=mean, std=std, crop_pad=0, hflip=False,
        source=f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})")
