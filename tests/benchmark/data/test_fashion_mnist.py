"""benchmark/data/fashion_mnist.py: Fashion-MNIST from IDX files."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data import DataError, load_dataset
from benchmark.data.fashion_mnist import FASHION_MNIST_SHA256, read_idx
from benchmark.data.registry import channel_stats

pytestmark = pytest.mark.usefixtures("data_env")


FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(not (FMNIST / "train-images-idx3-ubyte.gz").is_file(),
                                  reason="Debian's dataset-fashion-mnist is not installed")
FMNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte"]


def _fmnist_copy(dst: Path) -> Path:
    """dst holding symlinks to the four Debian files (so single files can be replaced cheaply)."""
    dst.mkdir(parents=True)
    for f in FMNIST_FILES:
        (dst / f"{f}.gz").symlink_to(FMNIST / f"{f}.gz")
    return dst


# ----- Fashion-MNIST --------------------------------------------------------------------------

@needs_fmnist
def test_fashion_mnist_from_debian_files():
    d = load_dataset("fashion_mnist", download=False)
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert d.train_x.dtype == torch.uint8 and d.train_x.is_contiguous() and d.test_x.is_contiguous()
    assert d.train_x.device.type == "cpu"
    assert d.train_y.dtype == np.int64 and d.test_y.dtype == np.int64
    assert np.bincount(d.train_y).tolist() == [6000] * 10
    assert np.bincount(d.test_y).tolist() == [1000] * 10
    assert d.num_classes == 10 and d.image_shape == (1, 28, 28) and d.classes[9] == "Ankle boot"
    assert (d.crop_pad, d.hflip) == (0, False)
    assert d.human_labels is None and d.coarse_labels is None
    assert d.source == str(FMNIST.resolve())
    # the embedded normalisation constants are the statistics of the training images
    mean, std = channel_stats(d.train_x.numpy())
    assert mean == pytest.approx(d.mean, abs=1e-4) and std == pytest.approx(d.std, abs=1e-4)
    # memoised: the same object comes back
    assert load_dataset("fashion_mnist", download=False) is d


@needs_fmnist
def test_fashion_mnist_embedded_digests_match_the_files():
    for f in FMNIST_FILES:
        raw = gzip.decompress((FMNIST / f"{f}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == FASHION_MNIST_SHA256[f]


@needs_fmnist
def test_fashion_mnist_found_through_env_and_subfolder(tmp_path, monkeypatch, no_system_fmnist):
    _fmnist_copy(tmp_path / "root" / "fashion-mnist")
    monkeypatch.setenv("NLB_DATA_DIR", str(tmp_path / "root"))
    d = load_dataset("fashion_mnist", download=False)
    assert d.source == str((tmp_path / "root" / "fashion-mnist").resolve())
    assert len(d.train_y) == 60000


@needs_fmnist
def test_fashion_mnist_one_changed_byte_names_the_file(tmp_path):
    d = _fmnist_copy(tmp_path / "fm")
    raw = bytearray(gzip.decompress((FMNIST / "train-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # still a valid label: only the digest can tell
    (d / "train-labels-idx1-ubyte.gz").unlink()
    (d / "train-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DataError) as e:
        load_dataset("fashion_mnist", data_dir=str(d), download=False)
    msg = str(e.value)
    assert str(d / "train-labels-idx1-ubyte") in msg and "SHA-256" in msg


@needs_fmnist
def test_fashion_mnist_truncated_gzip_names_the_file(tmp_path):
    d = _fmnist_copy(tmp_path / "fm")
    gz = (FMNIST / "t10k-images-idx3-ubyte.gz").read_bytes()
    (d / "t10k-images-idx3-ubyte.gz").unlink()
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataError) as e:
        load_dataset("fashion_mnist", data_dir=str(d), download=False)
    assert str(d / "t10k-images-idx3-ubyte.gz") in str(e.value)


def test_read_idx_checks_magic_counts_and_length(tmp_path):
    def idx(magic: int, dims: tuple[int, ...], payload: bytes) -> Path:
        p = tmp_path / f"f{len(list(tmp_path.iterdir()))}"
        p.write_bytes(magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in dims) + payload)
        return p

    good = idx(0x0801, (3,), bytes([1, 2, 3]))
    assert read_idx(good, expect_ndim=1, expect_count=3).tolist() == [1, 2, 3]
    cases = [(idx(0x0803, (3,), bytes(3)), "magic"),          # images magic for a label file
             (idx(0x0801, (4,), bytes(4)), "dimensions"),     # wrong count
             (idx(0x0801, (3,), bytes(2)), "data bytes")]     # truncated payload
    for path, word in cases:
        with pytest.raises(DataError, match=word) as e:
            read_idx(path, expect_ndim=1, expect_count=3)
        assert str(path) in str(e.value)
    with pytest.raises(DataError, match="SHA-256"):
        read_idx(good, expect_ndim=1, expect_count=3, sha256="0" * 64)


def test_fashion_mnist_missing_lists_the_ways_to_get_it(tmp_path, no_system_fmnist):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as e:
        load_dataset("fashion_mnist", data_dir=str(missing), download=False)
    msg = str(e.value)
    assert str(missing) in msg
    for way in ("apt-get install dataset-fashion-mnist", "--data-dir", "NLB_DATA_DIR", "download"):
        assert way in msg


def test_fashion_mnist_failed_download_is_a_data_error(tmp_path, monkeypatch, no_system_fmnist, data_env):
    import torchvision.datasets

    class Offline:
        def __init__(self, *a, **kw):
            raise RuntimeError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    with pytest.raises(DataError, match="network unreachable") as e:
        load_dataset("fashion_mnist", download=True)
    assert "apt-get install dataset-fashion-mnist" in str(e.value)
