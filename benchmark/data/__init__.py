"""Datasets: one registry (registry.py, which imports no loader) and one module per source.

Importing this package imports every loader module below, which fills the registry; a new
dataset is one module (``@register_dataset("name")`` on its loader) plus one line here, and the
dataset conformance test (tests/benchmark/data/test_conformance.py) then checks it like the others.
Images that stay as files (the real-world sets) live in ``files/``; the augmentations the training
loop applies on the device in ``augment/`` (its own package: it needs Kornia).
"""
from benchmark.data.registry import (DatasetArrays, cache_dir, clear_cache, file_digest, list_datasets,
                                     load_dataset, prefix_forms, prefixes, register_dataset, register_prefix)
from benchmark.errors import DataError, DatasetNotFound

# every loader, once (registration side effects); keep the list complete: a module missing here
# is a dataset missing everywhere
from benchmark.data import fashion_mnist, digits, cifar, synthetic, folders, animal10n, real_world  # noqa: F401,E402
from benchmark.data.cifar_n import attach_human_labels  # noqa: E402

__all__ = ["DataError", "DatasetArrays", "DatasetNotFound", "attach_human_labels", "cache_dir", "clear_cache",
           "file_digest", "list_datasets", "load_dataset", "prefix_forms", "prefixes", "register_dataset",
           "register_prefix"]
