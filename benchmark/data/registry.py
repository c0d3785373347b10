"""The dataset registry and the record every loader returns; it imports no loader.

Every loader returns a :class:`DatasetArrays`: the full training and test sets as uint8 tensors of
shape (N, C, H, W), the clean labels as int64 numpy arrays, the class names, the per-channel
normalisation constants and the dataset's standard augmentation. The training loop moves the
tensors to the device once and slices batches out of them (see DESIGN.md, "Data").

A loader module registers itself with :func:`register_dataset` (a name) or :func:`register_prefix`
(``folder:PATH``-style names); benchmark/data/__init__.py imports every loader module, so the
registry is full whenever the package is imported and this module never imports a loader.

Where a loader looks for its files: an explicit ``data_dir`` alone (see :func:`search_roots`),
else env ``NLB_DATA_DIR``, the loader's system folders and the cache dir (env ``NLB_CACHE_DIR``,
default ``~/.cache/noisy-label-bench``); each loader's module docstring gives its layout.

Loaded datasets are memoised per process: :func:`load_dataset` returns the *same object* for the
same arguments (and the same environment), so callers must treat it as read-only: never write
into its tensors or arrays, never reassign its fields. Copy (``x.clone()``, ``y.copy()``) first.
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from benchmark import settings
from benchmark.errors import DataError

__all__ = ["DataError", "DatasetArrays", "register_dataset", "register_prefix", "list_datasets",
           "load_dataset", "clear_cache", "cache_dir", "search_roots", "file_digest", "channel_stats",
           "contiguous_uint8", "partial_copy", "why_not", "torchvision_download", "prefixes", "prefix_forms"]


@dataclass
class DatasetArrays:
    """One dataset in memory. Shared between callers (memoised): treat as read-only."""

    name: str
    train_x: torch.Tensor
    """(N, C, H, W) uint8, CPU, contiguous; or a StreamedImages read a batch at a time
    (benchmark/streaming.py) for a dataset too large for memory."""
    train_y: np.ndarray
    """(N,) int64 clean labels, in the dataset's canonical training order; for a dataset of real
    noisy labels (``verified`` set) the labels as given."""
    test_x: torch.Tensor
    """(M, C, H, W) uint8, CPU, contiguous (or StreamedImages, as train_x)."""
    test_y: np.ndarray
    """(M,) int64 labels."""
    classes: list[str]
    mean: tuple[float, ...]
    """Per-channel mean of the training images in [0, 1] units."""
    std: tuple[float, ...]
    """Per-channel standard deviation of the training images in [0, 1] units."""
    crop_pad: int
    """Padding of the standard random-crop augmentation (0: no crop)."""
    hflip: bool
    """Whether the standard augmentation flips horizontally."""
    human_labels: dict[str, np.ndarray] | None = None
    """CIFAR-N label sets by name (see cifar_n.HUMAN_SETS), (N,) int64 in training order; or None."""
    coarse_labels: np.ndarray | None = None
    """CIFAR-100 superclass of each training image, (N,) int64; None for other datasets."""
    source: str = ""
    """Where the data was read from (recorded in meta.json)."""
    crop_size: int = 0
    """Side of the network's input when it is smaller than the stored images (random crop in
    training, centre crop otherwise: the ImageNet-style protocols); 0: the stored size."""
    verified: np.ndarray | None = None
    """(N,) int8 human verification of the given training labels, for datasets of real noisy
    labels (Food-101N, Clothing1M; all -1 for WebVision and Animal-10N, which have none): 1
    correct, 0 wrong, -1 not verified. The runner's selection diagnostics use the verified samples
    only; methods never see it. Such a dataset takes no synthetic noise (noise kind none)."""
    extra_tests: dict[str, tuple] | None = None
    """Further test sets by name, each (x (M', C, H, W) uint8 or StreamedImages, y (M',) int64):
    WebVision's ILSVRC2012 validation images. Scored whenever the test set is."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the stored images."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of what the network is fed (after crop_size)."""
        c, h, w = self.image_shape
        return (c, self.crop_size, self.crop_size) if self.crop_size else (c, h, w)

    @property
    def streamed(self) -> bool:
        """Whether the training images are read a batch at a time."""
        return not torch.is_tensor(self.train_x)


# ----- registry and memoisation ---------------------------------------------------------------

Loader = Callable[..., DatasetArrays]
PrefixLoader = Callable[[str], DatasetArrays]
_REGISTRY: dict[str, Loader] = {}
_PREFIXES: dict[str, tuple[PrefixLoader, str]] = {}
_CACHE: dict[tuple, DatasetArrays] = {}
_LOCK = threading.Lock()


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Register ``fn(*, data_dir, download, cifar_n_path) -> DatasetArrays`` under ``name``."""

    def deco(fn: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"dataset '{name}' is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def register_prefix(prefix: str, placeholder: str) -> Callable[[PrefixLoader], PrefixLoader]:
    """Register ``fn(rest) -> DatasetArrays`` for the dataset names ``<prefix><rest>``
    (``folder:PATH``); ``placeholder`` names the rest in messages (PATH, FILE)."""

    def deco(fn: PrefixLoader) -> PrefixLoader:
        if prefix in _PREFIXES:
            raise ValueError(f"dataset prefix '{prefix}' is already registered")
        _PREFIXES[prefix] = (fn, placeholder)
        return fn

    return deco


def list_datasets() -> list[str]:
    """Registered names; the prefixed forms (:func:`prefix_forms`) are extra."""
    return sorted(_REGISTRY)


def prefixes() -> tuple[str, ...]:
    """The registered name prefixes: folder:, list:."""
    return tuple(_PREFIXES)


def prefix_forms() -> list[str]:
    """The prefixed dataset forms, as messages show them: folder:PATH, list:FILE."""
    return [f"{p}{placeholder}" for p, (_fn, placeholder) in _PREFIXES.items()]


def load_dataset(name: str, *, data_dir: str | None = None, download: bool = True,
                 cifar_n_path: str | None = None) -> DatasetArrays:
    """Load dataset ``name`` (memoised per process; the result is shared: do not mutate it).

    Raises ValueError for an unknown name and DataError when the data cannot be found or is corrupt.
    """
    prefix = next((p for p in _PREFIXES if name.startswith(p)), None)
    if prefix is None and name not in _REGISTRY:
        raise ValueError(f"unknown dataset '{name}'. Valid: {', '.join(list_datasets() + prefix_forms())}")
    key = (name, _norm(data_dir), bool(download), _norm(cifar_n_path), settings.data_memo_key())
    with _LOCK:
        if key not in _CACHE:
            if prefix is not None:
                _CACHE[key] = _PREFIXES[prefix][0](name[len(prefix):])
            else:
                _CACHE[key] = _REGISTRY[name](data_dir=data_dir, download=download,
                                              cifar_n_path=cifar_n_path)
        return _CACHE[key]


def clear_cache() -> None:
    """Forget memoised datasets (for tests, or to free memory)."""
    with _LOCK:
        _CACHE.clear()


def _norm(p: str | os.PathLike | None) -> str | None:
    return None if p is None else str(Path(p).expanduser().resolve())


cache_dir = settings.cache_dir


def search_roots(data_dir: str | None, extra: tuple[Path, ...] = ()) -> list[Path]:
    """An explicit data_dir alone (pointing at a folder is a promise that the data is there:
    never fall back to another copy); else env NLB_DATA_DIR, ``extra``, the cache dir, in that
    order, without repeats."""
    if data_dir:
        return [Path(data_dir).expanduser()]
    roots: list[Path] = []
    for p in (settings.data_dir(), *extra, cache_dir()):
        if p:
            p = Path(p).expanduser()
            if p not in roots:
                roots.append(p)
    return roots


def partial_copy(dirs: list[Path], names: list[str], has) -> str:
    """'' or a sentence naming a folder that holds some but not all of ``names`` and what it lacks.

    has(d, name) -> bool says whether folder d holds file ``name``."""
    for d in dirs:
        present = [n for n in names if has(d, n)]
        if present and len(present) < len(names):
            missing = [n for n in names if n not in present]
            return f"{d} holds only part of the dataset: missing {', '.join(missing)}. "
    return ""


def why_not(data_dir: str | None, download: bool) -> str:
    """Why no download was tried, for a 'not found' message."""
    if data_dir:
        return " (a folder given explicitly must hold the data: no other copy and no download replaces it)"
    return "" if download else " (download disabled)"


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest of a file's bytes (read in 16 MiB chunks): sha256, or md5 for torchvision's lists."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def contiguous_uint8(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint8))


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (N, C, H, W) uint8 images, in [0, 1] units."""
    xf = x.astype(np.float64) / 255.0
    return (tuple(float(v) for v in xf.mean(axis=(0, 2, 3))),
            tuple(float(v) for v in xf.std(axis=(0, 2, 3))))


def torchvision_download(cls_name: str, splits: tuple[bool, ...], not_found: str, how_to_get: str) -> Path:
    """Download torchvision's ``cls_name`` (its train / test ``splits``) into the cache dir and
    return that folder; a failure (network, disk, checksum) is a DataError that says
    ``not_found``, where the download went and why it failed, then ``how_to_get``."""
    target = cache_dir()
    try:
        # imported here: torchvision costs seconds to import and is needed only for a download
        import torchvision.datasets as tvd
        target.mkdir(parents=True, exist_ok=True)
        for train in splits:
            getattr(tvd, cls_name)(str(target), train=train, download=True)
    except Exception as e:  # network, disk, checksum: all reported the same way
        raise DataError(f"{not_found} and the torchvision download into {target} failed: {e}. "
                        f"{how_to_get}") from e
    return target
