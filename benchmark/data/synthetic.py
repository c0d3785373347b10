"""``synthetic_cifar10``: random CIFAR-shaped images, for timing an epoch where CIFAR cannot be
downloaded (its accuracies mean nothing)."""
from __future__ import annotations

import numpy as np
import torch

from benchmark.data.registry import DatasetArrays, register_dataset

__all__ = ["SYNTHETIC_CIFAR_SIZES"]

SYNTHETIC_CIFAR_SIZES = (50_000, 10_000)
"""Training and test images of ``synthetic_cifar10``: CIFAR-10's counts."""


@register_dataset("synthetic_cifar10")
def _load_synthetic_cifar10(*, data_dir: str | None = None, download: bool = True,
                            cifar_n_path: str | None = None) -> DatasetArrays:
    """Random uint8 3x32x32 images with uniform random labels over 10 classes (fixed seed 0).

    Same shapes, dtype, count and augmentation as CIFAR-10, so it times an epoch on machines that
    cannot download CIFAR (``runner.py bench --dataset synthetic_cifar10``). There is nothing to
    learn: its accuracies are chance and mean nothing.
    """
    gen = torch.Generator().manual_seed(0)
    n_train, n_test = SYNTHETIC_CIFAR_SIZES
    x = torch.randint(0, 256, (n_train + n_test, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (n_train + n_test,), generator=gen).numpy()  # int64
    # exact statistics of the discrete uniform on 0..255, in [0, 1] units
    mean, std = 127.5 / 255.0, float(np.sqrt((256 ** 2 - 1) / 12.0)) / 255.0
    return DatasetArrays(
        name="synthetic_cifar10", train_x=x[:n_train].contiguous(), train_y=y[:n_train].copy(),
        test_x=x[n_train:].contiguous(), test_y=y[n_train:].copy(),
        classes=[f"random{i}" for i in range(10)], mean=(mean,) * 3, std=(std,) * 3,
        crop_pad=4, hflip=True, source="random (torch.Generator seed 0); for timing only")
