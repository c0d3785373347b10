"""Image-folder datasets (Animal-10N, folder:, list:) on small fixtures in their official layouts."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from benchmark.data import DataError, clear_cache, load_dataset
from benchmark.errors import DatasetNotFound
from tests.benchmark.data.real_world_fixtures import write_animal10n


def _jpeg(path, rng, size=64, grey=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size) if grey else (size, size, 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path, quality=95)


@pytest.fixture(autouse=True)
def fresh():
    clear_cache()
    yield
    clear_cache()


def test_animal10n_reads_labels_from_file_names(tmp_path, monkeypatch):
    monkeypatch.setenv("NLB_ALLOW_UNVERIFIED_DATA", "1")
    labels = write_animal10n(tmp_path)
    d = load_dataset("animal10n", data_dir=str(tmp_path))
    assert tuple(d.train_x.shape) == (30, 3, 64, 64) and tuple(d.test_x.shape) == (10, 3, 64, 64)
    # sorted file names: <label>_<number> sorts by label first
    expect = sorted((f"{y}_{i:05d}.jpg", y) for (s, i), y in labels.items() if s == "training")
    assert d.train_y.tolist() == [y for _, y in expect]
    assert d.num_classes == 10 and d.crop_pad == 8


def test_animal10n_refuses_an_incomplete_copy_and_names_the_layout(tmp_path, monkeypatch):
    monkeypatch.delenv("NLB_ALLOW_UNVERIFIED_DATA", raising=False)
    write_animal10n(tmp_path)
    with pytest.raises(DataError, match="30 images, Animal-10N has 50000"):
        load_dataset("animal10n", data_dir=str(tmp_path))
    with pytest.raises(DatasetNotFound, match="training/ .50,000 images"):
        load_dataset("animal10n", data_dir=str(tmp_path / "empty"))


def test_animal10n_bad_names_and_corrupt_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NLB_ALLOW_UNVERIFIED_DATA", "1")
    write_animal10n(tmp_path)
    bad = tmp_path / "animal-10n" / "training" / "cat_1.jpg"
    bad.write_bytes(b"x")
    with pytest.raises(DataError, match="cat_1.jpg"):
        load_dataset("animal10n", data_dir=str(tmp_path))
    bad.unlink()
    clear_cache()
    (tmp_path / "animal-10n" / "testing" / "3_99999.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="3_99999.jpg: not a readable image"):
        load_dataset("animal10n", data_dir=str(tmp_path))


def test_folder_layout_classes_and_resize(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 4), ("test", 2)):
        for c in ("dog", "cat", "emu"):
            for i in range(n):
                _jpeg(tmp_path / "mine" / split / c / f"{i}.jpg", rng, size=20 + i)
    with pytest.raises(DataError, match="add @S"):
        load_dataset(f"folder:{tmp_path / 'mine'}")
    d = load_dataset(f"folder:{tmp_path / 'mine'}@16")
    assert d.classes == ["cat", "dog", "emu"]
    assert tuple(d.train_x.shape) == (12, 3, 16, 16) and d.train_y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert d.test_y.tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(DatasetNotFound, match="ImageFolder layout.*missing: .*nowhere/train"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")


def test_list_file_labels_splits_and_errors(tmp_path):
    rng = np.random.default_rng(2)
    lines = []
    for i in range(6):
        _jpeg(tmp_path / "img" / f"{i}.png", rng, size=12, grey=True)
        lines.append(f"img/{i}.png,{['b', 'a'][i % 2]}{',test' if i >= 4 else ''}")
    (tmp_path / "data.txt").write_text("# path,label,split\n" + "\n".join(lines) + "\n")
    d = load_dataset(f"list:{tmp_path / 'data.txt'}")
    assert d.classes == ["a", "b"] and tuple(d.train_x.shape) == (4, 1, 12, 12)
    assert d.train_y.tolist() == [1, 0, 1, 0] and d.test_y.tolist() == [1, 0]
    (tmp_path / "bad.txt").write_text("img/0.png,1\nimg/missing.png,0\nimg/1.png,0,valid\n")
    with pytest.raises(DataError, match="split 'valid' is not train or test.*missing"):
        load_dataset(f"list:{tmp_path / 'bad.txt'}")
    with pytest.raises(DatasetNotFound, match="path,label"):
        load_dataset(f"list:{tmp_path / 'none.txt'}")


def test_runner_trains_on_animal10n_and_exits_2_when_it_is_missing(tmp_path):
    env_ok = {"NLB_ALLOW_UNVERIFIED_DATA": "1", "WANDB_MODE": "offline", "MPLBACKEND": "Agg"}
    import os
    write_animal10n(tmp_path / "data", n_train=40, n_test=10)
    base = [sys.executable, "runner.py", "run", "--dataset", "animal10n", "--model", "cnn", "--noise", "none",
            "--epochs", "1", "--runs", str(tmp_path / "runs"), "--wandb", "disabled", "--json"]
    p = subprocess.run(base + ["--data-dir", str(tmp_path / "data")], capture_output=True, text=True,
                       env={**os.environ, **env_ok})
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert 0.0 <= res["test/acc_last"] <= 1.0
    q = subprocess.run(base + ["--data-dir", str(tmp_path / "nothing")], capture_output=True, text=True,
                       env={**os.environ, **env_ok})
    assert q.returncode == 2 and "training/ (50,000 images)" in q.stderr and "Traceback" not in q.stderr
