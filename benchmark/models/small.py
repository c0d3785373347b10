"""Small backbones for 28x28 and 32x32 images (and the tiny ones for 8x8 digits): mlp, cnn, lenet,
cnn8, cnn9 and sevencnn, each checked against its source (see each builder's docstring)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.models.registry import Backbone, register_model

__all__ = ["MLP", "SmallCNN", "MaxPool2x2", "LeNet", "CNN8", "CNN9", "SevenCNN"]


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


@register_model("lenet", min_image_size=12)
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


@register_model("cnn8", min_image_size=8)
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


@register_model("cnn9", min_image_size=28)
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
    return CNN9(num_classes, in_channels)


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


@register_model("sevencnn", min_image_size=8)
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
    return SevenCNN(num_classes, in_channels, image_size)
