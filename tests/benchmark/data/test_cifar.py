"""benchmark/data/cifar.py: CIFAR-10/100 in torchvision's format, MD5-checked, read by a
restricted unpickler."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data import DataError, clear_cache, load_dataset

pytestmark = pytest.mark.usefixtures("data_env")


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
    clear_cache()
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
