"""Datasets as whole uint8 tensors: Fashion-MNIST, scikit-learn's digits, CIFAR-10 and CIFAR-100.

Every loader returns a :class:`DatasetArrays`: the full training and test sets as uint8 tensors of
shape (N, C, H, W), the clean labels as int64 numpy arrays, the class names, the per-channel
normalisation constants and the dataset's standard augmentation. The training loop moves the
tensors to the device once and slices batches out of them (see DESIGN.md, "Data").

Where the data is looked for (first complete copy wins):

- ``fashion_mnist``: ``data_dir``, env ``NLB_DATA_DIR``, ``/usr/share/datasets/fashion-mnist``
  (Debian's ``dataset-fashion-mnist``), the cache dir; then, if ``download``, torchvision's
  FashionMNIST download into the cache dir. The IDX files (gzipped or not) are read with numpy and
  the SHA-256 of their decompressed bytes must equal the upstream digests embedded below.
- ``digits``: scikit-learn's bundled copy; nothing to find.
- ``cifar10`` / ``cifar100``: torchvision's on-disk format (``cifar-10-batches-py`` /
  ``cifar-100-python``) under ``data_dir``, env ``NLB_DATA_DIR`` or the cache dir; then, if
  ``download``, torchvision's download into the cache dir. CIFAR-N human labels are attached
  when a verified label file is found (see :mod:`benchmark.cifar_n`).

In each searched directory ``D`` a dataset may sit in ``D`` itself or in its usual sub-folder
(``D/fashion-mnist``, ``D/FashionMNIST/raw``, ``D/cifar-10-batches-py``, ``D/cifar-100-python``).

The cache dir is env ``NLB_CACHE_DIR``, default ``~/.cache/noisy-label-bench``.

Loaded datasets are memoised per process: :func:`load_dataset` returns the *same object* for the
same arguments (and the same environment), so callers must treat it as read-only: never write
into its tensors or arrays, never reassign its fields. Copy (``x.clone()``, ``y.copy()``) first.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from benchmark import settings
from benchmark.errors import DataError

__all__ = ["DataError", "DatasetArrays", "register_dataset", "list_datasets", "load_dataset",
           "clear_cache", "cache_dir", "FASHION_MNIST_SHA256", "SYSTEM_FASHION_MNIST_DIRS"]


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
_REGISTRY: dict[str, Loader] = {}
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


def list_datasets() -> list[str]:
    """Registered names (and the image-folder datasets); folder:PATH and list:FILE are extra."""
    import benchmark.image_folders  # noqa: F401  (registers animal10n)
    import benchmark.real_world  # noqa: F401  (clothing1m, food101n, webvision_mini)
    return sorted(_REGISTRY)


def load_dataset(name: str, *, data_dir: str | None = None, download: bool = True,
                 cifar_n_path: str | None = None) -> DatasetArrays:
    """Load dataset ``name`` (memoised per process; the result is shared: do not mutate it).

    Raises ValueError for an unknown name and DataError when the data cannot be found or is corrupt.
    """
    from benchmark.image_folders import PREFIX_LOADERS  # registers animal10n; folder:, list:
    import benchmark.real_world  # noqa: F401  (registers clothing1m, food101n, webvision_mini)
    prefix = next((p for p in PREFIX_LOADERS if name.startswith(p)), None)
    if prefix is None and name not in _REGISTRY:
        raise ValueError(f"unknown dataset '{name}'. Valid: {', '.join(list_datasets())}, "
                         "folder:PATH, list:FILE")
    key = (name, _norm(data_dir), bool(download), _norm(cifar_n_path), settings.data_memo_key())
    with _LOCK:
        if key not in _CACHE:
            if prefix is not None:
                _CACHE[key] = PREFIX_LOADERS[prefix](name[len(prefix):])
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


def _search_roots(data_dir: str | None, extra: tuple[Path, ...] = ()) -> list[Path]:
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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _partial(dirs: list[Path], names: list[str], has) -> str:
    """'' or a sentence naming a folder that holds some but not all of ``names`` and what it lacks.

    has(d, name) -> bool says whether folder d holds file ``name``."""
    for d in dirs:
        present = [n for n in names if has(d, n)]
        if present and len(present) < len(names):
            missing = [n for n in names if n not in present]
            return f"{d} holds only part of the dataset: missing {', '.join(missing)}. "
    return ""


def _why_not(data_dir: str | None, download: bool) -> str:
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


def _contiguous_uint8(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint8))


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (N, C, H, W) uint8 images, in [0, 1] units."""
    xf = x.astype(np.float64) / 255.0
    return (tuple(float(v) for v in xf.mean(axis=(0, 2, 3))),
            tuple(float(v) for v in xf.std(axis=(0, 2, 3))))


# ----- Fashion-MNIST --------------------------------------------------------------------------

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]

FASHION_MNIST_SHA256 = {
    # SHA-256 of the *decompressed* IDX files (the upstream zalandoresearch files; computed once
    # from Debian's dataset-fashion-mnist, whose .gz are recompressed but hold the same bytes).
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# Per-channel statistics of the 60000 training images (checked against the data by a test).
FASHION_MNIST_MEAN = (0.28604,)
FASHION_MNIST_STD = (0.35302,)

SYSTEM_FASHION_MNIST_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
"""System locations searched after data_dir and NLB_DATA_DIR (tests may patch this)."""

_FMNIST_GET = (
    "Ways to get it: (1) on Debian/Ubuntu, `apt-get install dataset-fashion-mnist` "
    "(installs /usr/share/datasets/fashion-mnist); (2) put the four files "
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
    "t10k-labels-idx1-ubyte[.gz] in a directory DIR and pass `--data-dir DIR` or set env "
    "NLB_DATA_DIR=DIR; (3) allow the download (download=True, network access) so torchvision "
    "fetches it into the cache dir (env NLB_CACHE_DIR, default ~/.cache/noisy-label-bench)."
)


def _idx_file(d: Path, base: str) -> Path | None:
    for name in (base, base + ".gz"):
        if (d / name).is_file():
            return d / name
    return None


def _find_fmnist_dir(roots: list[Path]) -> tuple[Path | None, list[Path]]:
    """First directory holding all four IDX files; also every directory tried."""
    tried: list[Path] = []
    for root in roots:
        for d in (root, root / "fashion-mnist", root / "FashionMNIST" / "raw"):
            tried.append(d)
            if all(_idx_file(d, b) for b in FASHION_MNIST_SHA256):
                return d, tried
    return None, tried


def read_idx(path: Path, *, expect_ndim: int, expect_count: int,
             expect_shape: tuple[int, ...] = (), sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes and check it.

    Checks the magic number (0x0000 08 ndim), the item count, the item shape, the payload size and,
    if given, the SHA-256 of the decompressed bytes. Any failure is a DataError naming the file.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"cannot read IDX file {path}: {e} (truncated or not gzip?)") from e
    if len(raw) < 4 + 4 * expect_ndim:
        raise DataError(f"IDX file {path} is truncated ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + expect_ndim:
        raise DataError(f"IDX file {path}: bad magic number {magic:#010x}, "
                        f"expected {0x0800 + expect_ndim:#010x} (unsigned bytes, {expect_ndim}-d)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(expect_ndim))
    if dims[0] != expect_count or dims[1:] != tuple(expect_shape):
        raise DataError(f"IDX file {path}: dimensions {dims}, expected "
                        f"{(expect_count, *expect_shape)}")
    off = 4 + 4 * expect_ndim
    if len(raw) != off + int(np.prod(dims)):
        raise DataError(f"IDX file {path}: {len(raw) - off} data bytes, expected "
                        f"{int(np.prod(dims))} (truncated or padded)")
    if sha256 is not None:
        got = _sha256(raw)
        if got != sha256:
            raise DataError(f"IDX file {path}: SHA-256 of the decompressed bytes is {got}, expected "
                            f"{sha256} (corrupt or not the upstream file). {_FMNIST_GET}")
    return np.frombuffer(raw, dtype=np.uint8, offset=off).reshape(dims).copy()  # writable


def _read_fmnist(d: Path) -> DatasetArrays:
    def read(base: str, count: int, images: bool) -> np.ndarray:
        return read_idx(_idx_file(d, base), expect_ndim=3 if images else 1, expect_count=count,
                        expect_shape=(28, 28) if images else (), sha256=FASHION_MNIST_SHA256[base])

    # small files first, so a bad label file fails before 47 MB are decompressed
    train_y = read("train-labels-idx1-ubyte", 60000, False).astype(np.int64)
    test_y = read("t10k-labels-idx1-ubyte", 10000, False).astype(np.int64)
    test_x = read("t10k-images-idx3-ubyte", 10000, True)
    train_x = read("train-images-idx3-ubyte", 60000, True)
    return DatasetArrays(
        name="fashion_mnist",
        train_x=_contiguous_uint8(train_x[:, None]), train_y=train_y,
        test_x=_contiguous_uint8(test_x[:, None]), test_y=test_y,
        classes=list(FASHION_MNIST_CLASSES), mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD,
        crop_pad=0, hflip=False, source=str(d.resolve()))


@register_dataset("fashion_mnist")
def _load_fashion_mnist(*, data_dir: str | None, download: bool,
                        cifar_n_path: str | None = None) -> DatasetArrays:
    roots = _search_roots(data_dir, SYSTEM_FASHION_MNIST_DIRS)
    d, tried = _find_fmnist_dir(roots)
    partial = _partial(tried, list(FASHION_MNIST_SHA256), lambda x, n: _idx_file(x, n) is not None)
    if d is None and partial:
        raise DataError(f"Fashion-MNIST: {partial}{_FMNIST_GET}")
    if d is None and download and not data_dir:  # an explicit folder must hold the data itself
        target = cache_dir()
        try:
            from torchvision.datasets import FashionMNIST
            target.mkdir(parents=True, exist_ok=True)
            FashionMNIST(str(target), train=True, download=True)
            FashionMNIST(str(target), train=False, download=True)
        except Exception as e:  # network, disk, checksum: all reported the same way
            raise DataError(f"Fashion-MNIST not found in {', '.join(map(str, tried))} (expected "
                            f"{', '.join(FASHION_MNIST_SHA256)}, each optionally .gz) and the "
                            f"torchvision download into {target} failed: {e}. {_FMNIST_GET}") from e
        d, tried = _find_fmnist_dir([target])
    if d is None:
        raise DataError(f"Fashion-MNIST not found: looked for the four IDX files "
                        f"{', '.join(FASHION_MNIST_SHA256)} (each optionally .gz) in "
                        f"{', '.join(map(str, tried))}"
                        f"{_why_not(data_dir, download)}. {_FMNIST_GET}")
    return _read_fmnist(d)


# ----- scikit-learn digits --------------------------------------------------------------------

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
    import sklearn
    from sklearn.datasets import load_digits
    bunch = load_digits()
    x = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    tr, te = digits_split(y)
    mean, std = _channel_stats(x[tr])
    return DatasetArrays(
        name="digits", train_x=_contiguous_uint8(x[tr]), train_y=y[tr].copy(),
        test_x=_contiguous_uint8(x[te]), test_y=y[te].copy(),
        classes=[str(i) for i in range(10)], mean=mean, std=std, crop_pad=0, hflip=False,
        source=f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})")


# ----- CIFAR-10 / CIFAR-100 -------------------------------------------------------------------

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
_CIFAR = {
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
CIFAR_TRAIN_SIZE, CIFAR_TEST_SIZE = 50000, 10000


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
        name=spec.name, train_x=_contiguous_uint8(train_x), train_y=train_y,
        test_x=_contiguous_uint8(test_x), test_y=test_y, classes=classes,
        mean=spec.mean, std=spec.std, crop_pad=4, hflip=True, coarse_labels=coarse,
        source=str(d.resolve()) + ("" if verified else " (UNVERIFIED: md5 differs from torchvision's)"))


def attach_human_labels(data: DatasetArrays, *, data_dir: str | None = None,
                        cifar_n_path: str | None = None, download: bool = False) -> None:
    """Set ``data.human_labels`` from the CIFAR-N file if one is found (None otherwise).

    Only a full training set (50000 images) can carry CIFAR-N labels; the file's clean labels must
    equal ``data.train_y`` (else DataError: wrong order or wrong file). An explicit
    ``cifar_n_path`` that holds no file is a DataError; otherwise a missing file is not an error.
    """
    from benchmark import cifar_n
    data.human_labels = None
    path = cifar_n.find_cifar_n(data.name, path=cifar_n_path, data_dir=data_dir)
    if path is None and cifar_n_path is not None:
        raise DataError(f"no {cifar_n.CIFAR_N_FILES[data.name]} at {cifar_n_path}. "
                        f"{cifar_n.how_to_get(data.name)}")
    if len(data.train_y) != CIFAR_TRAIN_SIZE:
        if path is not None:
            warnings.warn(f"{data.name}: {len(data.train_y)} training images, not "
                          f"{CIFAR_TRAIN_SIZE}: CIFAR-N labels from {path} not attached")
        return
    if path is None and not download:
        return
    try:
        labels = cifar_n.load_cifar_n(data.name, path=path, data_dir=data_dir,
                                      download=path is None and download)
    except DataError:
        if path is not None:
            raise  # a file that is there but fails verification is an error
        warnings.warn(f"{data.name}: CIFAR-N labels could not be downloaded; the 'human' noise "
                      f"kind will be unavailable. {cifar_n.how_to_get(data.name)}")
        return
    if not np.array_equal(labels["clean"], data.train_y):
        n_diff = int((labels["clean"] != data.train_y).sum())
        raise DataError(f"CIFAR-N clean labels disagree with the {data.name} training labels at "
                        f"{n_diff} of {len(data.train_y)} positions: the CIFAR data is not in "
                        f"torchvision's training order, or the CIFAR-N file is not for {data.name}")
    data.human_labels = {k: v for k, v in labels.items() if k != "clean"}


def _load_cifar(name: str, *, data_dir: str | None, download: bool,
                cifar_n_path: str | None) -> DatasetArrays:
    spec = _CIFAR[name]
    d, tried = _find_cifar_dir(spec, _search_roots(data_dir))
    names = [f for f, _ in spec.train_files] + [spec.test_file[0], spec.meta_file[0]]
    partial = _partial(tried, names, lambda x, n: (x / n).is_file())
    if d is None and partial:
        raise DataError(f"{name}: {partial}{_cifar_get(spec)}")
    if d is None and download and not data_dir:  # an explicit folder must hold the data itself
        target = cache_dir()
        try:
            import torchvision.datasets as tvd
            target.mkdir(parents=True, exist_ok=True)
            getattr(tvd, spec.torchvision_class)(str(target), train=True, download=True)
        except Exception as e:
            raise DataError(f"{name} not found in {', '.join(map(str, tried))} and the torchvision "
                            f"download into {target} failed: {e}. {_cifar_get(spec)}") from e
        d, tried = _find_cifar_dir(spec, [target])
    if d is None:
        raise DataError(f"{name} not found: looked for torchvision's `{spec.folder}` files in "
                        f"{', '.join(map(str, tried))}{_why_not(data_dir, download)}. "
                        f"{_cifar_get(spec)}")
    data = _read_cifar(spec, d)
    attach_human_labels(data, data_dir=data_dir, cifar_n_path=cifar_n_path, download=download)
    return data


@register_dataset("cifar10")
def _load_cifar10(*, data_dir: str | None, download: bool, cifar_n_path: str | None) -> DatasetArrays:
    return _load_cifar("cifar10", data_dir=data_dir, download=download, cifar_n_path=cifar_n_path)


@register_dataset("cifar100")
def _load_cifar100(*, data_dir: str | None, download: bool, cifar_n_path: str | None) -> DatasetArrays:
    return _load_cifar("cifar100", data_dir=data_dir, download=download, cifar_n_path=cifar_n_path)


# ----- CIFAR-shaped random data, for timing only -----------------------------------------------

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
