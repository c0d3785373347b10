"""Clothing1M, Food-101N and WebVision-mini on tiny copies in their official layouts: loading,
label parsing, split integrity, verification flags, the errors for missing or corrupt files, and
`runner.py run` on each."""
import json
import subprocess
import sys

import numpy as np
import pytest

from benchmark.data import DataError, clear_cache, load_dataset
from benchmark.errors import DatasetNotFound
from tests.benchmark.data.real_world_fixtures import (CLOTHING_CLASSES, write_clothing1m, write_food101n,
                                                 write_webvision)
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def env(real_world_env):
    yield real_world_env


def test_clothing1m_labels_splits_and_verification(tmp_path):
    facts = write_clothing1m(tmp_path)
    d = load_dataset("clothing1m", data_dir=str(tmp_path))
    assert d.classes == CLOTHING_CLASSES
    assert tuple(d.train_x.shape) == (len(facts["train"]), 3, 256, 256) and d.crop_size == 224
    assert d.input_shape == (3, 224, 224)
    # training labels are the noisy ones, in key-list order; test labels are the clean ones
    assert d.train_y.tolist() == [facts["noisy"][k] for k in facts["train"]]
    assert d.test_y.tolist() == [facts["clean"][k] for k in facts["test"]]
    assert d.verified.tolist() == facts["verified"]
    assert {0, 1, -1} <= set(d.verified.tolist())
    assert d.mean == (0.6959, 0.6537, 0.6371)  # dataloader_clothing1M.py's constants


def test_clothing1m_checks_its_lists(tmp_path, monkeypatch):
    facts = write_clothing1m(tmp_path)
    folder = facts["folder"]
    kv = folder / "noisy_label_kv.txt"
    good = kv.read_text()
    kv.write_text(good.replace(f"{facts['train'][0]} ", f"{facts['train'][0]} x", 1))
    with pytest.raises(DataError, match="expected 'path label'"):
        load_dataset("clothing1m", data_dir=str(tmp_path))
    kv.write_text(good + f"{facts['train'][0]} 14\n")
    clear_cache()
    with pytest.raises(DataError, match="label 14 outside 0..13"):
        load_dataset("clothing1m", data_dir=str(tmp_path))
    kv.write_text(good)
    (folder / facts["train"][3]).unlink()
    clear_cache()
    with pytest.raises(DataError, match=r"1 of the \d+ train images listed are missing.*" + facts["train"][3]):
        load_dataset("clothing1m", data_dir=str(tmp_path))
    monkeypatch.delenv("NLB_ALLOW_UNVERIFIED_DATA")
    clear_cache()
    with pytest.raises(DataError, match="the official release has 1000000"):
        load_dataset("clothing1m", data_dir=str(tmp_path))


def test_clothing1m_test_keys_may_not_appear_in_training(tmp_path):
    facts = write_clothing1m(tmp_path)
    lst = facts["folder"] / "noisy_train_key_list.txt"
    lst.write_text(lst.read_text() + facts["test"][0] + "\n")
    kv = facts["folder"] / "noisy_label_kv.txt"
    kv.write_text(kv.read_text() + f"{facts['test'][0]} 1\n")
    with pytest.raises(DataError, match="test images are also in another split"):
        load_dataset("clothing1m", data_dir=str(tmp_path))
    lst.write_text(lst.read_text().replace(facts["test"][0] + "\n", ""))
    ct = facts["folder"] / "clean_train_key_list.txt"
    ct.write_text(ct.read_text() + "images/9/99/not_labelled.jpg\n")
    clear_cache()
    with pytest.raises(DataError, match="1 keys have no label in clean_label_kv.txt"):
        load_dataset("clothing1m", data_dir=str(tmp_path))


def test_missing_datasets_name_their_layout(tmp_path):
    for name, words in (("clothing1m", "noisy_train_key_list.txt"), ("food101n", "verified_train.tsv"),
                        ("webvision_mini", "train_filelist_google.txt")):
        with pytest.raises(DatasetNotFound, match=words) as err:
            load_dataset(name, data_dir=str(tmp_path / "nothing"))
        assert "licence" in str(err.value) or "https://" in str(err.value)
    facts = write_clothing1m(tmp_path)
    (facts["folder"] / "clean_test_key_list.txt").unlink()
    with pytest.raises(DatasetNotFound, match="lacks clean_test_key_list.txt"):
        load_dataset("clothing1m", data_dir=str(tmp_path))


def test_food101n_labels_from_folders_and_verification_flags(tmp_path):
    facts = write_food101n(tmp_path)
    d = load_dataset("food101n", data_dir=str(tmp_path))
    assert d.classes == facts["classes"]  # the header line of classes.txt is not a class
    assert d.train_y.tolist() == [facts["classes"].index(k.split("/")[0]) for k in facts["keys"]]
    assert d.test_y.tolist() == [facts["classes"].index(p.split("/")[0]) for p in facts["test"]]
    assert d.verified.tolist() == facts["verified"]
    assert tuple(d.test_x.shape) == (len(facts["test"]), 3, 256, 256)


def test_food101n_rejects_a_bad_verification_file(tmp_path):
    facts = write_food101n(tmp_path)
    f = facts["folder"] / "meta" / "verified_val.tsv"
    f.write_text(f.read_text() + "apple_pie/not_listed.jpg\t1\n")
    with pytest.raises(DataError, match="not_listed.jpg is not in meta/imagelist.tsv"):
        load_dataset("food101n", data_dir=str(tmp_path))
    f.write_text("key\tverification_label\n")
    clear_cache()
    with pytest.raises(DataError, match="expected the header 'class_name/key'"):
        load_dataset("food101n", data_dir=str(tmp_path))


@pytest.mark.parametrize("layout", ["wnid", "index"])
def test_webvision_mini_keeps_the_first_50_classes_and_both_test_sets(tmp_path, layout):
    facts = write_webvision(tmp_path, imagenet_layout=layout)
    d = load_dataset("webvision_mini", data_dir=str(tmp_path))
    assert d.num_classes == 50 and d.crop_size == 299
    assert len(d.train_y) == len(facts["train"]) and d.train_y.max() < 50  # classes 50, 51 dropped
    assert len(d.test_y) == facts["n_val"] and sorted(d.test_y.tolist()) == list(range(facts["n_val"]))
    x_im, y_im = d.extra_tests["imagenet"]
    assert tuple(x_im.shape) == (facts["n_imagenet"], 3, 320, 320)
    assert y_im.tolist() == list(range(facts["n_imagenet"]))  # folder k (or WNID k) is class k


def test_a_corrupt_image_is_named(tmp_path):
    facts = write_food101n(tmp_path)
    bad = facts["folder"] / "images" / facts["keys"][4]
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=facts["keys"][4].split("/")[1]):
        load_dataset("food101n", data_dir=str(tmp_path))


def _cli(*args, env_extra=None, tmp_path=None):
    import os
    env = {**os.environ, "WANDB_MODE": "disabled", **(env_extra or {})}
    return subprocess.run([sys.executable, "runner.py", *args], capture_output=True, text=True, env=env,
                          cwd=str(ROOT))


@pytest.mark.parametrize("name,writer", [("clothing1m", write_clothing1m), ("food101n", write_food101n),
                                         ("webvision_mini", write_webvision)])
def test_runner_trains_on_each_fixture_and_exits_2_when_missing(tmp_path, name, writer):
    writer(tmp_path)
    p = _cli("run", "--dataset", name, "--data-dir", str(tmp_path), "--model", "cnn", "--noise", "none",
             "--epochs", "1", "--method", "ce", "--runs", str(tmp_path / "runs"), "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout[p.stdout.index("{"):])
    assert 0.0 <= res["test/acc_last"] <= 1.0
    if name == "webvision_mini":
        assert 0.0 <= res["test_imagenet/acc_last"] <= 1.0
        # web labels, none verified: no truth, so no selection, memorisation or correction figures
        assert not [k for k in res if k.startswith(("select/", "memo/", "correct/", "grad/"))]
    else:  # verification flags: memorisation is measured on the samples verified wrong
        assert 0.0 <= res["memo/noisy_fit"] <= 1.0 and "memo/true_fit" not in res
    p = _cli("run", "--dataset", name, "--data-dir", str(tmp_path), "--model", "cnn", "--noise", "sym",
             "--rate", "0.2", "--epochs", "1", "--runs", str(tmp_path / "runs3"))
    assert p.returncode == 2 and "carries real noisy labels" in p.stderr and "Traceback" not in p.stderr
    p = _cli("run", "--dataset", name, "--data-dir", str(tmp_path / "absent"), "--noise", "none",
             "--epochs", "1", "--runs", str(tmp_path / "runs2"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "expects" in p.stderr and not (tmp_path / "runs2").exists()


def test_selection_diagnostics_use_the_verified_samples_only(tmp_path):
    """A method's division is judged on the verified samples: 1 = label right, 0 = wrong."""
    import torch

    from benchmark.training.evaluate import Truth
    write_food101n(tmp_path)
    d = load_dataset("food101n", data_dir=str(tmp_path))
    tr = torch.arange(len(d.train_y))
    y = torch.as_tensor(d.train_y)
    truth = Truth(d, tr, y, y, 0, 0)
    v = torch.as_tensor(d.verified)
    perfect = v == 1  # select exactly the samples verified right, score them 1, the rest 0
    out = truth.selection(perfect, perfect.float())
    assert out["select/precision"] == 1.0 and out["select/recall"] == 1.0 and out["select/auc"] == 1.0
    assert out["select/fraction"] == pytest.approx(float(perfect.float().mean()))
    assert np.array_equal(truth.memo_idx.numpy(), np.nonzero(d.verified == 0)[0])
