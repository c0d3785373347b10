"""``runner.py bench --streaming``: images/s of the data paths of a real-world dataset.

    python runner.py bench --streaming --dataset clothing1m --data-dir DIR --images 4096 \
        --batch-size 64 --loader-workers 4 --device cuda

One epoch over the first ``images`` training images of the dataset's listing, in one random
order, each batch delivered as the training loop receives it (the protocol's random crop + flip
+ normalisation applied on the device, then a device synchronisation):

- ``memory``: the images decoded into one uint8 tensor beforehand (the in-memory path; the
  decoding time is reported apart as ``decode_all_s``), batches sliced out of it;
- ``files``: StreamedImages over the JPEG files, each batch decoded by ``workers`` threads;
- ``files_nvjpeg``: the same with the GPU decoder (CUDA devices only);
- ``pack``: StreamedImages over a pack written for the benchmark (its writing time is reported
  as ``pack_s``), one memory-mapped gather per batch;
- ``per_sample_loader``: torchvision's per-sample pipeline, as the official code loads these
  datasets: a Dataset opening one file at a time, Resize + RandomCrop + flip + ToTensor +
  Normalize, batched by a DataLoader with ``workers`` processes, then moved to the device.

The page cache is warm for every path after the first (the files are read once before timing).
Nothing here is a test: the figures go to docs/BENCHMARKS.md with the command.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmark.data.augment import Augmenter
from benchmark.data.files.listing import Listing, Split
from benchmark.data.files.materialise import decode_all
from benchmark.data.files.pack import write_pack
from benchmark.data.files.streaming import PackedReader, StreamedImages
from benchmark.data.real_world import LISTINGS, listing_for
from benchmark.errors import UsageError
from benchmark.training import resolve_device


def _epoch(get: Callable[[np.ndarray], torch.Tensor], order: np.ndarray, batch: int, aug: Augmenter,
           dev: torch.device) -> float:
    """Seconds to deliver every batch of ``order`` augmented on ``dev``."""
    gen = torch.Generator(device=dev).manual_seed(0)
    t0 = time.perf_counter()
    for s in range(0, len(order), batch):
        x = get(order[s:s + batch])
        aug.augment(x.to(dev, non_blocking=True), gen)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - t0


def _sub_listing(listing: Listing, n: int) -> Listing:
    tr = Split(listing.train.paths[:n], listing.train.labels[:n])
    te = Split(listing.test.paths[:1], listing.test.labels[:1])
    return dataclasses.replace(listing, train=tr, test=te, extra={}, verified=None)


def bench_streaming(dataset: str, data_dir: str | None, images: int, batch: int, workers: int,
                    device: str = "auto", tmp: str | None = None) -> dict[str, Any]:
    """``runner.py bench --streaming``: the options checked, then :func:`time_streaming` on the
    resolved device."""
    if dataset not in LISTINGS:
        raise UsageError(f"bench --streaming reads a real-world dataset. Valid: {', '.join(sorted(LISTINGS))}")
    if images < batch or workers < 1:
        raise UsageError("bench --streaming needs --images >= --batch-size and --loader-workers >= 1")
    return time_streaming(dataset, data_dir, images, batch, workers, str(resolve_device(device)), tmp)


def time_streaming(dataset: str, data_dir: str | None, images: int, batch: int, workers: int,
                   device: str = "cpu", tmp: str | None = None) -> dict[str, Any]:
    """images/s of each data path (see the module docstring)."""
    # imported here: torchvision's transforms and Pillow serve only the per-sample baseline
    import torchvision.transforms as T
    from PIL import Image

    dev = torch.device(device)
    listing = _sub_listing(listing_for(dataset, data_dir), images)
    paths = [str(listing.root / p) for p in listing.train.paths]
    n = len(paths)
    order = np.random.default_rng(0).permutation(n)
    aug = Augmenter(listing.mean, listing.std, crop_size=listing.crop_size, hflip=True)
    for p in paths:  # warm the page cache: every path then reads from memory, not the disk
        Path(p).read_bytes()
    out: dict[str, Any] = {"dataset": dataset, "images": n, "batch_size": batch, "workers": workers,
                           "device": str(dev), "size": listing.size, "crop_size": listing.crop_size}
    reader = listing.reader(listing.train, workers)
    t0 = time.perf_counter()
    held = decode_all(reader)
    out["decode_all_s"] = time.perf_counter() - t0
    if dev.type == "cuda":
        held = held.to(dev)
    idx_dev = (lambda pos: torch.as_tensor(pos, device=dev))
    rows = {"memory": _epoch(lambda pos: held[idx_dev(pos)], order, batch, aug, dev)}
    files = StreamedImages(reader, (3, listing.size, listing.size)).to(dev)
    rows["files"] = _epoch(lambda pos: files[pos], order, batch, aug, dev)
    if dev.type == "cuda":
        rows["files_nvjpeg"] = _epoch(lambda pos: reader.read_gpu(pos, dev), order, batch, aug, dev)
    with tempfile.TemporaryDirectory(prefix="nlb-bench-pack-", dir=tmp) as d:
        t0 = time.perf_counter()
        write_pack(listing, Path(d) / "pack")
        out["pack_s"] = time.perf_counter() - t0
        packed = StreamedImages(PackedReader(Path(d) / "pack" / "train.npy"),
                                (3, listing.size, listing.size)).to(dev)
        rows["pack"] = _epoch(lambda pos: packed[pos], order, batch, aug, dev)
    transform = T.Compose([T.Resize(listing.size), T.RandomCrop(listing.crop_size), T.RandomHorizontalFlip(),
                           T.ToTensor(), T.Normalize(listing.mean, listing.std)])

    class PerSample(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            with Image.open(paths[i]) as im:
                return transform(im.convert("RGB"))

    loader = torch.utils.data.DataLoader(PerSample(), batch_size=batch, sampler=order.tolist(),
                                         num_workers=workers, pin_memory=dev.type == "cuda")
    t0 = time.perf_counter()
    for xb in loader:
        xb.to(dev, non_blocking=True)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    rows["per_sample_loader"] = time.perf_counter() - t0
    out["paths"] = {k: {"s": v, "images_per_s": n / v} for k, v in rows.items()}
    return out
