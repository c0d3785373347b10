"""benchmark/data/cifar_n.py: the official CIFAR-N label files, verified before they are unpickled."""
from __future__ import annotations

import io
import shutil
import urllib.request

import numpy as np
import pytest
import torch

from benchmark.data import DataError, DatasetArrays, attach_human_labels, cifar_n, file_digest, load_dataset
from benchmark.data.cifar_n import HUMAN_SETS, find_cifar_n, load_cifar_n

pytestmark = pytest.mark.usefixtures("data_env")

FLIP_RATES = {("cifar10", "aggre"): 9.01, ("cifar10", "rand1"): 17.23,
              ("cifar10", "rand2"): 18.12, ("cifar10", "rand3"): 17.64,
              ("cifar10", "worst"): 40.21, ("cifar100", "noisy"): 40.20}


def test_embedded_digests_match_the_shared_sha256sums(cifar_n_dir):
    sums = dict(reversed(line.split()) for line in (cifar_n_dir / "SHA256SUMS").read_text().splitlines()
                if line.strip())
    for ds, fname in cifar_n.CIFAR_N_FILES.items():
        assert cifar_n.CIFAR_N_SHA256[ds] == sums[fname]
        assert file_digest(cifar_n_dir / fname) == sums[fname]
        assert cifar_n.CIFAR_N_URLS[ds].endswith("/UCSC-REAL/cifar-10-100n/raw/main/data/" + fname)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_label_sets_have_the_published_flip_rates(cifar_n_dir, dataset):
    labels = load_cifar_n(dataset, path=cifar_n_dir)
    assert set(labels) == {"clean", *HUMAN_SETS[dataset]}
    for name, y in labels.items():
        assert y.shape == (50000,) and y.dtype == np.int64
    for name in HUMAN_SETS[dataset]:
        rate = round(100 * float(np.mean(labels[name] != labels["clean"])), 2)
        assert rate == FLIP_RATES[(dataset, name)], name


def test_a_changed_byte_is_refused_before_unpickling(cifar_n_dir, tmp_path, monkeypatch):
    raw = bytearray((cifar_n_dir / "CIFAR-10_human.pt").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    bad = tmp_path / "CIFAR-10_human.pt"
    bad.write_bytes(bytes(raw))
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(a) or {})
    with pytest.raises(DataError) as e:
        load_cifar_n("cifar10", path=bad)
    msg = str(e.value)
    assert "sha256" in msg and cifar_n.CIFAR_N_SHA256["cifar10"] in msg
    assert file_digest(bad) in msg and cifar_n.CIFAR_N_URLS["cifar10"] in msg
    assert calls == []  # never unpickled


def test_find_cifar_n_search_order(tmp_path, monkeypatch, data_env):
    name = "CIFAR-100_human.pt"
    explicit, env, ddir = tmp_path / "explicit", tmp_path / "env", tmp_path / "dd"
    for p in (explicit / name, env / name, ddir / "cifar-n" / name, data_env / "cifar-n" / name):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    monkeypatch.setenv("NLB_CIFAR_N_DIR", str(env))
    assert find_cifar_n("cifar100", path=explicit / name, data_dir=ddir) == explicit / name
    assert find_cifar_n("cifar100", path=explicit, data_dir=ddir) == explicit / name
    assert find_cifar_n("cifar100", path=tmp_path / "nothing", data_dir=ddir) == env / name
    monkeypatch.delenv("NLB_CIFAR_N_DIR")
    assert find_cifar_n("cifar100", data_dir=ddir) == ddir / "cifar-n" / name
    assert find_cifar_n("cifar100") == data_env / "cifar-n" / name
    (data_env / "cifar-n" / name).unlink()
    assert find_cifar_n("cifar100") is None
    assert find_cifar_n("cifar10", path=explicit) is None  # only the CIFAR-100 file is there
    with pytest.raises(ValueError, match="cifar10"):
        find_cifar_n("mnist")


def test_missing_file_without_download_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as e:
        load_cifar_n("cifar10", path=tmp_path)
    msg = str(e.value)
    assert "CIFAR-10_human.pt" in msg and cifar_n.CIFAR_N_URLS["cifar10"] in msg
    assert "NLB_CIFAR_N_DIR" in msg and "download" in msg


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_verifies_then_renames(cifar_n_dir, monkeypatch, data_env):
    payload = (cifar_n_dir / "CIFAR-100_human.pt").read_bytes()
    urls = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return _FakeResponse(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    labels = load_cifar_n("cifar100", download=True)
    assert urls == [cifar_n.CIFAR_N_URLS["cifar100"]]
    assert sorted(p.name for p in (data_env / "cifar-n").iterdir()) == ["CIFAR-100_human.pt"]
    assert round(100 * float(np.mean(labels["noisy"] != labels["clean"])), 2) == 40.20
    # now cached: no second download
    load_cifar_n("cifar100", download=True)
    assert len(urls) == 1


def test_download_of_a_wrong_file_leaves_nothing_behind(monkeypatch, data_env):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _FakeResponse(b"evil"))
    with pytest.raises(DataError, match="sha256"):
        load_cifar_n("cifar10", download=True)
    assert list((data_env / "cifar-n").iterdir()) == []


def _cifar10_like(train_y: np.ndarray) -> DatasetArrays:
    x = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)  # attach_human_labels only reads train_y
    return DatasetArrays("cifar10", x, train_y, x, np.zeros(1, np.int64), [str(i) for i in range(10)],
                         (0.5,) * 3, (0.25,) * 3, 4, True)


def test_attach_checks_the_training_order(cifar_n_dir):
    clean = load_cifar_n("cifar10", path=cifar_n_dir)["clean"]
    d = _cifar10_like(clean.copy())
    attach_human_labels(d, cifar_n_path=str(cifar_n_dir))
    assert set(d.human_labels) == set(HUMAN_SETS["cifar10"])
    assert round(100 * float(np.mean(d.human_labels["worst"] != d.train_y)), 2) == 40.21
    shuffled = _cifar10_like(np.random.default_rng(0).permutation(clean))
    with pytest.raises(DataError, match="training order"):
        attach_human_labels(shuffled, cifar_n_path=str(cifar_n_dir))


def test_attach_without_a_file_is_silent_unless_a_path_was_given(tmp_path):
    d = _cifar10_like(np.zeros(50000, np.int64))
    attach_human_labels(d)  # nothing found, download off: no error
    assert d.human_labels is None
    with pytest.raises(DataError, match="CIFAR-10_human.pt"):
        attach_human_labels(d, cifar_n_path=str(tmp_path / "missing"))


def test_tiny_cifar_does_not_get_cifar_n_labels(fake_cifar10, cifar_n_dir, monkeypatch):
    monkeypatch.setenv("NLB_CIFAR_N_DIR", str(cifar_n_dir))
    with pytest.warns(UserWarning, match="not attached"):
        d = load_dataset("cifar10", data_dir=str(fake_cifar10.root), download=False)
    assert d.human_labels is None and len(d.train_y) == 100


def test_attach_refuses_a_tampered_file(cifar_n_dir, tmp_path):
    d = _cifar10_like(np.zeros(50000, np.int64))
    bad = tmp_path / "n" / "CIFAR-10_human.pt"
    bad.parent.mkdir()
    shutil.copy(cifar_n_dir / "CIFAR-10_human.pt", bad)
    with open(bad, "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataError, match="sha256"):
        attach_human_labels(d, cifar_n_path=str(bad.parent))
