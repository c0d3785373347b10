"""Every registered dataset against the contract of benchmark/data/registry.py's DatasetArrays,
each loaded from a small fixture in its official layout: a dataset is tested by being registered.

Checked for each: images (N, C, H, W) uint8 (a tensor or a StreamedImages view), labels (N,) int64
inside the class range, one class name per class, per-channel mean and std of the right length
(and equal to the training images' statistics where the loader computes them), ``verified``
either absent or int8 in {-1, 0, 1} (and then synthetic noise refused), the input geometry, and a
clear refusal when the data is not where it was said to be.

Adding a dataset is one module in benchmark/data/ plus its import line in benchmark/data/__init__.py;
its fixture goes into FIXTURES below (a registered dataset without one fails here), and the last
test shows the path end to end: a new loader module is written, imported, and checked like the rest.
"""
from __future__ import annotations

import importlib
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from benchmark.config import build_config
from benchmark.data import DatasetArrays, list_datasets, load_dataset, prefix_forms, registry
from benchmark.data.files import StreamedImages
from benchmark.data.registry import channel_stats
from benchmark.errors import DataError, UsageError
from benchmark.store import Store
from benchmark.training import prepare
from tests.benchmark.data.fake_cifar import write_fake_cifar10, write_fake_cifar100
from tests.benchmark.data.real_world_fixtures import (write_animal10n, write_clothing1m, write_food101n,
                                                      write_image_folder, write_webvision)

pytestmark = pytest.mark.usefixtures("real_world_env")

SYSTEM_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class Fixture:
    """How a dataset's fixture is written: ``write(root) -> (name to load, data_dir)``."""

    write: Callable[[Path], tuple[str, str | None]]
    stats: str = "published"
    """published: the loader's mean / std are fixed constants (the official ones; a fixture's
    pixels need not match them); data: computed from the training images, so they must."""
    findable: bool = True
    """False for data that is generated or bundled: nothing to find, nothing to refuse."""


def _fmnist(root: Path) -> tuple[str, str | None]:
    # the loader checks the upstream SHA-256 of every file, with no unverified mode: only the
    # real files pass (Debian's dataset-fashion-mnist, which scripts/setup.sh installs)
    if not (SYSTEM_FMNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return "fashion_mnist", str(SYSTEM_FMNIST)


def _named(name: str, writer) -> Callable[[Path], tuple[str, str | None]]:
    def write(root: Path) -> tuple[str, str | None]:
        writer(root)
        return name, str(root)
    return write


FIXTURES: dict[str, Fixture] = {
    "fashion_mnist": Fixture(_fmnist),
    "digits": Fixture(lambda root: ("digits", None), stats="data", findable=False),
    "cifar10": Fixture(lambda root: ("cifar10", str(write_fake_cifar10(root).root))),
    "cifar100": Fixture(lambda root: ("cifar100", str(write_fake_cifar100(root).root))),
    "synthetic_cifar10": Fixture(lambda root: ("synthetic_cifar10", None), stats="data", findable=False),
    "animal10n": Fixture(_named("animal10n", write_animal10n), stats="data"),
    "clothing1m": Fixture(_named("clothing1m", write_clothing1m)),
    "food101n": Fixture(_named("food101n", write_food101n)),
    "webvision_mini": Fixture(_named("webvision_mini", write_webvision)),
    "webvision_mini_227": Fixture(_named("webvision_mini_227", write_webvision)),
    "webvision_mini_224": Fixture(_named("webvision_mini_224", write_webvision)),
    "folder:PATH": Fixture(lambda root: (f"folder:{write_image_folder(root)}", None), stats="data"),
    "list:FILE": Fixture(lambda root: (f"list:{write_image_folder(root, as_list=True)}", None), stats="data"),
}


def _images(x, n_expected: int | None = None) -> tuple[int, ...]:
    """Check one image set; returns its shape (N, C, H, W)."""
    assert isinstance(x, (torch.Tensor, StreamedImages)), type(x)
    assert x.dtype == torch.uint8
    shape = tuple(int(s) for s in x.shape)
    assert len(shape) == 4 and shape[1] in (1, 3) and shape[2] > 0 and shape[3] > 0, shape
    if isinstance(x, torch.Tensor):
        assert x.device.type == "cpu" and x.is_contiguous()
    if n_expected is not None:
        assert shape[0] == n_expected
    batch = x[:4] if isinstance(x, torch.Tensor) else x[np.arange(min(4, shape[0]))]
    assert batch.dtype == torch.uint8 and tuple(batch.shape[1:]) == shape[1:]
    return shape


def _labels(y: np.ndarray, num_classes: int) -> None:
    assert isinstance(y, np.ndarray) and y.dtype == np.int64 and y.ndim == 1
    assert len(y) == 0 or (y.min() >= 0 and y.max() < num_classes)


def check_dataset(d: DatasetArrays, fixture: Fixture) -> None:
    """The DatasetArrays contract (see the module docstring)."""
    n, c, h, w = _images(d.train_x, len(d.train_y))
    assert _images(d.test_x, len(d.test_y))[1:] == (c, h, w)
    assert d.num_classes == len(d.classes) >= 2 and all(isinstance(k, str) for k in d.classes)
    _labels(d.train_y, d.num_classes)
    _labels(d.test_y, d.num_classes)
    assert len(d.mean) == len(d.std) == c
    assert all(0.0 <= m <= 1.0 for m in d.mean) and all(0.0 < s <= 1.0 for s in d.std)
    if fixture.stats == "data":
        sample = d.train_x[: min(n, 2048)]  # a batch: a tensor, whether train_x is one or a stream
        mean, std = channel_stats(sample.numpy())
        assert np.allclose(mean, d.mean, atol=0.01) and np.allclose(np.maximum(std, 1e-3), d.std, atol=0.01)
    assert d.crop_pad >= 0 and d.crop_size >= 0 and (not d.crop_size or d.crop_size <= min(h, w))
    assert d.input_shape == ((c, d.crop_size, d.crop_size) if d.crop_size else (c, h, w))
    assert d.image_shape == (c, h, w) and d.streamed == (not isinstance(d.train_x, torch.Tensor))
    if d.verified is not None:  # real noisy labels, verified (1 / 0) or not (-1)
        v = np.asarray(d.verified)
        assert v.dtype == np.int8 and v.shape == (n,) and set(np.unique(v)) <= {-1, 0, 1}
    for key, (x, y) in (d.extra_tests or {}).items():
        assert _images(x, len(y))[1:] == (c, h, w), key
        _labels(y, d.num_classes)
    assert isinstance(d.source, str) and d.source


def check_refusal(name: str, empty: Path) -> None:
    """A dataset looked for in an empty folder: a DataError (a DatasetNotFound for the licence-
    gated ones, exit code 2) naming where it looked, never another copy."""
    where = f"{name.split(':')[0]}:{empty / 'nothing'}" if ":" in name else name
    with pytest.raises(DataError) as e:
        load_dataset(where, data_dir=None if ":" in name else str(empty), download=False)
    assert str(empty) in str(e.value)


def _registered() -> list[str]:
    return list_datasets() + prefix_forms()


def test_every_registered_dataset_has_a_fixture():
    assert set(_registered()) == set(FIXTURES), ("a registered dataset needs a fixture in FIXTURES (and one "
                                                 "without a dataset must go)")


@pytest.mark.parametrize("key", _registered())
def test_a_registered_dataset_keeps_the_contract(key, tmp_path):
    fixture = FIXTURES[key]
    name, data_dir = fixture.write(tmp_path / "data")
    d = load_dataset(name, data_dir=data_dir)
    check_dataset(d, fixture)
    if d.verified is not None:  # synthetic noise on real noisy labels is refused before anything runs
        cfg = build_config({"dataset": name, "model": "mlp", "data_dir": data_dir or "", "device": "cpu",
                            "noise": {"kind": "sym", "rate": 0.2}})
        with pytest.raises(UsageError, match="carries real noisy labels"):
            prepare(cfg, Store(tmp_path / "runs"))


@pytest.mark.parametrize("key", [k for k in _registered() if FIXTURES.get(k, Fixture(None)).findable])
def test_a_missing_dataset_is_refused_clearly(key, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    check_refusal(key.replace("PATH", "").replace("FILE", ""), empty)


LOADER = '''
    """A toy dataset: DATA_DIR/toy/{train,test}.npz, each holding x (N, 1, 6, 6) uint8 and y (N,)."""
    import numpy as np

    from benchmark.data.registry import (DatasetArrays, channel_stats, contiguous_uint8, register_dataset,
                                         search_roots)
    from benchmark.errors import DatasetNotFound


    @register_dataset("toy_fixture")
    def load(*, data_dir, download, cifar_n_path):
        roots = search_roots(data_dir)
        d = next((r / "toy" for r in roots if (r / "toy" / "train.npz").is_file()), None)
        if d is None:
            raise DatasetNotFound(f"toy_fixture expects toy/train.npz, toy/test.npz; looked in "
                                  f"{', '.join(map(str, roots))}")
        tr, te = np.load(d / "train.npz"), np.load(d / "test.npz")
        mean, std = channel_stats(tr["x"])
        return DatasetArrays("toy_fixture", contiguous_uint8(tr["x"]), tr["y"].astype(np.int64),
                             contiguous_uint8(te["x"]), te["y"].astype(np.int64), ["a", "b", "c"],
                             mean, std, 0, False, source=str(d))
'''


def test_a_new_dataset_is_one_module_and_one_import_line(tmp_path, monkeypatch):
    """A loader module written here and imported (the one line benchmark/data/__init__.py would
    get) is listed, loaded through load_dataset and checked by the same conformance checks."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # forgotten after the test
    (tmp_path / "toy_dataset.py").write_text(textwrap.dedent(LOADER))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_dataset", raising=False)
    rng = np.random.default_rng(0)
    (tmp_path / "data" / "toy").mkdir(parents=True)
    for split, n in (("train", 30), ("test", 9)):
        np.savez(tmp_path / "data" / "toy" / f"{split}.npz", x=rng.integers(0, 256, (n, 1, 6, 6), dtype=np.uint8),
                 y=rng.integers(0, 3, n))

    importlib.import_module("toy_dataset")  # the registry line

    assert "toy_fixture" in list_datasets()
    check_dataset(load_dataset("toy_fixture", data_dir=str(tmp_path / "data")), Fixture(None, stats="data"))
    (tmp_path / "empty").mkdir()
    check_refusal("toy_fixture", tmp_path / "empty")
