"""Fixtures shared by the harness tests: data locations, fake CIFAR copies, the real-world fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmark import settings
from tests.benchmark.data.fake_cifar import FakeCifar, write_fake_cifar10, write_fake_cifar100


def shared_cifar_n_dir() -> Path:
    """The shared CIFAR-N copy: $NLB_SHARED_DIR/data/cifar-n, else <repo>/../shared/data/cifar-n."""
    env = settings.shared_dir()
    shared = Path(env) if env else Path(__file__).resolve().parents[3] / "shared"
    return shared / "data" / "cifar-n"


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """No data locations from the caller's environment; an empty cache dir; a fresh memo."""
    from benchmark import data
    for var in ("NLB_DATA_DIR", "NLB_CIFAR_N_DIR"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("NLB_CACHE_DIR", str(cache))
    data.clear_cache()
    yield cache
    data.clear_cache()


@pytest.fixture
def no_system_fmnist(monkeypatch):
    """Hide /usr/share/datasets/fashion-mnist from the loader: patched in the module that reads
    it (a patch on the package's face would leave the loader's own name in place)."""
    from benchmark.data import fashion_mnist
    monkeypatch.setattr(fashion_mnist, "SYSTEM_FASHION_MNIST_DIRS", ())


@pytest.fixture
def fake_cifar10(tmp_path, monkeypatch) -> FakeCifar:
    """A tiny CIFAR-10 copy; its MD5s are not torchvision's, so it loads only as an unverified copy."""
    monkeypatch.setenv("NLB_ALLOW_UNVERIFIED_DATA", "1")
    return write_fake_cifar10(tmp_path / "data")


@pytest.fixture
def fake_cifar100(tmp_path, monkeypatch) -> FakeCifar:
    monkeypatch.setenv("NLB_ALLOW_UNVERIFIED_DATA", "1")
    return write_fake_cifar100(tmp_path / "data")


@pytest.fixture(scope="session")
def cifar_n_dir() -> Path:
    d = shared_cifar_n_dir()
    if not (d / "CIFAR-10_human.pt").is_file() or not (d / "CIFAR-100_human.pt").is_file():
        pytest.skip(f"CIFAR-N label files not found in {d} (set NLB_SHARED_DIR to the folder "
                    f"holding data/cifar-n)")
    return d


@pytest.fixture
def real_world_env(tmp_path, monkeypatch):
    """For the real-world fixtures: their small copies accepted (NLB_ALLOW_UNVERIFIED_DATA), an
    empty cache dir (packs, stamps), the default memory budget and decoder, a fresh memo."""
    from benchmark import data
    monkeypatch.setenv("NLB_ALLOW_UNVERIFIED_DATA", "1")
    monkeypatch.setenv("NLB_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("NLB_DATA_DIR", "NLB_MEMORY_BUDGET_GB", "NLB_DECODE"):
        monkeypatch.delenv(var, raising=False)
    data.clear_cache()
    yield tmp_path
    data.clear_cache()
