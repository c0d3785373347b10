"""Tiny CIFAR-10 / CIFAR-100 copies in torchvision's on-disk pickle format, for tests.

The real files are Python pickles of dicts: ``data`` is a (n, 3072) uint8 array whose rows hold
the 1024 red, then 1024 green, then 1024 blue values of one 32x32 image, each plane row-major;
labels are lists of ints. Here images are generated as (n, 3, 32, 32) uint8 and written as
``x.reshape(n, 3072)``, so ``x[i, c, h, w]`` is byte ``c * 1024 + h * 32 + w`` of row ``i``.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck"]


@dataclass
class FakeCifar:
    """What was written: the dataset root (pass as data_dir) and the arrays, CHW."""

    root: Path
    folder: Path
    train_x: np.ndarray  # (n, 3, 32, 32) uint8
    train_y: np.ndarray  # (n,) int64 (fine labels for CIFAR-100)
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    train_coarse: np.ndarray | None = None


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def write_fake_cifar10(root: Path, n_train: int = 100, n_test: int = 20, seed: int = 0) -> FakeCifar:
    """Write ``root/cifar-10-batches-py`` with 5 training batches, a test batch and batches.meta."""
    if n_train % 5:
        raise ValueError("n_train must be a multiple of 5 (five training batches)")
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_x, test_x = _images(rng, n_train), _images(rng, n_test)
    train_y = rng.integers(0, 10, n_train).astype(np.int64)
    test_y = rng.integers(0, 10, n_test).astype(np.int64)
    per = n_train // 5
    for b in range(5):
        sl = slice(b * per, (b + 1) * per)
        _dump(folder / f"data_batch_{b + 1}", {
            "batch_label": f"training batch {b + 1} of 5",
            "labels": [int(v) for v in train_y[sl]],
            "data": train_x[sl].reshape(-1, 3072),
            "filenames": [f"img_{i}.png" for i in range(sl.start, sl.stop)]})
    _dump(folder / "test_batch", {
        "batch_label": "testing batch 1 of 1", "labels": [int(v) for v in test_y],
        "data": test_x.reshape(-1, 3072), "filenames": [f"test_{i}.png" for i in range(n_test)]})
    _dump(folder / "batches.meta", {"label_names": list(CIFAR10_CLASSES),
                                    "num_cases_per_batch": per, "num_vis": 3072})
    return FakeCifar(Path(root), folder, train_x, train_y, test_x, test_y, list(CIFAR10_CLASSES))


def write_fake_cifar100(root: Path, n_train: int = 100, n_test: int = 20, seed: int = 1) -> FakeCifar:
    """Write ``root/cifar-100-python`` with train, test and meta (fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    fine_names = [f"fine_{i:02d}" for i in range(100)]
    coarse_names = [f"coarse_{i:02d}" for i in range(20)]
    train_x, test_x = _images(rng, n_train), _images(rng, n_test)
    train_y = rng.integers(0, 100, n_train).astype(np.int64)
    test_y = rng.integers(0, 100, n_test).astype(np.int64)
    train_c, test_c = train_y // 5, test_y // 5  # any consistent map will do for a fixture
    for name, x, y, c in (("train", train_x, train_y, train_c), ("test", test_x, test_y, test_c)):
        _dump(folder / name, {
            "filenames": [f"{name}_{i}.png" for i in range(len(y))],
            "batch_label": f"{name}ing batch 1 of 1",
            "fine_labels": [int(v) for v in y], "coarse_labels": [int(v) for v in c],
            "data": x.reshape(-1, 3072)})
    _dump(folder / "meta", {"fine_label_names": fine_names, "coarse_label_names": coarse_names})
    return FakeCifar(Path(root), folder, train_x, train_y, test_x, test_y, fine_names, train_c)
