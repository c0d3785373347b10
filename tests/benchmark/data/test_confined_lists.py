"""The official layouts' lists (Clothing1M, Food-101N, WebVision) name images inside their dataset
folder. A key that leaves it, lexically (``../../private.jpg``, an absolute path) or through a
symlink, is refused naming the list file and line, by the loader and by ``pack`` (which wrote the
outside image into a pack); a layout whose image folder is itself a link to another disk stays
accepted."""
import os

import pytest

from benchmark.cli import main
from benchmark.data import DataError, clear_cache, load_dataset
from tests.benchmark.data.real_world_fixtures import _jpeg, write_clothing1m, write_food101n, write_webvision


pytestmark = pytest.mark.usefixtures("real_world_env")  # fixture copies accepted, a fresh memo


@pytest.fixture
def private(tmp_path):
    """tmp/private.jpg: a file of the machine no dataset folder (under tmp/data/) holds."""
    import numpy as np
    _jpeg(tmp_path / "private.jpg", np.random.default_rng(9))
    return tmp_path / "private.jpg"


def _append(file, line: str) -> int:
    """Append ``line`` to ``file``; its line number."""
    text = file.read_text()
    file.write_text(text + line + "\n")
    return text.count("\n") + 1


def _clothing_with(tmp_path, key: str) -> tuple[int, int]:
    """A Clothing1M copy under tmp/data/ whose noisy-train list and label table also name ``key``;
    (line in noisy_label_kv.txt, line in noisy_train_key_list.txt)."""
    d = write_clothing1m(tmp_path / "data")["folder"]
    return _append(d / "noisy_label_kv.txt", f"{key} 3"), _append(d / "noisy_train_key_list.txt", key)


@pytest.mark.parametrize("key", ["../../private.jpg", "ABSOLUTE"])
def test_clothing1m_refuses_keys_that_leave_its_folder(tmp_path, private, key):
    key = str(private) if key == "ABSOLUTE" else key
    kv_line, _ = _clothing_with(tmp_path, key)
    with pytest.raises(DataError, match=rf"noisy_label_kv.txt, line {kv_line}: '{key}' leaves the dataset "
                                        r"folder"):
        load_dataset("clothing1m", data_dir=str(tmp_path / "data"))


def test_pack_refuses_an_outside_key_and_writes_nothing(tmp_path, private, capsys):
    """The audit's case: `NLB_ALLOW_UNVERIFIED_DATA=1 runner.py pack --dataset clothing1m` exited 0
    with the outside image in the pack."""
    kv_line, _ = _clothing_with(tmp_path, "../../private.jpg")
    assert main(["pack", "--dataset", "clothing1m", "--data-dir", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert f"noisy_label_kv.txt, line {kv_line}: '../../private.jpg' leaves the dataset folder" in err
    assert "Traceback" not in err
    packs = tmp_path / "cache" / "packs"
    assert not packs.exists() or not list(packs.iterdir())


def test_a_symlink_out_of_the_folder_is_refused_by_line_and_a_linked_image_folder_is_not(tmp_path, private,
                                                                                          capsys):
    key = "images/0/00/link.jpg"
    _, list_line = _clothing_with(tmp_path, key)
    d = tmp_path / "data" / "clothing1m"
    os.symlink(private, d / key)
    with pytest.raises(DataError, match=rf"noisy_train_key_list.txt, line {list_line}: {key} is outside the "
                                        rf"dataset folder \(its real path is {private}"):
        load_dataset("clothing1m", data_dir=str(tmp_path / "data"))
    assert main(["pack", "--dataset", "clothing1m", "--data-dir", str(tmp_path / "data")]) == 1
    assert f"line {list_line}: {key} is outside the dataset folder" in capsys.readouterr().err
    # images/ kept on another disk, linked into the layout (a common setup): its images are fine
    (d / key).unlink()
    (d / "images").rename(tmp_path / "disk")
    os.symlink(tmp_path / "disk", d / "images")
    os.symlink(tmp_path / "disk" / "0" / "00" / "000000.jpg", tmp_path / "disk" / "0" / "00" / "link.jpg")
    clear_cache()
    assert len(load_dataset("clothing1m", data_dir=str(tmp_path / "data")).train_y) == 14 * 4 + 1


def test_food101n_refuses_keys_that_leave_its_folders(tmp_path, private):
    facts = write_food101n(tmp_path / "data")
    line = _append(facts["folder"] / "meta" / "imagelist.tsv", "apple_pie/../../../../private.jpg")
    with pytest.raises(DataError, match=rf"imagelist.tsv, line {line}: 'apple_pie/../../../../private.jpg' "
                                        r"leaves the dataset folder"):
        load_dataset("food101n", data_dir=str(tmp_path / "data"))
    facts = write_food101n(tmp_path / "data2")
    line = _append(facts["test_folder"] / "meta" / "test.txt", "apple_pie/../../../../private")
    clear_cache()
    with pytest.raises(DataError, match=rf"test.txt, line {line}: 'apple_pie/../../../../private.jpg' leaves"):
        load_dataset("food101n", data_dir=str(tmp_path / "data2"))


@pytest.mark.parametrize("where", ["train", "val", "absolute"])
def test_webvision_refuses_keys_that_leave_its_folder(tmp_path, private, where):
    write_webvision(tmp_path / "data")
    info = tmp_path / "data" / "webvision" / "info"
    if where == "val":
        line = _append(info / "val_filelist.txt", "../../../private.jpg 3")
        shown = "val_images_256/../../../private.jpg"
    else:
        shown = "../../private.jpg" if where == "train" else str(private)
        line = _append(info / "train_filelist_google.txt", f"{shown} 3")
    file = "val_filelist.txt" if where == "val" else "train_filelist_google.txt"
    with pytest.raises(DataError, match=rf"{file}, line {line}: '{shown}' leaves the dataset folder"):
        load_dataset("webvision_mini", data_dir=str(tmp_path / "data"))
