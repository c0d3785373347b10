"""Backbones, reached through a small decorator registry.

Every model built here follows one contract, which the methods rely on:

- ``forward_features(x)``: ``(B, C_in, H, W)`` float -> ``(B, feature_dim)`` penultimate features;
- ``classifier``: the final ``nn.Linear(feature_dim, num_classes)``, an attribute that may be replaced
  (``model.classifier = MaskedLinear(...)``) by a method such as the OBD mask;
- ``forward(x) == self.classifier(self.forward_features(x))``, looked up at call time, so a replaced
  classifier takes effect at once;
- ``feature_dim``: ``int``.

Initialisation is PyTorch's default for every layer; the caller seeds torch before building. All
reshapes use ``flatten`` so the models accept channels_last inputs.

Add a model by decorating a builder ``(num_classes, in_channels, image_size) -> nn.Module`` with
``@register_model("name")``; the tests are parametrised over :func:`list_models`, so a registered
model is tested automatically.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.kan_head import KANHead

ModelBuilder = Callable[[int, int, int], nn.Module]
_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder(num_classes, in_channels, image_size) -> nn.Module`` as ``name``."""

    def deco(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' is already registered")
        _REGISTRY[name] = builder
        return builder

    return deco


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def build_model(name: str, *, num_classes: int, in_channels: int, image_size: int,
                classifier: str = "linear") -> nn.Module:
    """Build a fresh model (PyTorch default initialisation; seed torch beforehand).

    ``classifier="kan"`` replaces the final ``nn.Linear`` by a KAN head (benchmark/kan_head.py),
    built after the backbone from the same generator, so the backbone's initial weights are the
    ones the linear model gets. Raises ``ValueError`` naming the valid models when ``name`` is unknown.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model '{name}'. Valid: {', '.join(list_models())}")
    model = _REGISTRY[name](num_classes, in_channels, image_size)
    if classifier == "kan":
        model.classifier = KANHead(model.feature_dim, num_classes)
    elif classifier != "linear":
        raise ValueError(f"unknown classifier '{classifier}'. Valid: linear, kan")
    return model


class Backbone(nn.Module):
    """Base class: subclasses set ``feature_dim`` and ``classifier`` and define ``forward_features``."""

    feature_dim: int
    classifier: nn.Module

    def forward_features(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


# --------------------------------------------------------------------------------------- mlp


class MLP(Backbone):
    def __init__(self, num_classes: int, in_features: int, hidden: int = 256):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
        )
        self.feature_dim = hidden
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)


@register_model("mlp")
def mlp(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Flatten, two hidden layers of 256 with ReLU, linear classifier. Any input size.

    Source: none (a plain baseline for tests and tiny data).
    """
    return MLP(num_classes, in_channels * image_size * image_size)


# --------------------------------------------------------------------------------------- cnn


class SmallCNN(Backbone):
    def __init__(self, num_classes: int, in_channels: int, hidden: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
            nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(64 * 4, hidden), nn.ReLU(inplace=True),
        )
        self.feature_dim = hidden
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)


@register_model("cnn")
def cnn(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Small fast CNN for Fashion-MNIST (28x28) and digits (8x8).

    conv3x3(32)-BN-ReLU-maxpool2, conv3x3(64)-BN-ReLU-maxpool2, adaptive average pool to 2x2,
    linear 256->128 + ReLU (the features), linear classifier. Max-pools use ceil_mode so odd sizes
    (and 1x1 maps) work; the adaptive pool makes any image size >= 1 valid.
    Source: none (the suite's own fast model, not from a paper).
    """
    return SmallCNN(num_classes, in_channels)


# ------------------------------------------------------------------------------------- lenet


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)`` (kernel 2, stride 2, no padding, odd sizes floored), faster when no
    gradient is needed.

    With autograd recording, it is ``F.max_pool2d`` itself (its backward routes each window's
    gradient to one element, as the official models do). Without (evaluation, no-grad passes) it
    takes the maximum of the four strided sub-grids: the same values bit for bit (a maximum is
    exact), about ten times faster on CPU for NCHW tensors, where PyTorch's kernel is slow.
    """

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return F.max_pool2d(x, 2)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        x = x[..., :h, :w]
        return torch.maximum(torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
                             torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


class LeNet(Backbone):
    def __init__(self, num_classes: int, in_channels: int, image_size: int):
        super().__init__()
        side = (image_size // 2 - 4) // 2  # conv5 pad 2 keeps the size, pool, conv5, pool
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), MaxPool2x2(),
            nn.Conv2d(6, 16, 5), nn.ReLU(), MaxPool2x2(), nn.Flatten(),
            nn.Linear(16 * side * side, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
        )
        self.feature_dim = 84
        self.classifier = nn.Linear(84, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)


@register_model("lenet")
def lenet(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """LeNet-5 as in CDR's MNIST experiments (Xia et al., ICLR 2021).

    Checked against xiaoboxia/CDR ``model.py`` (class ``LeNet``): conv5x5(6, padding 2)-ReLU-maxpool2,
    conv5x5(16)-ReLU-maxpool2, fc 400-120 ReLU, fc 120-84 ReLU, linear classifier 84-10; no batch
    norm, no dropout; PyTorch's default initialisation. 61,706 parameters at 1x28x28.
    Deviations: ``in_channels`` and the flattened size follow the input (16 x 5 x 5 = 400 at 28x28,
    as official; 16 x 6 x 6 at 32x32), so the same network also takes 3x32x32 images. Max pooling
    is :class:`MaxPool2x2` (identical values; a faster kernel when no gradient is recorded).
    Needs image_size >= 12.
    """
    if image_size < 12:
        raise ValueError(f"lenet needs image_size >= 12, got {image_size}")
    return LeNet(num_classes, in_channels, image_size)


# -------------------------------------------------------------------------------------- cnn8


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


class CNN8(Backbone):
    def __init__(self, num_classes: int, in_channels: int, image_size: int):
        super().__init__()
        side = image_size // 8
        self.body = nn.Sequential(
            *_conv_bn_relu(in_channels, 64), *_conv_bn_relu(64, 64), nn.MaxPool2d(2),
            *_conv_bn_relu(64, 128), *_conv_bn_relu(128, 128), nn.MaxPool2d(2),
            *_conv_bn_relu(128, 196), *_conv_bn_relu(196, 196), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(196 * side * side, 256), nn.BatchNorm1d(256), nn.ReLU(),
        )
        self.feature_dim = 256
        self.classifier = nn.Linear(256, num_classes)
        # official initialisation (models.py:69-75): convs kaiming-uniform (fan_in, relu), linear
        # layers xavier-uniform; biases and batch norm at PyTorch's defaults
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)


@register_model("cnn8")
def cnn8(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """The 8-layer CNN of the loss-family protocol (APL's ``ToyModel``, used by ANL and the
    epsilon-softmax paper for CIFAR-10).

    Checked against HanxunH/Active-Passive-Losses @ 04bce53 ``models.py:15-86``: six conv3x3
    (padding 1, bias) - BatchNorm - ReLU blocks of 64, 64, 128, 128, 196, 196 channels with a 2x2
    max-pool after each pair, then fc 3136 -> 256 with BatchNorm1d and ReLU, then the linear
    classifier 256 -> C; no dropout; kaiming-uniform convs, xavier-uniform linear layers.
    1.64M parameters at 3x32x32. Deviation: the flattened size follows the input (196 x 4 x 4 =
    3136 at 32x32, as official; 196 x 3 x 3 at 28x28). Needs image_size >= 8.
    """
    if image_size < 8:
        raise ValueError(f"cnn8 needs image_size >= 8, got {image_size}")
    return CNN8(num_classes, in_channels, image_size)


# -------------------------------------------------------------------------------------- cnn9


def _conv_bn_lrelu(cin: int, cout: int, padding: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=padding), nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.01, inplace=True)]


class CNN9(Backbone):
    def __init__(self, num_classes: int, in_channels: int, dropout: float = 0.25):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_lrelu(in_channels, 128, 1), *_conv_bn_lrelu(128, 128, 1),
            *_conv_bn_lrelu(128, 128, 1),
            nn.MaxPool2d(2, 2), nn.Dropout2d(dropout),
            *_conv_bn_lrelu(128, 256, 1), *_conv_bn_lrelu(256, 256, 1), *_conv_bn_lrelu(256, 256, 1),
            nn.MaxPool2d(2, 2), nn.Dropout2d(dropout),
            *_conv_bn_lrelu(256, 512, 0), *_conv_bn_lrelu(512, 256, 0), *_conv_bn_lrelu(256, 128, 0),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.feature_dim = 128
        self.classifier = nn.Linear(128, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(x)


@register_model("cnn9")
def cnn9(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Co-teaching's 9-layer CNN.

    Checked against bhanML/Co-teaching ``model.py`` (class ``CNN``): 3x3 convs (with bias)
    128-128-128 / 256-256-256 / 512-256-128, each followed by BN and LeakyReLU(0.01); 2x2 max-pool
    and channel dropout (p = 0.25) after the first two blocks; the last block's convs have no
    padding; global average pooling; linear classifier; ``top_bn`` off (its default).
    Deviations:
    1. Dropout is ``nn.Dropout2d``, active in train mode only. The official code calls
       ``F.dropout2d`` without ``training=``, so it also drops channels at test time.
    2. Global pooling is ``AdaptiveAvgPool2d(1)`` (identical to the official
       ``avg_pool2d(kernel=H)`` on square maps).
    Needs image_size >= 28 (two pools, then three unpadded 3x3 convs); 28x28 and 32x32 both work.
    """
    if image_size < 28:
        raise ValueError(f"cnn9 needs image_size >= 28, got {image_size}")
    return CNN9(num_classes, in_channels)


# ---------------------------------------------------------------------------------- ResNets


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016), as in DivideMix: the 1x1 shortcut conv has no BN
    and is applied to relu(bn1(x)); no activation after the sum."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class BasicBlock(nn.Module):
    """Post-activation basic block (He et al. 2015) with a 1x1 conv + BN projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(Backbone):
    """CIFAR-stem ResNet: conv3x3(64)-BN-ReLU (no max-pool), four stages of widths 64/128/256/512
    with strides 1/2/2/2, global average pooling, linear classifier."""

    def __init__(self, block: type[nn.Module], depths: tuple[int, int, int, int],
                 num_classes: int, in_channels: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        cin = 64
        for width, depth, stride in zip((64, 128, 256, 512), depths, (1, 2, 2, 2)):
            blocks = []
            for i in range(depth):
                blocks.append(block(cin, width, stride if i == 0 else 1))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = 512
        self.classifier = nn.Linear(512, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.pool(self.stages(self.stem(x)))


@register_model("preact_resnet18")
def preact_resnet18(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """DivideMix's PreAct ResNet-18 (CIFAR stem).

    Checked against LiJunnan1992/DivideMix ``PreResNet.py`` (``ResNet18`` = ``ResNet(PreActBlock,
    [2,2,2,2])``): stem conv3x3(64, no bias)-BN-ReLU, no max-pool; pre-activation blocks whose
    projection shortcut is a 1x1 conv without BN applied to relu(bn1(x)); layer4's output goes
    straight to average pooling (no final BN-ReLU, as in the official code); linear classifier.
    Deviations:
    1. Global pooling is ``AdaptiveAvgPool2d(1)``: identical to the official ``avg_pool2d(4)`` on
       32x32 inputs (4x4 maps), and also valid for other sizes (28x28 gives 4x4 maps as well).
    2. ``in_channels`` is configurable (the official stem is fixed at 3).
    """
    return CifarResNet(PreActBlock, (2, 2, 2, 2), num_classes, in_channels)


@register_model("resnet34")
def resnet34(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """CIFAR-stem ResNet-34, as used by the CIFAR-N leaderboard.

    Checked against UCSC-REAL/cifar-10-100n ``models/resnet.py`` (``ResNet34`` = ``ResNet(BasicBlock,
    [3,4,6,3])``): stem conv3x3(64, no bias)-BN-ReLU, no max-pool; post-activation basic blocks with
    1x1 conv + BN projection shortcuts; average pooling; linear classifier.
    Deviations: global pooling is ``AdaptiveAvgPool2d(1)`` (identical to ``avg_pool2d(4)`` at
    32x32); ``in_channels`` is configurable. Not torchvision's ResNet-34 (7x7 stem + max-pool).
    """
    return CifarResNet(BasicBlock, (3, 4, 6, 3), num_classes, in_channels)


@register_model("resnet18")
def resnet18(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """DISC's CIFAR ResNet-18.

    Checked against JackYFL/DISC ``models/resnet.py`` (``resnet18``, the CIFAR branch of its
    torchvision-style ResNet): stem conv3x3(64, stride 1, no bias)-BN-ReLU without max-pool;
    post-activation basic blocks [2, 2, 2, 2] with 1x1 conv + BN projection shortcuts; average
    pooling; linear head (``fc`` there, ``classifier`` here). Convolutions are initialised
    ``kaiming_normal_(mode="fan_out", nonlinearity="relu")`` and BN to (1, 0), as its ``__init__``.
    Deviations: global pooling is ``AdaptiveAvgPool2d(1)``; ``in_channels`` is configurable.
    """
    net = CifarResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


class SevenCNN(Backbone):
    """SED's 7-layer CNN: three conv blocks and a two-layer MLP head (see :func:`sevencnn`)."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int):
        super().__init__()

        def block(cin: int, mid: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, mid, 3, 1, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                    nn.Conv2d(mid, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2, 2)]

        self.body = nn.Sequential(*block(in_channels, 64, 64), *block(64, 128, 128),
                                  *block(128, 196, 16), nn.Flatten())
        side = image_size // 8
        hidden_in = 16 * side * side
        self.head = nn.Sequential(nn.Linear(hidden_in, 2 * hidden_in), nn.BatchNorm1d(2 * hidden_in),
                                  nn.ReLU(inplace=True))
        self.feature_dim = 2 * hidden_in
        self.classifier = nn.Linear(2 * hidden_in, num_classes)
        for lin in (self.head[0], self.classifier):
            nn.init.kaiming_normal_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


@register_model("sevencnn")
def sevencnn(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """SED's ``SevenCNN`` (the backbone of its synthetic CIFAR protocol).

    Checked against NUST-Machine-Intelligence-Laboratory/SED @ 16fea96 ``model/SevenCNN.py``
    (class ``CNN``) and ``model/MLPHeader.py``: blocks conv3x3 64-64 / 128-128 / 196-16, each conv
    with bias, BN (momentum 0.1) and ReLU, a 2x2 max-pool after each block; flatten (16 x 4 x 4 =
    256 at 32x32); head ``MLPHead(256, mlp_scale_factor=2)`` = Linear(256, 512)-BN1d-ReLU-Linear(512,
    C). The head's linear layers are ``kaiming_normal_`` with zero bias (MLPHeader.py:28), the
    rest PyTorch's default. The final Linear is ``classifier`` here (the mask's layer), the
    first head layer ``head``.
    Deviations: the unused ``proba_head`` (computed in the official forward, in no loss) and the
    unused ``dropout_rate`` are left out; the flatten size follows the input (16 x 3 x 3 at 28x28).
    """
    if image_size < 8:
        raise ValueError(f"sevencnn needs image_size >= 8, got {image_size}")
    return SevenCNN(num_classes, in_channels, image_size)


PRETRAINED_MODELS = ("resnet50_imagenet",)
"""Models whose weights come from a file (tests/benchmark/test_pretrained.py covers their loading;
the contract tests run their architecture under its random-init name)."""
RGB_ONLY = ("resnet50", "resnet50_imagenet", "inception_resnet_v2")
"""ImageNet-stem models: 3-channel inputs only."""
MIN_IMAGE_SIZE = {"inception_resnet_v2": 75}
"""Smallest image side a model takes, where it is above the 32 pixels of CIFAR."""


@register_model("resnet50")
def resnet50(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """torchvision's ResNet-50 (ImageNet stem: 7x7 conv + max-pool), random init, new classifier."""
    from benchmark.pretrained import build
    return build("resnet50", num_classes, in_channels, None)


@register_model("resnet50_imagenet")
def resnet50_imagenet(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """torchvision's ResNet-50 with its ImageNet weights (IMAGENET1K_V1, resnet50-0676ba61.pth,
    what ``resnet50(pretrained=True)`` loads: DivideMix's and ELR+'s Clothing1M backbone), through
    torchvision's weight API, verified before it is read (benchmark/pretrained.py); the
    classifier is a new Linear(2048, C)."""
    from benchmark.pretrained import build, torchvision_weights
    return build("resnet50", num_classes, in_channels, torchvision_weights("resnet50", "IMAGENET1K_V1"))


@register_model("inception_resnet_v2")
def inception_resnet_v2(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """InceptionResNetV2 (Szegedy et al., AAAI 2017) from timm (``inception_resnet_v2``), random
    init: the WebVision backbone of DivideMix (InceptionResNetV2.py, trained from scratch) and
    ELR+. timm's global pooling is adaptive (ELR+'s copy; DivideMix's fixed 8x8 pool is the same
    at its 299-pixel input). Needs image_size >= 75; the protocols feed 299 (DivideMix) or 227."""
    if image_size < MIN_IMAGE_SIZE["inception_resnet_v2"]:
        raise ValueError(f"inception_resnet_v2 needs image_size >= 75, got {image_size}")
    from benchmark.pretrained import build_timm
    return build_timm("inception_resnet_v2", num_classes, in_channels)


def num_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["register_model", "list_models", "build_model", "num_parameters", "Backbone"]


if __name__ == "__main__":  # quick summary: python -m benchmark.models
    for n in list_models():
        m = build_model(n, num_classes=10, in_channels=3, image_size=max(32, MIN_IMAGE_SIZE.get(n, 0)))
        print(f"{n:16s} {num_parameters(m):>12,d} params  feature_dim={m.feature_dim}")
