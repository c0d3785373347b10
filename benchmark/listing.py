"""A dataset as a list of image files with labels, and how it becomes images to train on.

The real-world datasets (:mod:`benchmark.real_world`) first read their official file lists into
a :class:`Listing` (paths, labels, splits, the protocol's image size), checking every list and
label file; :func:`materialise` then turns it into a :class:`benchmark.data.DatasetArrays`:

1. a verified pack of exactly this listing (``runner.py pack``, :mod:`benchmark.pack`) when one is
   found: its memory-mapped array, streamed (or read into memory when it fits the budget);
2. otherwise the image files: decoded into memory when the decoded images fit the memory budget
   (:func:`benchmark.streaming.fits_in_memory`), else streamed from the files a batch at a time.

All three give the same pixels (one decoding function), so a run's numbers do not depend on
which path it took (GPU decoding, opt-in, is recorded in the run's numerics).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmark.data import DataError, DatasetArrays
from benchmark.streaming import FileReader, StreamedImages, fits_in_memory

__all__ = ["Split", "Listing", "materialise", "missing_files", "decode_all", "decode_into", "DECODE_CHUNK"]

DECODE_CHUNK = 2048
"""Images decoded per call when a listing is decoded into memory (bounds the temporary array)."""


@dataclass
class Split:
    """One split: (N,) image paths relative to the listing's root and (N,) int64 labels."""

    paths: list[str]
    labels: np.ndarray

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.paths) != len(self.labels):
            raise DataError(f"{len(self.paths)} paths but {len(self.labels)} labels")


@dataclass
class Listing:
    """A dataset's files as its official lists give them, and its protocol's image geometry."""

    name: str
    root: Path
    """Folder the split paths are relative to."""
    classes: list[str]
    train: Split
    test: Split
    size: int
    """Side the images are stored at: short side resized to it, centre square kept."""
    crop_size: int
    """Side of the network's input (random crop in training, centre crop otherwise); 0: size."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    extra: dict[str, Split] = field(default_factory=dict)
    """Further test sets by name (WebVision's ILSVRC2012 val)."""
    verified: np.ndarray | None = None
    """(N_train,) int8 verification of the given training labels: 1 right, 0 wrong, -1 not
    verified (all -1: real noisy labels without any verification, WebVision)."""
    source: str = ""

    def reader(self, split: Split, workers: int | None = None) -> FileReader:
        """The decoder of one split's files at this listing's geometry."""
        return FileReader([str(self.root / p) for p in split.paths], self.size, workers=workers,
                          crop=self.crop_size)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "test": self.test, **{f"extra_{k}": v for k, v in self.extra.items()}}

    def digest(self) -> str:
        """SHA-256 of what a pack must match: name, geometry, every split's paths and labels."""
        h = hashlib.sha256(f"{self.name}\n{self.size}\n{self.crop_size}\n".encode())
        for key, sp in self.splits().items():
            h.update(f"[{key}] {len(sp.paths)}\n".encode())
            h.update("\n".join(sp.paths).encode())
            h.update(sp.labels.astype("<i8").tobytes())
        return h.hexdigest()


def missing_files(root: Path, paths: list[str], limit: int = 3) -> tuple[int, list[str]]:
    """(how many of ``paths`` under ``root`` are not files, up to ``limit`` of them)."""
    gone = [p for p in paths if not (root / p).is_file()]
    return len(gone), gone[:limit]


def check_files(listing: Listing) -> None:
    """Every listed image exists; DataError naming how many are missing and a few of them."""
    for key, sp in listing.splits().items():
        n, some = missing_files(listing.root, sp.paths)
        if n:
            raise DataError(f"{listing.name}: {n} of the {len(sp.paths)} {key} images listed are missing "
                            f"under {listing.root}, e.g. {', '.join(some)}")


def decode_into(reader: FileReader, out: np.ndarray, progress=None) -> None:
    """Decode every image of ``reader`` into ``out`` ((N, C, S, S) uint8: an array, a tensor's
    numpy view or a memory map), DECODE_CHUNK at a time; progress(done, total) after each chunk."""
    for s in range(0, len(reader), DECODE_CHUNK):
        pos = np.arange(s, min(len(reader), s + DECODE_CHUNK))
        out[s:s + len(pos)] = reader.read(pos).numpy()
        if progress:
            progress(s + len(pos), len(reader))


def decode_all(reader: FileReader) -> torch.Tensor:
    """Every image of ``reader`` as one (N, C, S, S) uint8 CPU tensor."""
    out = torch.empty((len(reader), reader.channels, reader.size, reader.size), dtype=torch.uint8)
    decode_into(reader, out.numpy())
    return out


def materialise(listing: Listing, data_dir: str | None = None) -> DatasetArrays:
    """The listing's images: from a pack, in memory or streamed (see the module docstring)."""
    from benchmark.pack import find_pack
    total = sum(len(sp.paths) for sp in listing.splits().values())
    in_memory = fits_in_memory(total, 3, listing.size)
    pack = find_pack(listing, data_dir)
    images: dict[str, torch.Tensor | StreamedImages] = {}
    if pack is not None:
        for key in listing.splits():
            images[key] = pack.images(key, in_memory)
        source = f"{listing.source} (pack {pack.root})"
    else:
        check_files(listing)
        for key, sp in listing.splits().items():
            reader = listing.reader(sp)
            images[key] = (decode_all(reader) if in_memory
                           else StreamedImages(reader, (3, listing.size, listing.size)))
        source = listing.source + ("" if in_memory else " (streamed from the image files)")
    extra = {k: (images[f"extra_{k}"], sp.labels) for k, sp in listing.extra.items()}
    return DatasetArrays(name=listing.name, train_x=images["train"], train_y=listing.train.labels.copy(),
                         test_x=images["test"], test_y=listing.test.labels.copy(),
                         classes=list(listing.classes), mean=listing.mean, std=listing.std,
                         crop_pad=0, hflip=True, source=source, crop_size=listing.crop_size,
                         verified=listing.verified, extra_tests=extra or None)
