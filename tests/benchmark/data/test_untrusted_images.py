"""Image files that would break the decoder or the loader: a decompression bomb (a PNG of
20000 x 20000 pixels) and things named as images that are not regular files (a FIFO, a folder,
a device). Each is refused with a DataError naming the file (exit code 1 from the CLI, no
traceback), on every path an image takes: folder:, the official layouts, the streaming reader
and the GPU path's file reader; nothing blocks."""
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmark.data import DataError, clear_cache, load_dataset
from benchmark.data.folders import decode_images
from benchmark.data.files.streaming import FileReader, _image_bytes, decode_resized
from tests.benchmark.data.hostile import fifo, huge_png, no_hang
from tests.benchmark.data.real_world_fixtures import (write_animal10n, write_clothing1m, write_image_folder,
                                                      write_webvision)
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def fresh(real_world_env):
    clear_cache()
    yield real_world_env
    clear_cache()


def _run(tmp_path, dataset, timeout=240):
    """`runner.py run` ($RUN of the brief) on ``dataset``, with a deadline: a hang fails."""
    cmd = [sys.executable, "runner.py", "run", "--model", "mlp", "--epochs", "1", "--noise", "none",
           "--runs", str(tmp_path / "runs"), "--wandb", "disabled", "--dataset", dataset]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), timeout=timeout,
                          env={**os.environ, "WANDB_MODE": "disabled"})


# ----- decompression bombs ----------------------------------------------------------------------

def test_a_bomb_in_a_class_folder_is_refused_by_name(tmp_path):
    d = write_image_folder(tmp_path)
    huge_png(d / "train" / "cat" / "zz.png")
    with pytest.raises(DataError, match=r"train/cat/zz.png: image too large to decode"):
        load_dataset(f"folder:{d}")
    with pytest.raises(DataError, match="zz.png: image too large"):
        decode_images([d / "train" / "cat" / "zz.png"], 16)


def test_runner_refuses_a_bomb_in_a_folder_dataset_without_a_traceback(tmp_path):
    d = write_image_folder(tmp_path)
    huge_png(d / "train" / "cat" / "zz.png")
    p = _run(tmp_path, f"folder:{d}")
    assert p.returncode == 1, p.stderr[-2000:]
    assert "zz.png: image too large to decode" in p.stderr and "Traceback" not in p.stderr
    assert not list((tmp_path / "runs").glob("*/result.json"))


def test_a_bomb_in_clothing1m_is_refused_in_memory_and_streamed(tmp_path, monkeypatch):
    facts = write_clothing1m(tmp_path)
    key = facts["train"][2]
    huge_png(facts["folder"] / key)  # a PNG under a .jpg name: Pillow reads the content
    with pytest.raises(DataError, match=key + ": image too large to decode"):
        load_dataset("clothing1m", data_dir=str(tmp_path))
    monkeypatch.setenv("NLB_MEMORY_BUDGET_GB", "0")  # streamed: the batch that holds it fails
    clear_cache()
    d = load_dataset("clothing1m", data_dir=str(tmp_path))
    assert d.streamed
    with pytest.raises(DataError, match=key + ": image too large to decode"):
        d.train_x[np.arange(4)]


def test_the_streaming_reader_and_the_gpu_file_reader_refuse_a_bomb(tmp_path):
    bomb = huge_png(tmp_path / "bomb.png")
    with pytest.raises(DataError, match="bomb.png: image too large to decode"):
        FileReader([bomb], 32, workers=2).read(np.array([0]))
    with pytest.raises(DataError, match="bomb.png: image too large to decode"):
        _image_bytes(str(bomb))


def test_the_limit_is_pillows(tmp_path, monkeypatch):
    """The limit is Pillow's own (twice Image.MAX_IMAGE_PIXELS): lowered, a small image is
    refused by both decoders; at its default the same image decodes."""
    from PIL import Image
    d = write_image_folder(tmp_path)
    img = d / "train" / "cat" / "0.png"
    assert decode_resized(img, 8).shape == (8, 8, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 16 x 16 = 256 > 2 x 100
    with pytest.raises(DataError, match="0.png: image too large"):
        decode_resized(img, 8)
    with pytest.raises(DataError, match="0.png: image too large"):
        decode_images([img], None)


# ----- things named as images that are not regular files ---------------------------------------

def test_a_fifo_in_a_class_folder_is_refused_not_opened(tmp_path):
    d = write_image_folder(tmp_path)
    f = fifo(d / "train" / "cat" / "zz.png")
    with no_hang(f), pytest.raises(DataError, match=r"train/cat: .*zz.png \(a FIFO\).*refused"):
        load_dataset(f"folder:{d}")
    f.unlink()
    (d / "test" / "dog" / "sub.png").mkdir()  # a folder named as an image: refused alike
    clear_cache()
    with pytest.raises(DataError, match=r"sub.png \(a directory\)"):
        load_dataset(f"folder:{d}")


def test_runner_refuses_a_fifo_in_a_folder_dataset_instead_of_hanging(tmp_path):
    d = write_image_folder(tmp_path)
    fifo(d / "train" / "cat" / "zz.png")
    p = _run(tmp_path, f"folder:{d}", timeout=240)  # today's code blocks here forever
    assert p.returncode == 1, p.stderr[-2000:]
    assert "zz.png (a FIFO)" in p.stderr and "Traceback" not in p.stderr


def test_readers_refuse_what_is_not_a_regular_file(tmp_path):
    f = fifo(tmp_path / "pipe.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with no_hang(f):
        for path, kind in ((f, "a FIFO"), (tmp_path / "dir.jpg", "a directory"),
                           ("/dev/zero", "a character device")):
            with pytest.raises(DataError, match=f"{path}: {kind}, not a regular file"):
                FileReader([path], 16, workers=1).read(np.array([0]))
            with pytest.raises(DataError, match=f"{path}: {kind}, not a regular file"):
                _image_bytes(str(path))
            with pytest.raises(DataError, match=f"{path}: {kind}, not a regular file"):
                decode_images([path], 16)


def test_official_layout_folders_refuse_a_fifo(tmp_path, monkeypatch):
    write_animal10n(tmp_path)
    f = fifo(tmp_path / "animal-10n" / "training" / "3_99999.jpg")
    with no_hang(f), pytest.raises(DataError, match=r"3_99999.jpg \(a FIFO\)"):
        load_dataset("animal10n", data_dir=str(tmp_path))
    facts = write_webvision(tmp_path / "wv")
    g = fifo(tmp_path / "wv" / "imagenet" / "val" / facts["wnids"][0] / "zz.JPEG")
    with no_hang(g), pytest.raises(DataError, match=r"zz.JPEG \(a FIFO\)"):
        load_dataset("webvision_mini", data_dir=str(tmp_path / "wv"))
