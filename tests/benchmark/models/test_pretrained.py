"""Pretrained torchvision backbones: weights verified from torch.hub's cache before they are read."""
import hashlib
import pickle
import subprocess
import sys

import pytest
import torch
import torchvision.models as tvm

from benchmark.data import DataError
from benchmark.models.pretrained import WeightsSpec, build, checkpoint_dir, torchvision_weights


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NLB_OFFLINE", "1")
    torch.hub.set_dir(str(tmp_path / "torch" / "hub"))
    d = checkpoint_dir()
    d.mkdir(parents=True)
    yield d
    torch.hub._hub_dir = None  # back to $TORCH_HOME/hub (torch.hub.set_dir has no reset)


def _cached(d, arch: str, payload: bytes) -> WeightsSpec:
    """Put payload in the cache under torchvision's naming rule (<arch>-<sha256 prefix>.pth)."""
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    (d / f"{arch}-{prefix}.pth").write_bytes(payload)
    return WeightsSpec(url=f"https://download.invalid/models/{arch}-{prefix}.pth", arch=arch)


def test_the_official_spec_is_torchvisions_v1_file():
    spec = torchvision_weights("resnet50", "IMAGENET1K_V1")
    assert spec.file_name == "resnet50-0676ba61.pth" and spec.hash_prefix == "0676ba61"


def test_missing_weights_offline_say_how_to_prefetch(hub):
    with pytest.raises(DataError, match="resnet50-0676ba61.pth are not in .*load_state_dict_from_url"):
        build("resnet50", 14, 3, torchvision_weights("resnet50", "IMAGENET1K_V1"))


def test_a_file_whose_hash_does_not_match_its_name_is_refused(hub):
    (hub / "resnet50-0676ba61.pth").write_bytes(b"not the weights")
    with pytest.raises(DataError, match="does not start with 0676ba61"):
        build("resnet50", 14, 3, torchvision_weights("resnet50", "IMAGENET1K_V1"))


def test_verified_weights_load_and_the_head_is_new(tmp_path, hub):
    torch.manual_seed(0)
    src = tvm.resnet18(weights=None)
    buf = tmp_path / "w.pth"
    torch.save(src.state_dict(), buf)
    spec = _cached(hub, "resnet18", buf.read_bytes())
    torch.manual_seed(1)
    net = build("resnet18", 7, 3, spec)
    assert torch.equal(net.body[0].weight, src.conv1.weight)
    assert torch.equal(net.body[7][1].bn2.running_var, src.layer4[1].bn2.running_var)
    assert net.classifier.out_features == 7 and net.feature_dim == 512
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 7)


class _Evil:
    def __reduce__(self):
        return (print, ("this ran",))


def test_a_pickle_that_would_run_code_is_not_loaded(hub):
    spec = _cached(hub, "resnet18", pickle.dumps({"conv1.weight": _Evil()}))
    with pytest.raises(DataError, match="not a plain state dict"):
        build("resnet18", 7, 3, spec)


def test_a_model_that_cannot_take_the_images_is_a_usage_error(tmp_path):
    p = subprocess.run([sys.executable, "runner.py", "run", "--dataset", "digits", "--model", "resnet50",
                        "--epochs", "1", "--runs", str(tmp_path / "runs"), "--wandb", "disabled"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "3-channel" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*/config.json"))
