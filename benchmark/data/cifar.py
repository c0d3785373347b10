"""CIFAR-10 and CIFAR-100 in torchvision's on-disk format (``cifar-10-batches-py`` /
``cifar-100-python``).

Looked for in ``data_dir`` (alone, when given), else env ``NLB_DATA_DIR`` and the cache dir, each
in the folder itself or its usual sub-folder; then, if ``download``, torchvision's download into
the cache dir. The files are pickles: each one's MD5 must equal torchvision's before anything is
unpickled (unless NLB_ALLOW_UNVERIFIED_DATA=1: tiny test copies, private subsets), and even then
it is read by a pickle reader that can build only arrays. CIFAR-N human labels are attached when
a verified label file is found (:mod:`benchmark.data.cifar_n`).
"""
from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark import settings
from benchmark.data import cifar_n
from benchmark.data.registry import (DatasetArrays, contiguous_uint8, file_digest, partial_copy, register_dataset,
                                     search_roots, torchvision_download, why_not)
from benchmark.errors import DataError

__all__ = ["CIFAR_SPECS"]

@dataclass(frozen=True)
class _CifarSpec:
    name: str
    folder: str
    train_files: tuple[tuple[str, str], ...]  # (file, torchvision md5)
    test_file: tuple[str, str]
    meta_file: tuple[str, str]
    label_key: str
    names_key: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    torchvision_class: str
    archive: str


# File names and md5s as in torchvision.datasets.CIFAR10 / CIFAR100.
CIFAR_SPECS = {
    "cifar10": _CifarSpec(
        "cifar10", "cifar-10-batches-py",
        (("data_batch_1", "c99cafc152244af753f735de768cd75f"),
         ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
         ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
         ("data_batch_4", "634d18415352ddfa80567beed471001a"),
         ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")),
        ("test_batch", "40351d587109b95175f43aff81a1287e"),
        ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
        "labels", "label_names", 10,
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "CIFAR10", "cifar-10-python.tar.gz"),
    "cifar100": _CifarSpec(
        "cifar100", "cifar-100-python",
        (("train", "16019d7e3df5f24257cddd939b257f8d"),),
        ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
        ("meta", "7973b15100ade9c7d40fb424638fde48"),
        "fine_labels", "fine_label_names", 100,
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "CIFAR100", "cifar-100-python.tar.gz"),
}


def _cifar_get(spec: _CifarSpec) -> str:
    return (f"Ways to get it: (1) put torchvision's `{spec.folder}` folder (extracted from the "
            f"official {spec.archive}) under a directory DIR and pass `--data-dir DIR` or set env "
            f"NLB_DATA_DIR=DIR; (2) run once with network access and download allowed "
            f"(download=True) so torchvision downloads it into the cache dir "
            f"(env NLB_CACHE_DIR, default ~/.cache/noisy-label-bench).")


def _find_cifar_dir(spec: _CifarSpec, roots: list[Path]) -> tuple[Path | None, list[Path]]:
    names = [f for f, _ in spec.train_files] + [spec.test_file[0], spec.meta_file[0]]
    tried: list[Path] = []
    for root in roots:
        for d in (root / spec.folder, root) if root.name != spec.folder else (root,):
            tried.append(d)
            if all((d / n).is_file() for n in names):
                return d, tried
    return None, tried


# the only globals a CIFAR batch file needs: numpy arrays, their dtypes, and the bytes decoding of
# Python 2 pickles. Anything else (os.system, eval, ...) is refused before it can be called.
_CIFAR_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _CifarUnpickler(pickle.Unpickler):
    """A pickle reader that can build dicts, lists, strings, numbers and numpy arrays, nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) in _CIFAR_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name} (not part of a CIFAR file)")


def _unpickle(path: Path) -> dict:
    """Read one CIFAR pickle with the restricted reader (the caller has checked its MD5)."""
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="latin1").load()
    except Exception as e:
        raise DataError(f"cannot read CIFAR pickle {path}: {e}") from e
    if not isinstance(obj, dict):
        raise DataError(f"CIFAR file {path}: expected a dict, got {type(obj).__name__}")
    # Python 2 pickles may come back with bytes keys
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _verify_cifar_files(spec: _CifarSpec, d: Path) -> bool:
    """Check every file's MD5 against torchvision's before anything is unpickled.

    Returns True when all match. A mismatch is a DataError, unless env NLB_ALLOW_UNVERIFIED_DATA=1
    (tiny test copies, private subsets): then False, and the files are read with the restricted
    reader only, which cannot run code whatever the file holds.
    """
    bad = [f for f, md5 in (*spec.train_files, spec.test_file, spec.meta_file) if file_digest(d / f, "md5") != md5]
    if not bad:
        return True
    if settings.allow_unverified():
        warnings.warn(f"{spec.name}: {', '.join(bad)} in {d} are not torchvision's files (md5 differs); "
                      f"loading them unverified because {settings.ALLOW_UNVERIFIED}=1")
        return False
    raise DataError(f"CIFAR file {d / bad[0]}: md5 {file_digest(d / bad[0], 'md5')}, expected torchvision's "
                    f"{dict((*spec.train_files, spec.test_file, spec.meta_file))[bad[0]]} (corrupt, "
                    f"modified or not the official file; {len(bad)} file(s) differ); refusing to "
                    f"unpickle it. For a deliberate subset or test copy set {settings.ALLOW_UNVERIFIED}=1. "
                    f"{_cifar_get(spec)}")


def _cifar_batch(path: Path, spec: _CifarSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(images (n,3,32,32) uint8, labels (n,) int64, coarse labels or None) of one batch file."""
    d = _unpickle(path)
    missing = [k for k in ("data", spec.label_key) if k not in d]
    if missing:
        raise DataError(f"CIFAR file {path}: missing keys {missing} (has {sorted(d)})")
    data = np.asarray(d["data"])
    labels = np.asarray(d[spec.label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"CIFAR file {path}: 'data' is {data.dtype} {data.shape}, "
                        f"expected uint8 (n, 3072)")
    if labels.shape != (len(data),):
        raise DataError(f"CIFAR file {path}: {labels.shape} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(f"CIFAR file {path}: labels outside [0, {spec.num_classes})")
    coarse = None
    if spec.name == "cifar100":
        if "coarse_labels" not in d:
            raise DataError(f"CIFAR file {path}: missing key 'coarse_labels'")
        coarse = np.asarray(d["coarse_labels"], dtype=np.int64)
        if coarse.shape != labels.shape or (len(coarse) and (coarse.min() < 0 or coarse.max() >= 20)):
            raise DataError(f"CIFAR file {path}: bad 'coarse_labels'")
    # rows are 1024 red, 1024 green, 1024 blue values, each plane row-major: already CHW
    return data.reshape(-1, 3, 32, 32), labels, coarse


def _read_cifar(spec: _CifarSpec, d: Path) -> DatasetArrays:
    verified = _verify_cifar_files(spec, d)  # before any file is unpickled
    parts = [_cifar_batch(d / f, spec) for f, _ in spec.train_files]
    test_x, test_y, _ = _cifar_batch(d / spec.test_file[0], spec)
    meta = _unpickle(d / spec.meta_file[0])
    if spec.names_key not in meta:
        raise DataError(f"CIFAR meta file {d / spec.meta_file[0]}: missing key '{spec.names_key}'")
    classes = [str(c) for c in meta[spec.names_key]]
    if len(classes) != spec.num_classes:
        raise DataError(f"CIFAR meta file {d / spec.meta_file[0]}: {len(classes)} class names, "
                        f"expected {spec.num_classes}")
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    coarse = np.concatenate([p[2] for p in parts]) if spec.name == "cifar100" else None
    return DatasetArrays(
        name=spec.name, train_x=contiguous_uint8(train_x), train_y=train_y,
        test_x=contiguous_uint8(test_x), test_y=test_y, classes=classes,
        mean=spec.mean, std=spec.std, crop_pad=4, hflip=True, coarse_labels=coarse,
        source=str(d.resolve()) + ("" if verified else " (UNVERIFIED: md5 differs from torchvision's)"))


def _load_cifar(name: str, *, data_dir: str | None, download: bool,
                cifar_n_path: str | None) -> DatasetArrays:
    spec = CIFAR_SPECS[name]
    d, tried = _find_cifar_dir(spec, search_roots(data_dir))
    names = [f for f, _ in spec.train_files] + [spec.test_file[0], spec.meta_file[0]]
    partial = partial_copy(tried, names, lambda x, n: (x / n).is_file())
    if d is None and partial:
        raise DataError(f"{name}: {partial}{_cifar_get(spec)}")
    if d is None and download and not data_dir:  # an explicit folder must hold the data itself
        target = torchvision_download(spec.torchvision_class, (True,),
                                      f"{name} not found in {', '.join(map(str, tried))}", _cifar_get(spec))
        d, tried = _find_cifar_dir(spec, [target])
    if d is None:
        raise DataError(f"{name} not found: looked for torchvision's `{spec.folder}` files in "
                        f"{', '.join(map(str, tried))}{why_not(data_dir, download)}. "
                        f"{_cifar_get(spec)}")
    data = _read_cifar(spec, d)
    cifar_n.attach_human_labels(data, data_dir=data_dir, cifar_n_path=cifar_n_path, download=download)
    return data


@register_dataset("cifar10")
def _load_cifar10(*, data_dir: str | None, download: bool, cifar_n_path: str | None) -> DatasetArrays:
    return _load_cifar("cifar10", data_dir=data_dir, download=download, cifar_n_path=cifar_n_path)


@register_dataset("cifar100")
def _load_cifar100(*, data_dir: str | None, download: bool, cifar_n_path: str | None) -> DatasetArrays:
    return _load_cifar("cifar100", data_dir=data_dir, download=download, cifar_n_path=cifar_n_path)
