"""A dataset as a list of image files with labels: the official lists, read and checked.

The real-world datasets (:mod:`benchmark.data.real_world`) first read their official file lists
into a :class:`Listing` (paths, labels, splits, the protocol's image size), checking every list
and label file; :func:`benchmark.data.files.materialise.materialise` then turns it into images to
train on (a pack, memory, or a stream), and ``runner.py pack`` writes it into a pack.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.data.files.reading import Confinement, listed_problem
from benchmark.data.files.streaming import FileReader
from benchmark.errors import DataError

__all__ = ["Split", "Listing", "check_files", "decode_into", "DECODE_CHUNK"]

DECODE_CHUNK = 2048
"""Images decoded per call when a listing is decoded into memory (bounds the temporary array)."""


@dataclass
class Split:
    """One split: (N,) image paths relative to the listing's root and (N,) int64 labels."""

    paths: list[str]
    labels: np.ndarray
    listed_in: str = ""
    """The list file that names these paths, for messages ('' for a folder scan)."""
    lines: np.ndarray | None = None
    """(N,) the line of each path in ``listed_in``, for messages."""
    inside: tuple[Path, ...] = ()
    """Folders every image's real path must lie in (the dataset folder, the layout's image
    folder: see benchmark/data/files/reading.py); empty: not confined (a folder scan, whose
    files are the folder's own)."""

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.paths) != len(self.labels):
            raise DataError(f"{len(self.paths)} paths but {len(self.labels)} labels")
        if self.lines is not None:
            self.lines = np.asarray(self.lines, dtype=np.int64)

    def where(self, i: int) -> str:
        """Where path i was listed: 'FILE, line N', or '' when not from a list."""
        if not self.listed_in or self.lines is None:
            return ""
        return f"{self.listed_in}, line {int(self.lines[i])}"


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


def check_files(listing: Listing, limit: int = 3) -> None:
    """Every listed image is a regular file inside its dataset folder (symlinks resolved, see
    benchmark/data/files/reading.py); a DataError otherwise, naming how many are missing and a
    few of them, or the first few that are something else or lie elsewhere, each with its list
    file and line. Nothing is opened: this runs before anything is decoded or packed."""
    for key, sp in listing.splits().items():
        confined = Confinement(sp.inside) if sp.inside else None
        gone, bad = [], []
        for i, p in enumerate(sp.paths):
            why = listed_problem(str(listing.root / p), confined)
            if why is None:
                continue
            where = sp.where(i)
            if why in ("missing", "a broken link"):
                gone.append(f"{p} ({where})" if where else p)
            else:
                bad.append(f"{where + ': ' if where else ''}{p} is {why}")
        if bad:
            raise DataError(f"{listing.name}: {len(bad)} of the {len(sp.paths)} {key} images listed "
                            f"refused: {'; '.join(bad[:limit])} (only regular files inside the "
                            f"dataset folder are read)")
        if gone:
            raise DataError(f"{listing.name}: {len(gone)} of the {len(sp.paths)} {key} images listed are "
                            f"missing under {listing.root}, e.g. {', '.join(gone[:limit])}")


def decode_into(reader: FileReader, out: np.ndarray, progress=None) -> None:
    """Decode every image of ``reader`` into ``out`` ((N, C, S, S) uint8: an array, a tensor's
    numpy view or a memory map), DECODE_CHUNK at a time; progress(done, total) after each chunk."""
    for s in range(0, len(reader), DECODE_CHUNK):
        pos = np.arange(s, min(len(reader), s + DECODE_CHUNK))
        out[s:s + len(pos)] = reader.read(pos).numpy()
        if progress:
            progress(s + len(pos), len(reader))
