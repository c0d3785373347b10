"""benchmark/data/registry.py: the registry, the record every loader returns, where data is looked for."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from benchmark.data import DataError, DatasetArrays, list_datasets, load_dataset, register_dataset

pytestmark = pytest.mark.usefixtures("data_env")


# ----- registry -------------------------------------------------------------------------------

def test_registry_lists_the_datasets_and_rejects_unknown_names():
    assert {"fashion_mnist", "digits", "cifar10", "cifar100"} <= set(list_datasets())
    with pytest.raises(ValueError) as e:
        load_dataset("imagenet")
    for name in ("fashion_mnist", "digits", "cifar10", "cifar100"):
        assert name in str(e.value)


def test_register_dataset_refuses_a_duplicate_name():
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("digits")(lambda **kw: None)


def test_dataset_arrays_properties():
    d = DatasetArrays("x", torch.zeros(4, 3, 5, 6, dtype=torch.uint8), np.zeros(4, np.int64),
                      torch.zeros(2, 3, 5, 6, dtype=torch.uint8), np.zeros(2, np.int64),
                      ["a", "b", "c"], (0.5,) * 3, (0.25,) * 3, 0, False)
    assert d.num_classes == 3 and d.image_shape == (3, 5, 6)
    assert d.human_labels is None and d.coarse_labels is None




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
