"""Fashion-MNIST (Xiao et al., 2017) from its four IDX files.

Looked for in ``data_dir`` (alone, when given), else env ``NLB_DATA_DIR``,
``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``) and the cache dir,
each in the folder itself, ``fashion-mnist/`` or ``FashionMNIST/raw/``; then, if ``download``,
torchvision's FashionMNIST download into the cache dir. The IDX files (gzipped or not) are read
with numpy and the SHA-256 of their decompressed bytes must equal the upstream digests below.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from benchmark.data.registry import (DatasetArrays, contiguous_uint8, partial_copy, register_dataset,
                                     search_roots, torchvision_download, why_not)
from benchmark.errors import DataError

__all__ = ["FASHION_MNIST_CLASSES", "FASHION_MNIST_SHA256", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD",
           "SYSTEM_FASHION_MNIST_DIRS", "read_idx"]

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
        got = hashlib.sha256(raw).hexdigest()
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
        train_x=contiguous_uint8(train_x[:, None]), train_y=train_y,
        test_x=contiguous_uint8(test_x[:, None]), test_y=test_y,
        classes=list(FASHION_MNIST_CLASSES), mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD,
        crop_pad=0, hflip=False, source=str(d.resolve()))


@register_dataset("fashion_mnist")
def _load_fashion_mnist(*, data_dir: str | None, download: bool,
                        cifar_n_path: str | None = None) -> DatasetArrays:
    roots = search_roots(data_dir, SYSTEM_FASHION_MNIST_DIRS)
    d, tried = _find_fmnist_dir(roots)
    partial = partial_copy(tried, list(FASHION_MNIST_SHA256), lambda x, n: _idx_file(x, n) is not None)
    if d is None and partial:
        raise DataError(f"Fashion-MNIST: {partial}{_FMNIST_GET}")
    if d is None and download and not data_dir:  # an explicit folder must hold the data itself
        target = torchvision_download(
            "FashionMNIST", (True, False),
            f"Fashion-MNIST not found in {', '.join(map(str, tried))} (expected "
            f"{', '.join(FASHION_MNIST_SHA256)}, each optionally .gz)", _FMNIST_GET)
        d, tried = _find_fmnist_dir([target])
    if d is None:
        raise DataError(f"Fashion-MNIST not found: looked for the four IDX files "
                        f"{', '.join(FASHION_MNIST_SHA256)} (each optionally .gz) in "
                        f"{', '.join(map(str, tried))}"
                        f"{why_not(data_dir, download)}. {_FMNIST_GET}")
    return _read_fmnist(d)
