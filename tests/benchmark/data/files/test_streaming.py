"""The streaming data path: decoding equals torchvision's transforms, batches equal the in-memory
images, and a run streamed from files or from a pack gives the numbers of the in-memory run."""
import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.config import RunConfig
from benchmark.data import clear_cache
from benchmark.data.augment import Augmenter
from benchmark.data.files.streaming import (FileReader, PackedReader, StreamedImages, decode_mode,
                                            decode_resized)
from benchmark.errors import UsageError
from benchmark.settings import memory_budget
from tests.benchmark.data.real_world_fixtures import write_clothing1m


@pytest.fixture(autouse=True)
def env(real_world_env):
    yield real_world_env


@pytest.mark.parametrize("w,h,mode", [(50, 30, "RGB"), (30, 50, "RGB"), (40, 40, "RGB"), (37, 23, "L"),
                                      (10, 14, "RGB")])
def test_decode_equals_torchvision_resize_and_centre_crop(tmp_path, w, h, mode):
    from torchvision import transforms
    rng = np.random.default_rng(w * h)
    shape = (h, w) if mode == "L" else (h, w, 3)
    path = tmp_path / "im.png"  # lossless: the comparison is of the geometry, not of JPEG
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    size = 24
    ref = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size)])
    with Image.open(path) as im:
        want = np.asarray(ref(im.convert("RGB")))
    assert np.array_equal(decode_resized(path, size), want)


def _files(tmp_path, n=12):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_streamed_batches_equal_the_decoded_images_in_any_order(tmp_path):
    paths = _files(tmp_path)
    reader = FileReader(paths, 16, workers=3)
    full = torch.from_numpy(np.stack([decode_resized(p, 16) for p in paths])).permute(0, 3, 1, 2)
    x = StreamedImages(reader, (3, 16, 16))
    assert x.shape == (12, 3, 16, 16) and len(x) == 12
    idx = torch.tensor([7, 0, 11, 3, 3])
    assert torch.equal(x[idx], full[idx])                    # fancy index, repeats, order kept
    assert torch.equal(x[2:9], full[2:9])                    # slice
    sub = x.subset(torch.tensor([10, 4, 6]))                 # a view of a view
    assert torch.equal(sub[1:], full[[4, 6]]) and torch.equal(sub.materialise(), full[[10, 4, 6]])
    # a pack of the same pixels reads the same batches
    file = tmp_path / "train.npy"
    np.save(file, full.numpy())
    packed = StreamedImages(PackedReader(file), (3, 16, 16))
    assert torch.equal(packed[idx], full[idx]) and torch.equal(packed.subset(idx)[::2], full[idx][::2])


def test_the_nvjpeg_path_decodes_close_to_pillow(tmp_path):
    """read_gpu is the GPU decoder's code path; on the CPU torchvision decodes the same JPEGs with
    libjpeg, and the device resize is antialiased bilinear: close to Pillow, not equal (which is
    why NLB_DECODE=gpu is part of a run's numerics)."""
    paths = _files(tmp_path, 6)
    reader = FileReader(paths, 16)
    pos = np.array([5, 1, 2])
    got = reader.read_gpu(pos, torch.device("cpu")).float()
    want = reader.read(pos).float()
    assert got.shape == want.shape
    assert (got - want).abs().mean() < 6.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_nvjpeg_on_the_gpu_decodes_close_to_pillow(tmp_path):
    """The same path with nvJPEG on a CUDA device: close to Pillow (not equal: another decoder)."""
    paths = _files(tmp_path, 6)
    reader = FileReader(paths, 16)
    pos = np.array([5, 1, 2])
    got = reader.read_gpu(pos, torch.device("cuda"))
    assert got.device.type == "cuda"
    assert (got.float().cpu() - reader.read(pos).float()).abs().mean() < 6.0


def test_budget_and_decoder_settings_are_checked(monkeypatch):
    monkeypatch.setenv("NLB_MEMORY_BUDGET_GB", "0.5")
    assert memory_budget() == 500_000_000
    monkeypatch.setenv("NLB_MEMORY_BUDGET_GB", "lots")
    with pytest.raises(UsageError, match="not a number of GB"):
        memory_budget()
    monkeypatch.setenv("NLB_DECODE", "gpu")
    assert decode_mode(torch.device("cpu")) == "pil"  # nvJPEG only on a CUDA device
    monkeypatch.setenv("NLB_DECODE", "fast")
    with pytest.raises(UsageError, match="valid values are cpu, gpu"):
        decode_mode(torch.device("cpu"))


def test_crop_size_windows_match_torchvision():
    from torchvision.transforms import functional as TF
    x = torch.arange(2 * 3 * 9 * 9, dtype=torch.int64).reshape(2, 3, 9, 9).to(torch.uint8)
    aug = Augmenter([0.5] * 3, [0.5] * 3, crop_size=5, hflip=False)
    assert torch.equal(aug.centre(x), TF.center_crop(x, [5, 5]))
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        out = aug.geometric(x, g)
        assert out.shape == (2, 3, 5, 5)
        for b in range(2):  # every output is one of the 5 x 5 windows of its own image
            hits = [(i, j) for i in range(5) for j in range(5) if torch.equal(out[b], x[b, :, i:i + 5, j:j + 5])]
            assert len(hits) == 1
            seen.add(hits[0])
    assert len(seen) > 10  # offsets spread over {0..4} x {0..4}
    fixed = Augmenter([0.5] * 3, [0.5] * 3, crop_size=5, random_window=False)
    assert torch.equal(fixed.augment(x, g), fixed.normalise(x))  # no crop in the protocol: the centre


def _run(tmp_path, name, env, monkeypatch, **over):
    from benchmark.training import run
    for k, v in env.items():
        monkeypatch.setenv(k, v) if v is not None else monkeypatch.delenv(k, raising=False)
    clear_cache()
    cfg = RunConfig(dataset="clothing1m", model="cnn", method="dividemix", epochs=2, batch_size=8,
                    data_dir=str(tmp_path / "data"), val_frac=0.25, threads=2,
                    hp={"warmup": 1, "num_batches": 2, "mix_forward": "labelled", "lambda_u": 0.0}, **over)
    cfg.noise.kind, cfg.noise.rate = "none", 0.0
    res = run(cfg, tmp_path / name, wandb="disabled")
    rows = list(csv.DictReader(open(tmp_path / name / res["run_id"] / "metrics.csv")))
    meta = json.loads((tmp_path / name / res["run_id"] / "meta.json").read_text())
    return res, [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows], meta


def test_streamed_and_packed_runs_equal_the_in_memory_run(tmp_path, monkeypatch):
    """DivideMix on the Clothing1M layout (class-balanced draws, per-sample losses of a subset,
    the verified-sample diagnostics) gives the same numbers from memory, streamed from the JPEG
    files, and streamed from a pack."""
    from benchmark.cli import main
    write_clothing1m(tmp_path / "data", per_class=1)
    res_mem, rows_mem, meta_mem = _run(tmp_path, "mem", {}, monkeypatch)
    res_st, rows_st, meta_st = _run(tmp_path, "stream", {"NLB_MEMORY_BUDGET_GB": "0"}, monkeypatch)
    assert main(["pack", "--dataset", "clothing1m", "--data-dir", str(tmp_path / "data")]) == 0
    res_pk, rows_pk, meta_pk = _run(tmp_path, "pack", {"NLB_MEMORY_BUDGET_GB": "0"}, monkeypatch)
    assert "streamed from the image files" in meta_st["data_source"] and "(pack " in meta_pk["data_source"]
    assert meta_mem["data_source"] == str(tmp_path / "data" / "clothing1m")
    assert res_mem["run_id"] == res_st["run_id"] == res_pk["run_id"]
    assert rows_mem == rows_st == rows_pk
    assert "select/precision" in rows_mem[-1] and "dividemix/labelled_net1" in rows_mem[-1]


def test_bench_streaming_times_every_path_and_leaves_nothing(tmp_path, capsys):
    from benchmark.cli import main
    write_clothing1m(tmp_path / "data", per_class=1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert main(["bench", "--streaming", "--dataset", "clothing1m", "--data-dir", str(tmp_path / "data"),
                 "--images", "12", "--batch-size", "4", "--loader-workers", "1", "--device", "cpu",
                 "--tmp", str(scratch), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 12 and set(out["paths"]) == {"memory", "files", "pack", "per_sample_loader"}
    assert all(r["images_per_s"] > 0 for r in out["paths"].values())
    assert list(scratch.iterdir()) == []  # its pack was temporary
    assert main(["bench", "--streaming", "--dataset", "fashion_mnist"]) == 2
    assert "Valid: clothing1m, food101n, webvision_mini" in capsys.readouterr().err


@pytest.mark.parametrize("size,crop", [(320, 299), (256, 227), (256, 224)])
def test_stored_square_and_centre_crop_equal_torchvision_resize_and_centre_crop(tmp_path, size, crop):
    """The test view of every protocol geometry is exactly CenterCrop(crop)(Resize(size)(image)),
    for non-square images of either orientation."""
    from torchvision import transforms
    rng = np.random.default_rng(size + crop)
    aug = Augmenter([0.5] * 3, [0.5] * 3, crop_size=crop)
    ref = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(crop)])
    for w, h in [(size + 1, size), (size + 7, size), (size, size + 10), (401, 500), (640, 480)]:
        path = tmp_path / f"{w}x{h}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        stored = torch.from_numpy(decode_resized(path, size, crop=crop)).permute(2, 0, 1)[None]
        with Image.open(path) as im:
            want = torch.from_numpy(np.asarray(ref(im.convert("RGB")))).permute(2, 0, 1)[None]
        assert stored.shape[-2:] == (size, size)
        assert torch.equal(aug.centre(stored), want), (w, h)


def test_a_set_too_large_for_the_gpu_stays_on_the_host(monkeypatch):
    from benchmark.data.files.streaming import TensorReader, take
    x = torch.randint(0, 256, (20, 3, 4, 4), dtype=torch.uint8)
    idx = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100, 10_000))  # 100 bytes free
    view = take(x, idx, torch.device("cuda"))
    assert isinstance(view, StreamedImages) and isinstance(view.reader, TensorReader)
    assert view.device.type == "cuda"  # batches go there one at a time
    assert torch.equal(view.to("cpu")[2:6], x[idx][2:6])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10**9, 10**9))
    assert take(x, idx, torch.device("cpu")).shape == (8, 3, 4, 4)  # the CPU: a plain copy


def test_nan_scores_are_judged_on_the_scored_samples_and_counted():
    from benchmark.training.diagnostics import selection_quality
    scores = torch.tensor([0.9, float("nan"), 0.1, float("nan")])
    truth = torch.tensor([True, True, False, False])
    out = selection_quality(scores > 0.5, scores, truth)
    assert out["select/scored"] == 0.5 and out["select/precision"] == 1.0 and out["select/auc"] == 1.0
