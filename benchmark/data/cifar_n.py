"""CIFAR-N human label files (Wei et al., ICLR 2022; UCSC-REAL/cifar-10-100n), verified by SHA-256,
and how they are attached to a loaded CIFAR training set (:func:`attach_human_labels`).

The official files ``CIFAR-10_human.pt`` and ``CIFAR-100_human.pt`` are Python pickles of dicts of
(50000,) int64 arrays in torchvision's CIFAR training order. Loading one needs
unpickling, which could run code, so a file is only read after its SHA-256 matched the official
digest below, and then with ``torch.load(weights_only=True)`` allowing numpy label arrays only. Licence of the labels: CC BY-NC 4.0.

Where a file is looked for (first hit wins): the explicit ``path`` (the file itself, or a directory
holding it), env ``NLB_CIFAR_N_DIR``, ``data_dir/cifar-n``, the cache dir (``<cache>/cifar-n`` and
``<cache>``; the cache dir is env ``NLB_CACHE_DIR``, default ``~/.cache/noisy-label-bench``).
A directory may hold the file directly or in a ``cifar-n`` sub-folder.
"""
from __future__ import annotations

import os
import tempfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmark import settings
from benchmark.data.registry import DatasetArrays, cache_dir, file_digest
from benchmark.errors import DataError

__all__ = ["HUMAN_SETS", "HUMAN_KEYS", "CIFAR_N_FILES", "CIFAR_N_SHA256", "CIFAR_N_URLS", "CIFAR_TRAIN_SIZE",
           "find_cifar_n", "load_cifar_n", "how_to_get", "attach_human_labels"]

CIFAR_TRAIN_SIZE = 50000
"""Training images of CIFAR-10 and CIFAR-100: CIFAR-N labels exist for exactly these, in
torchvision's order (a smaller copy cannot carry them)."""

CIFAR_N_FILES = {"cifar10": "CIFAR-10_human.pt", "cifar100": "CIFAR-100_human.pt"}

CIFAR_N_SHA256 = {
    "cifar10": "873e69c39cb9b5e97fb6bae2d60bb59b38a5cbc31d2b868f7903dcb2b9dd2310",
    "cifar100": "bd2d80409754d420292d622e15e25248ba21e37d27429efac49c8da723f44394",
}

CIFAR_N_URLS = {
    "cifar10": "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/CIFAR-10_human.pt",
    "cifar100": "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/CIFAR-100_human.pt",
}

HUMAN_SETS = {"cifar10": ("aggre", "rand1", "rand2", "rand3", "worst"), "cifar100": ("noisy",)}
"""Label-set names per dataset, as used by the ``human`` and ``twin`` noise kinds."""

HUMAN_KEYS = {
    "cifar10": {"aggre": "aggre_label", "rand1": "random_label1", "rand2": "random_label2",
                "rand3": "random_label3", "worst": "worse_label"},
    "cifar100": {"noisy": "noisy_label"},
}
"""Set name -> key in the official file. The clean labels are under ``clean_label``."""

_NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


def _check_dataset(dataset: str) -> None:
    if dataset not in CIFAR_N_FILES:
        raise ValueError(f"CIFAR-N exists for {', '.join(CIFAR_N_FILES)}, not '{dataset}'")


def how_to_get(dataset: str) -> str:
    """How to obtain the official file, for error messages."""
    return (f"Get the official {CIFAR_N_FILES[dataset]} from {CIFAR_N_URLS[dataset]} "
            f"(CC BY-NC 4.0; SHA-256 {CIFAR_N_SHA256[dataset]}) and put it in a directory named by "
            f"env NLB_CIFAR_N_DIR, in DATA_DIR/cifar-n, or in the cache dir "
            f"{cache_dir() / 'cifar-n'}; or load with download=True.")


def find_cifar_n(dataset: str, path: str | os.PathLike | None = None,
                 data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first existing CIFAR-N file for ``dataset`` in the search order above, or None."""
    _check_dataset(dataset)
    fname = CIFAR_N_FILES[dataset]
    candidates: list[Path] = []
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        candidates += [p / fname, p / "cifar-n" / fname]
    env = settings.cifar_n_dir()
    if env:
        candidates += [Path(env).expanduser() / fname, Path(env).expanduser() / "cifar-n" / fname]
    if data_dir is not None:
        candidates.append(Path(data_dir).expanduser() / "cifar-n" / fname)
    candidates += [cache_dir() / "cifar-n" / fname, cache_dir() / fname]
    return next((c for c in candidates if c.is_file()), None)


def _verify(dataset: str, path: Path) -> None:
    got, want = file_digest(path), CIFAR_N_SHA256[dataset]
    if got != want:
        raise DataError(f"CIFAR-N file {path}: sha256 {got} does not match the official sha256 "
                        f"{want}; refusing to unpickle it. {how_to_get(dataset)}")


def _download(dataset: str, timeout: float = 60.0) -> Path:
    """Download the official file into <cache>/cifar-n (temp file, verify, then rename)."""
    dest_dir = cache_dir() / "cifar-n"
    dest = dest_dir / CIFAR_N_FILES[dataset]
    url = CIFAR_N_URLS[dataset]
    tmp: Path | None = None
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".pt")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
        _verify(dataset, tmp)
        os.replace(tmp, dest)
        tmp = None
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"downloading {url} into {dest_dir} failed: {e}. {how_to_get(dataset)}") from e
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
    return dest


def load_cifar_n(dataset: str, path: str | os.PathLike | None = None,
                 data_dir: str | os.PathLike | None = None,
                 download: bool = False) -> dict[str, np.ndarray]:
    """The CIFAR-N labels of ``dataset``: ``{"clean": ..., <HUMAN_SETS names>: ...}``, each (50000,)
    int64 in torchvision's training order.

    The file's SHA-256 is checked before it is unpickled; a mismatch is a DataError naming both
    digests. Downloads the official file (into the cache dir) only when ``download`` is True.
    """
    _check_dataset(dataset)
    found = find_cifar_n(dataset, path=path, data_dir=data_dir)
    if found is None:
        if not download:
            where = f" at {path}" if path is not None else ""
            raise DataError(f"CIFAR-N file {CIFAR_N_FILES[dataset]} not found{where} "
                            f"(download disabled). {how_to_get(dataset)}")
        found = _download(dataset)
    _verify(dataset, found)

    # verified above, and read with weights_only=True all the same: numpy arrays of int64 labels
    # are the only objects the official files hold, so nothing else may be built from them
    allowed = [(np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
               np.ndarray, np.dtype, np.dtypes.Int64DType]
    try:
        with torch.serialization.safe_globals(allowed):
            raw = torch.load(found, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"CIFAR-N file {found}: cannot be read as label arrays ({e})") from e
    if not isinstance(raw, dict):
        raise DataError(f"CIFAR-N file {found}: expected a dict, got {type(raw).__name__}")
    keys = {"clean": "clean_label", **HUMAN_KEYS[dataset]}
    out: dict[str, np.ndarray] = {}
    for name, key in keys.items():
        if key not in raw:
            raise DataError(f"CIFAR-N file {found}: missing key '{key}'")
        a = np.asarray(raw[key]).astype(np.int64, copy=False)
        if a.shape != (CIFAR_TRAIN_SIZE,) or a.min() < 0 or a.max() >= _NUM_CLASSES[dataset]:
            raise DataError(f"CIFAR-N file {found}: '{key}' has shape {a.shape} or labels outside "
                            f"[0, {_NUM_CLASSES[dataset]})")
        out[name] = a
    return out


def attach_human_labels(data: DatasetArrays, *, data_dir: str | None = None,
                        cifar_n_path: str | None = None, download: bool = False) -> None:
    """Set ``data.human_labels`` from the CIFAR-N file if one is found (None otherwise).

    Only a full training set (50000 images) can carry CIFAR-N labels; the file's clean labels must
    equal ``data.train_y`` (else DataError: wrong order or wrong file). An explicit
    ``cifar_n_path`` that holds no file is a DataError; otherwise a missing file is not an error.
    """
    data.human_labels = None
    path = find_cifar_n(data.name, path=cifar_n_path, data_dir=data_dir)
    if path is None and cifar_n_path is not None:
        raise DataError(f"no {CIFAR_N_FILES[data.name]} at {cifar_n_path}. "
                        f"{how_to_get(data.name)}")
    if len(data.train_y) != CIFAR_TRAIN_SIZE:
        if path is not None:
            warnings.warn(f"{data.name}: {len(data.train_y)} training images, not "
                          f"{CIFAR_TRAIN_SIZE}: CIFAR-N labels from {path} not attached")
        return
    if path is None and not download:
        return
    try:
        labels = load_cifar_n(data.name, path=path, data_dir=data_dir,
                                      download=path is None and download)
    except DataError:
        if path is not None:
            raise  # a file that is there but fails verification is an error
        warnings.warn(f"{data.name}: CIFAR-N labels could not be downloaded; the 'human' noise "
                      f"kind will be unavailable. {how_to_get(data.name)}")
        return
    if not np.array_equal(labels["clean"], data.train_y):
        n_diff = int((labels["clean"] != data.train_y).sum())
        raise DataError(f"CIFAR-N clean labels disagree with the {data.name} training labels at "
                        f"{n_diff} of {len(data.train_y)} positions: the CIFAR data is not in "
                        f"torchvision's training order, or the CIFAR-N file is not for {data.name}")
    data.human_labels = {k: v for k, v in labels.items() if k != "clean"}
