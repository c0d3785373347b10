"""Speed benchmark: seconds per epoch of each method, and of the data pipeline against the
per-sample DataLoader pipeline that the official Co-teaching / DivideMix code uses.

    python runner.py bench --dataset fashion_mnist --model cnn --methods ce,gce --subset 10000
    python runner.py bench --dataset synthetic_cifar10 --model preact_resnet18 --subset 0 --val-frac 0 \
        --methods ce,coteaching,dividemix --epochs 3 --device cuda --precision bf16 --channels-last

Figures go to stdout (one JSON object with --json); record them, with the command, in
docs/BENCHMARKS.md. Nothing here is a test: timings depend on the machine.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from benchmark.config import build_config
from benchmark.store import Store


def time_methods(methods: list[str], base: dict[str, Any], epochs: int, runs_dir: str) -> list[dict[str, Any]]:
    """Train each method for ``epochs`` epochs (fresh store) and report the median epoch time."""
    from benchmark.train import run
    out = []
    for m in methods:
        cfg = build_config({**base, "method": m, "epochs": epochs})
        res = run(cfg, f"{runs_dir}/{m}", wandb="disabled")
        rows = Store(f"{runs_dir}/{m}").read_metrics(res["run_id"])
        times = [r["time/epoch_s"] for r in rows]
        out.append({"method": m, "epoch_s_median": float(np.median(times)), "epoch_s_first": times[0],
                    "samples_per_s": res["time/samples_per_s"], "peak_mb": res["mem/peak_mb"],
                    "subset": cfg.subset, "device": cfg.device, "precision": cfg.precision,
                    "channels_last": cfg.channels_last})
    return out


def time_loaders(dataset: str, n: int, batch_size: int, crop_pad: int, hflip: bool,
                 workers: int) -> dict[str, float]:
    """Seconds to produce one epoch of augmented, normalised batches of ``n`` images.

    ours: uint8 tensor held in memory, index slices of a permutation, batched crop/flip.
    per-sample: a torch Dataset returning one PIL image at a time through torchvision transforms,
    batched by a DataLoader with ``workers`` processes (the official code's pipeline).
    """
    import torchvision.transforms as T
    from PIL import Image

    from benchmark.augment import Augmenter
    from benchmark.data import load_dataset
    data = load_dataset(dataset)
    x, y = data.train_x[:n], torch.as_tensor(data.train_y[:n])
    aug = Augmenter(data.mean, data.std, crop_pad=crop_pad, hflip=hflip)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen)
    for s in range(0, n, batch_size):
        idx = perm[s:s + batch_size]
        xb, yb = aug.augment(x[idx], gen), y[idx]
    ours = time.perf_counter() - t0

    c, h, _ = data.image_shape
    tf = [T.RandomCrop(h, padding=crop_pad)] if crop_pad else []
    tf += [T.RandomHorizontalFlip()] if hflip else []
    tf += [T.ToTensor(), T.Normalize(data.mean, data.std)]
    transform = T.Compose(tf)
    arr = x.permute(0, 2, 3, 1).numpy()

    class PerSample(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            img = Image.fromarray(arr[i, :, :, 0] if c == 1 else arr[i])
            return transform(img), int(y[i])

    loader = torch.utils.data.DataLoader(PerSample(), batch_size=batch_size, shuffle=True,
                                         num_workers=workers)
    t0 = time.perf_counter()
    for xb, yb in loader:
        pass
    per_sample = time.perf_counter() - t0
    return {"ours_s": ours, "per_sample_loader_s": per_sample, "speedup": per_sample / ours,
            "images": n, "loader_workers": workers}
