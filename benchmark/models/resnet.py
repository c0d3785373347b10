"""CIFAR-stem ResNets: DivideMix's PreAct ResNet-18, DISC's ResNet-18 and the CIFAR-N leaderboard's
ResNet-34 (a 3x3 stem without max-pool, for 32x32 images)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.models.registry import Backbone, register_model

__all__ = ["PreActBlock", "BasicBlock", "CifarResNet"]


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
