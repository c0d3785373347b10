"""benchmark.data: Fashion-MNIST from IDX files, digits, CIFAR in torchvision's format."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import data as D
from benchmark.data import DataError, DatasetArrays, list_datasets, load_dataset

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


# ----- registry -------------------------------------------------------------------------------

def test_registry_lists_the_datasets_and_rejects_unknown_names():
    assert {"fashion_mnist", "digits", "cifar10", "cifar100"} <= set(list_datasets())
    with pytest.raises(ValueError) as e:
        load_dataset("imagenet")
    for name in ("fashion_mnist", "digits", "cifar10", "cifar100"):
        assert name in str(e.value)


def test_register_dataset_refuses_a_duplicate_name():
    with pytest.raises(ValueError, match="already registered"):
        D.register_dataset("digits")(lambda **kw: None)


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
    mean, std = D._channel_stats(d.train_x.numpy())
    assert mean == pytest.approx(d.mean, abs=1e-4) and std == pytest.approx(d.std, abs=1e-4)
    # memoised: the same object comes back
    assert load_dataset("fashion_mnist", download=False) is d


@needs_fmnist
def test_fashion_mnist_embedded_digests_match_the_files():
    for f in FMNIST_FILES:
        raw = gzip.decompress((FMNIST / f"{f}.gz").read_bytes())
        assert D._sha256(raw) == D.FASHION_MNIST_SHA256[f]


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
    assert D.read_idx(good, expect_ndim=1, expect_count=3).tolist() == [1, 2, 3]
    cases = [(idx(0x0803, (3,), bytes(3)), "magic"),          # images magic for a label file
             (idx(0x0801, (4,), bytes(4)), "dimensions"),     # wrong count
             (idx(0x0801, (3,), bytes(2)), "data bytes")]     # truncated payload
    for path, word in cases:
        with pytest.raises(DataError, match=word) as e:
            D.read_idx(path, expect_ndim=1, expect_count=3)
        assert str(path) in str(e.value)
    with pytest.raises(DataError, match="SHA-256"):
        D.read_idx(good, expect_ndim=1, expect_count=3, sha256="0" * 64)


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


# ----- digits ---------------------------------------------------------------------------------

def test_digits_shapes_values_and_fixed_split():
    from sklearn.datasets import load_digits
    d = load_dataset("digits")
    assert d.train_x.shape == (1438, 1, 8, 8) and d.test_x.shape == (359, 1, 8, 8)
    assert d.train_x.dtype == torch.uint8 and d.train_x.is_contiguous()
    assert d.train_y.dtype == np.int64 and d.num_classes == 10 and d.image_shape == (1, 8, 8)
    assert int(d.train_x.max()) == 255 and int(d.train_x.min()) == 0
    # the pixels are sklearn's 0..16 values scaled to 0..255
    bunch = load_digits()
    tr, te = D.digits_split(bunch.target)
    assert np.array_equal(d.train_y, bunch.target[tr]) and np.array_equal(d.test_y, bunch.target[te])
    expect = np.rint(bunch.images[te[0]] * 255 / 16).astype(np.uint8)
    assert np.array_equal(d.test_x[0, 0].numpy(), expect)
    # stratified 80/20, disjoint, covering everything
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 1797
    frac = np.bincount(d.test_y) / np.bincount(bunch.target)
    assert np.all(np.abs(frac - 0.2) < 0.01)
    # mean/std are the training-set statistics
    mean, std = D._channel_stats(d.train_x.numpy())
    assert d.mean == pytest.approx(mean) and d.std == pytest.approx(std)


def test_digits_split_is_deterministic_and_not_a_run_stream():
    a = load_dataset("digits")
    D.clear_cache()
    b = load_dataset("digits")
    assert a is not b
    assert torch.equal(a.train_x, b.train_x) and np.array_equal(a.test_y, b.test_y)
    y = np.repeat(np.arange(10), 50)
    np.random.seed(123)  # the global RNG must not matter
    s1 = D.digits_split(y)
    np.random.seed(456)
    s2 = D.digits_split(y)
    assert all(np.array_equal(u, v) for u, v in zip(s1, s2))


# ----- CIFAR ----------------------------------------------------------------------------------

def test_fake_cifar10_loads_with_the_right_shapes_and_pixel_order(fake_cifar10):
    f = fake_cifar10
    d = load_dataset("cifar10", data_dir=str(f.root), download=False)
    assert d.train_x.shape == (100, 3, 32, 32) and d.test_x.shape == (20, 3, 32, 32)
    assert d.train_x.dtype == torch.uint8 and d.train_x.is_contiguous()
    assert np.array_equal(d.train_x.numpy(), f.train_x) and np.array_equal(d.test_x.numpy(), f.test_x)
    assert np.array_equal(d.train_y, f.train_y) and d.train_y.dtype == np.int64
    assert np.array_equal(d.test_y, f.test_y)
    assert d.classes == f.classes and d.num_classes == 10 and d.image_shape == (3, 32, 32)
    assert (d.crop_pad, d.hflip) == (4, True) and len(d.mean) == 3 and len(d.std) == 3
    assert d.human_labels is None and d.coarse_labels is None
    assert d.source.startswith(str(f.folder.resolve()))
    # one pixel read straight from the pickled row: channel 1, row 5, column 7 of image 23
    # (23 = 3rd image of data_batch_2 with 20 images per batch)
    with open(f.folder / "data_batch_2", "rb") as fh:
        row = pickle.load(fh, encoding="latin1")["data"][3]
    assert int(d.train_x[23, 1, 5, 7]) == int(row[1 * 1024 + 5 * 32 + 7])


def test_fake_cifar10_matches_torchvisions_reader(fake_cifar10):
    from torchvision.datasets import CIFAR10

    class NoChecksums(CIFAR10):  # the fixture's md5s are not the real ones
        train_list = [[f"data_batch_{i}", None] for i in range(1, 6)]
        test_list = [["test_batch", None]]
        meta = {"filename": "batches.meta", "key": "label_names", "md5": None}

    tv = NoChecksums(str(fake_cifar10.root), train=True, download=False)
    d = load_dataset("cifar10", data_dir=str(fake_cifar10.root), download=False)
    assert np.array_equal(d.train_x.permute(0, 2, 3, 1).numpy(), tv.data)  # torchvision keeps HWC
    assert d.train_y.tolist() == tv.targets and d.classes == tv.classes


def test_fake_cifar100_loads_with_fine_and_coarse_labels(fake_cifar100):
    f = fake_cifar100
    d = load_dataset("cifar100", data_dir=str(f.root), download=False)
    assert d.train_x.shape == (100, 3, 32, 32) and d.test_x.shape == (20, 3, 32, 32)
    assert np.array_equal(d.train_x.numpy(), f.train_x)
    assert np.array_equal(d.train_y, f.train_y) and np.array_equal(d.test_y, f.test_y)
    assert np.array_equal(d.coarse_labels, f.train_coarse) and d.coarse_labels.dtype == np.int64
    assert d.num_classes == 100 and d.classes == f.classes and d.human_labels is None


def test_cifar_found_through_env_and_as_the_folder_itself(fake_cifar10, monkeypatch):
    monkeypatch.setenv("NLB_DATA_DIR", str(fake_cifar10.root))
    assert len(load_dataset("cifar10", download=False).train_y) == 100
    D.clear_cache()
    monkeypatch.delenv("NLB_DATA_DIR")
    d = load_dataset("cifar10", data_dir=str(fake_cifar10.folder), download=False)
    assert np.array_equal(d.test_y, fake_cifar10.test_y)


def test_cifar_missing_lists_the_ways_to_get_it(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", data_dir=str(tmp_path / "empty"), download=False)
    msg = str(e.value)
    for part in ("cifar-10-batches-py", str(tmp_path / "empty"), "--data-dir", "NLB_DATA_DIR",
                 "download"):
        assert part in msg


def test_cifar_failed_download_is_a_data_error(tmp_path, monkeypatch, data_env):
    import torchvision.datasets

    class Offline:
        def __init__(self, *a, **kw):
            raise OSError("no route to host")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", Offline)
    with pytest.raises(DataError, match="no route to host") as e:
        load_dataset("cifar100", download=True)
    assert "cifar-100-python" in str(e.value)


def _rewrite(path: Path, **changes) -> None:
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="latin1")
    obj.update(changes)
    for k, v in list(obj.items()):
        if v is None:
            del obj[k]
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


@pytest.mark.parametrize("change, word", [
    ({"labels": [10] * 20}, "labels outside"),
    ({"labels": None}, "missing keys"),
    ({"data": np.zeros((20, 1024), np.uint8)}, "expected uint8"),
    ({"labels": [0] * 19}, "labels for 20 images"),
])
def test_cifar_structure_is_validated(fake_cifar10, change, word):
    bad = fake_cifar10.folder / "data_batch_3"
    _rewrite(bad, **change)
    with pytest.raises(DataError, match=word) as e:
        load_dataset("cifar10", data_dir=str(fake_cifar10.root), download=False)
    assert str(bad) in str(e.value)


def test_full_size_cifar_is_checked_against_torchvisions_md5(tmp_path):
    """A 50000-image set must be the real one: md5s are checked (the fake set fails them)."""
    f = tmp_path / "data" / "cifar-10-batches-py"
    f.mkdir(parents=True)
    per = 10000
    x = np.zeros((per, 3072), np.uint8)
    for b in range(1, 6):
        batch = {"labels": [b % 10] * per, "data": x}
        with open(f / f"data_batch_{b}", "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    with open(f / "test_batch", "wb") as fh:
        pickle.dump({"labels": [0] * 10000, "data": x}, fh, protocol=2)
    with open(f / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, fh, protocol=2)
    with pytest.raises(DataError, match="md5") as e:
        load_dataset("cifar10", data_dir=str(tmp_path / "data"), download=False)
    assert "data_batch_1" in str(e.value)


def test_dataset_arrays_properties():
    d = DatasetArrays("x", torch.zeros(4, 3, 5, 6, dtype=torch.uint8), np.zeros(4, np.int64),
                      torch.zeros(2, 3, 5, 6, dtype=torch.uint8), np.zeros(2, np.int64),
                      ["a", "b", "c"], (0.5,) * 3, (0.25,) * 3, 0, False)
    assert d.num_classes == 3 and d.image_shape == (3, 5, 6)
    assert d.human_labels is None and d.coarse_labels is None


# ----- planted code and explicit folders ---------------------------------------------------------

class _Planted:
    """Unpickling this object runs a shell command that writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def _plant(path: Path, marker: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump({"data": _Planted(marker), "labels": [0]}, f, protocol=2)


def test_a_planted_cifar_pickle_never_runs(fake_cifar10, tmp_path, monkeypatch):
    marker = tmp_path / "PWNED"
    _plant(fake_cifar10.folder / "data_batch_2", marker)
    # by default: refused on its MD5, before anything is unpickled
    monkeypatch.delenv("NLB_ALLOW_UNVERIFIED_DATA")
    with pytest.raises(DataError, match="md5.*refusing to unpickle"):
        load_dataset("cifar10", data_dir=str(fake_cifar10.root), download=False)
    assert not marker.exists()
    # an unverified copy allowed on purpose: read by a pickle reader that cannot call anything
    monkeypatch.setenv("NLB_ALLOW_UNVERIFIED_DATA", "1")
    with pytest.raises(DataError, match="refused global posix.system|refused global os.system"):
        load_dataset("cifar10", data_dir=str(fake_cifar10.root), download=False)
    assert not marker.exists()


def test_an_unverified_copy_is_marked_in_its_source(fake_cifar10):
    d = load_dataset("cifar10", data_dir=str(fake_cifar10.root), download=False)
    assert "UNVERIFIED" in d.source


def test_an_explicit_data_dir_never_falls_back_to_another_copy(tmp_path):
    # the Debian copy exists on this machine: an empty --data-dir must not silently use it
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        load_dataset("fashion_mnist", data_dir=str(empty), download=False)
    assert str(empty) in str(e.value) and "t10k-labels-idx1-ubyte" in str(e.value)
    assert "/usr/share/datasets" not in str(e.value).split("Ways to get it")[0]


def test_a_partial_data_dir_names_the_missing_files(tmp_path, fake_cifar10):
    (fake_cifar10.folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match="missing data_batch_4") as e:
        load_dataset("cifar10", data_dir=str(fake_cifar10.root), download=True)
    assert "only part of the dataset" in str(e.value)
    part = tmp_path / "fm"
    part.mkdir()
    (part / "train-labels-idx1-ubyte").write_bytes(b"\0" * 8)
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte"):
        load_dataset("fashion_mnist", data_dir=str(part), download=True)
