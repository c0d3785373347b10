"""ImageNet-pretrained torchvision backbones for the real-world protocols (Clothing1M, WebVision).

The weights come through torchvision's own weight API (``ResNet50_Weights.IMAGENET1K_V1``: the
file ``resnet50-0676ba61.pth`` that ``resnet50(pretrained=True)`` gave DivideMix and ELR+ for
Clothing1M). They are read from torch.hub's cache (``$TORCH_HOME/hub/checkpoints``, default
``~/.cache/torch/hub/checkpoints``), downloaded into it by torchvision when the machine is online,
and refused unless the file's SHA-256 starts with the hash in its name (torchvision's own
``check_hash`` rule); the state dict is then read with ``torch.load(weights_only=True)``, which
cannot run code. Offline and not cached, the error says how to pre-fetch the file.

The backbone keeps the suite's model contract: ``forward_features`` is the torchvision network
up to global average pooling, and ``classifier`` a new ``Linear(2048, C)`` initialised from the
run's init stream (the ImageNet head is dropped, as the official Clothing1M code replaces ``fc``).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from benchmark import settings
from benchmark.errors import DataError


@dataclass(frozen=True)
class WeightsSpec:
    """Where a pretrained state dict comes from: torchvision's URL (its file name carries the
    first hex digits of the file's SHA-256) and the torchvision architecture it fits."""

    url: str
    arch: str

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        m = re.search(r"-([a-f0-9]+)\.", self.file_name)
        if not m:
            raise ValueError(f"{self.file_name}: no hash in the file name")
        return m.group(1)


def torchvision_weights(arch: str, name: str) -> WeightsSpec:
    """The spec of torchvision's ``<Arch>_Weights.<name>`` (e.g. resnet50, IMAGENET1K_V1)."""
    import torchvision.models as tvm
    enum = tvm.get_model_weights(arch)
    return WeightsSpec(url=enum[name].url, arch=arch)


def checkpoint_dir() -> Path:
    """torch.hub's cache of downloaded weights (honours $TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _prefetch_help(spec: WeightsSpec) -> str:
    return (f"on a machine with internet access run `python -c \"import torch; "
            f"torch.hub.load_state_dict_from_url('{spec.url}', check_hash=True)\"` and copy "
            f"{checkpoint_dir().name}/{spec.file_name} from its torch hub cache into {checkpoint_dir()} "
            f"here (or set TORCH_HOME to a folder holding hub/checkpoints/{spec.file_name})")


def load_state(spec: WeightsSpec) -> dict[str, Tensor]:
    """The verified state dict of ``spec`` (CPU tensors). Raises DataError when the file is
    absent and cannot be downloaded, or when its hash does not match its name."""
    path = checkpoint_dir() / spec.file_name
    if not path.is_file():
        if settings.offline():
            raise DataError(f"pretrained weights {spec.file_name} are not in {checkpoint_dir()} and "
                            f"{settings.OFFLINE}=1 forbids a download: {_prefetch_help(spec)}")
        try:
            torch.hub.download_url_to_file(spec.url, str(path), hash_prefix=spec.hash_prefix, progress=False)
        except Exception as e:  # noqa: BLE001 - any network failure: say how to pre-fetch
            raise DataError(f"pretrained weights {spec.file_name}: download failed ({e}); "
                            f"{_prefetch_help(spec)}") from None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if not h.hexdigest().startswith(spec.hash_prefix):
        raise DataError(f"{path}: SHA-256 {h.hexdigest()[:16]}... does not start with {spec.hash_prefix}, "
                        f"the hash in its name: not torchvision's file (delete it and fetch it again)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - weights_only refuses anything but tensors and containers
        raise DataError(f"{path}: not a plain state dict ({e})") from None
    if not isinstance(state, dict):
        raise DataError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


class TorchvisionBackbone(nn.Module):
    """A torchvision ResNet as a suite backbone: features up to global pooling, a new classifier."""

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2,
                                  net.layer3, net.layer4, net.avgpool, nn.Flatten())
        self.feature_dim = int(net.fc.in_features)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


def build(arch: str, num_classes: int, in_channels: int, spec: WeightsSpec | None) -> nn.Module:
    """torchvision ``arch`` (random init, or the weights of ``spec``) with a new C-way classifier."""
    import torchvision.models as tvm
    if in_channels != 3:
        raise ValueError(f"{arch} takes 3-channel images, the dataset has {in_channels}")
    net = tvm.get_model(arch, weights=None)
    if spec is not None:
        state: dict[str, Any] = load_state(spec)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise DataError(f"{spec.file_name} does not fit {arch}: missing {list(missing)[:3]}, "
                            f"unexpected {list(unexpected)[:3]}")
    return TorchvisionBackbone(net, num_classes)


class TimmBackbone(nn.Module):
    """A timm network as a suite backbone: timm's pooled features (``num_classes=0``), a new
    classifier ``Linear(num_features, C)``."""

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.body = net
        self.feature_dim = int(net.num_features)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


def build_timm(arch: str, num_classes: int, in_channels: int) -> nn.Module:
    """timm's ``arch``, random init (timm.create_model, pretrained=False), new C-way classifier."""
    import timm
    if in_channels != 3:
        raise ValueError(f"{arch} takes 3-channel images, the dataset has {in_channels}")
    return TimmBackbone(timm.create_model(arch, pretrained=False, num_classes=0), num_classes)
