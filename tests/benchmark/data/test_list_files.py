"""`list:FILE` refuses what folder: and the official loaders refuse: labels that make empty (or
billions of) classes, an image listed twice or in both splits, files that are not regular
files; and an empty or non-UTF-8 list is a message naming the file and line, not a traceback.
The official layouts' list files are read the same way (a FIFO in their place, bytes that are
not UTF-8)."""
import os
import subprocess
import sys

import pytest

from benchmark.data import DataError, clear_cache, load_dataset
from benchmark.errors import DatasetNotFound
from tests.benchmark.data.hostile import capped_child, fifo, memory_cap, no_hang
from tests.benchmark.data.real_world_fixtures import write_clothing1m, write_image_folder
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def fresh(real_world_env):
    clear_cache()
    yield real_world_env
    clear_cache()


@pytest.fixture
def mine(tmp_path):
    """tmp/mine/ with train/{cat,dog,fox}/{0..3}.png and test/{cat,dog,fox}/{0,1}.png."""
    return write_image_folder(tmp_path)


def _list(mine, *lines: str, name: str = "list.csv"):
    f = mine / name
    f.write_text("".join(f"{ln}\n" for ln in lines))
    return f"list:{f}"


def _good(mine) -> list[str]:
    """A valid list: two classes by index, train and test rows."""
    return ["train/cat/0.png,0", "train/cat/1.png,0", "train/dog/0.png,1", "train/dog/1.png,1",
            "test/cat/0.png,0,test", "test/dog/0.png,1,test"]


def test_a_valid_list_loads(mine):
    d = load_dataset(_list(mine, *_good(mine)))
    assert d.classes == ["0", "1"] and d.train_y.tolist() == [0, 0, 1, 1] and d.test_y.tolist() == [0, 1]


def test_a_huge_label_is_refused_by_line_without_building_its_classes(mine):
    spec = _list(mine, *_good(mine), "train/fox/0.png,99999999999")
    with memory_cap(), pytest.raises(DataError, match=r"list.csv: line 7: label 99999999999 makes 100000000000 classes "
                                        r"\(0..99999999999\), 99999999997 of them without a training image "
                                        r"\(e.g. 2, 3, 4, 5, 6\)"):
        load_dataset(spec)


def test_labels_that_leave_classes_empty_are_refused(mine):
    rows = ["train/cat/0.png,0", "train/cat/1.png,0", "train/dog/0.png,7", "test/cat/0.png,0,test"]
    with pytest.raises(DataError, match=r"line 3: label 7 makes 8 classes \(0..7\), 6 of them without a "
                                        r"training image \(e.g. 1, 2, 3, 4, 5\)"):
        load_dataset(_list(mine, *rows))
    # a class seen only in the test rows cannot be learnt either (folder: refuses a test class
    # folder that train lacks), by index or by name
    clear_cache()
    with pytest.raises(DataError, match=r"line 7: label 2 makes 3 classes .*e.g. 2\)"):
        load_dataset(_list(mine, *_good(mine), "test/fox/0.png,2,test"))
    named = ["train/cat/0.png,cat", "train/dog/0.png,dog", "test/fox/0.png,fox,test"]
    clear_cache()
    with pytest.raises(DataError, match=r"classes without a training image: 'fox' \(line 3\)"):
        load_dataset(_list(mine, *named, name="named.csv"))


def test_an_image_listed_twice_or_in_both_splits_is_refused(mine):
    with pytest.raises(DataError, match=r"lines 1 and 7: .*train/cat/0.png listed twice with different "
                                        r"labels \('0', '1'\)"):
        load_dataset(_list(mine, *_good(mine), "train/cat/0.png,1"))
    clear_cache()
    with pytest.raises(DataError, match=r"lines 1 and 7: .*train/cat/0.png listed twice"):
        load_dataset(_list(mine, *_good(mine), "train/cat/0.png,0", name="twice.csv"))
    clear_cache()
    # the same file under another spelling (./, a symlink) is the same image
    os.symlink(mine / "train" / "dog" / "1.png", mine / "alias.png")
    with pytest.raises(DataError, match=r"lines 4 and 7: the same image .*alias.png in train and test"):
        load_dataset(_list(mine, *_good(mine), "alias.png,1,test", name="leak.csv"))
    clear_cache()
    with pytest.raises(DataError, match=r"lines 1 and 7: the same image .*cat/0.png in train and test"):
        load_dataset(_list(mine, *_good(mine), "./train/cat/0.png,0,test", name="leak2.csv"))


def test_empty_and_comment_only_lists_are_refused(mine):
    with pytest.raises(DataError, match=r"empty.csv: no rows, only blank or comment lines"):
        load_dataset(_list(mine, name="empty.csv"))
    clear_cache()
    with pytest.raises(DataError, match=r"comments.csv: no rows"):
        load_dataset(_list(mine, "# path,label,split", "", "   # nothing", name="comments.csv"))


def test_a_list_that_is_not_utf8_is_named_by_line(mine):
    f = mine / "latin1.csv"
    f.write_bytes("train/cat/0.png,0\ntrain/dog/0.png,chien\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv, line 2: not UTF-8 text \(byte 0xe9\)"):
        load_dataset(f"list:{f}")


def test_listed_paths_that_are_not_regular_files_are_refused_not_opened(mine):
    f = fifo(mine / "train" / "cat" / "pipe.png")
    (mine / "train" / "cat" / "dir.png").mkdir()
    rows = [*_good(mine), "train/cat/pipe.png,0", "train/cat/dir.png,0", "/dev/zero,1"]
    with no_hang(f), pytest.raises(DataError, match=r"line 7: .*pipe.png is a FIFO, not a regular file: "
                                                   r"refused; line 8: .*dir.png is a directory.*; line 9: "
                                                   r"/dev/zero is a character device"):
        load_dataset(_list(mine, *rows))
    # the list file itself: a FIFO or a folder in its place is named, not read
    g = fifo(mine / "pipe.csv")
    with no_hang(g), pytest.raises(DatasetNotFound, match=r"pipe.csv is a FIFO, not a list file"):
        load_dataset(f"list:{g}")
    with pytest.raises(DatasetNotFound, match=r"train is a directory, not a list file"):
        load_dataset(f"list:{mine / 'train'}")


def test_official_list_files_are_read_safely(tmp_path):
    facts = write_clothing1m(tmp_path)
    kv = facts["folder"] / "noisy_label_kv.txt"
    good = kv.read_bytes()
    kv.write_bytes(good + b"images/9/99/\xff.jpg 3\n")
    n = good.count(b"\n") + 1
    with pytest.raises(DataError, match=rf"noisy_label_kv.txt, line {n}: not UTF-8 text \(byte 0xff\)"):
        load_dataset("clothing1m", data_dir=str(tmp_path))
    kv.unlink()
    f = fifo(kv)
    clear_cache()
    with no_hang(f), pytest.raises(DataError, match=r"noisy_label_kv.txt: a FIFO, not a regular file"):
        load_dataset("clothing1m", data_dir=str(tmp_path))


def test_runner_refuses_bad_lists_with_a_message(mine, tmp_path):
    """Each was a traceback (or unbounded memory) before: now one line naming file and line,
    exit code 1, and no run folder."""
    (mine / "empty.csv").write_text("# nothing\n")
    (mine / "latin1.csv").write_bytes(b"train/cat/0.png,\xe9\n")
    _list(mine, *_good(mine), "train/fox/0.png,99999999999", name="huge.csv")
    for name, words in (("huge.csv", "line 7: label 99999999999 makes 100000000000 classes"),
                        ("empty.csv", "no rows"), ("latin1.csv", "line 1: not UTF-8")):
        p = subprocess.run([sys.executable, "runner.py", "run", "--model", "mlp", "--epochs", "1",
                            "--noise", "none", "--runs", str(tmp_path / "runs"), "--wandb", "disabled",
                            "--dataset", f"list:{mine / name}"], capture_output=True, text=True,
                           cwd=str(ROOT), timeout=240, env={**os.environ, "WANDB_MODE": "disabled"},
                           preexec_fn=capped_child())
        assert p.returncode == 1, (name, p.stderr[-2000:])
        assert f"{name}" in p.stderr and words in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
        assert not list((tmp_path / "runs").glob("*/config.json"))
