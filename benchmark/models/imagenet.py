"""ImageNet-stem backbones of the real-world protocols (Clothing1M, WebVision): torchvision's
ResNet-50 (random, or with its ImageNet weights) and timm's InceptionResNetV2. They take 3-channel
images only; the weights and the torchvision / timm wrappers are in pretrained.py."""
from __future__ import annotations

from torch import nn

from benchmark.models.pretrained import build, build_timm, torchvision_weights
from benchmark.models.registry import register_model


@register_model("resnet50", rgb_only=True)
def resnet50(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """torchvision's ResNet-50 (ImageNet stem: 7x7 conv + max-pool), random init, new classifier."""
    return build("resnet50", num_classes, in_channels, None)


@register_model("resnet50_imagenet", rgb_only=True, pretrained=True)
def resnet50_imagenet(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """torchvision's ResNet-50 with its ImageNet weights (IMAGENET1K_V1, resnet50-0676ba61.pth,
    what ``resnet50(pretrained=True)`` loads: DivideMix's and ELR+'s Clothing1M backbone), through
    torchvision's weight API, verified before it is read (benchmark/models/pretrained.py); the
    classifier is a new Linear(2048, C)."""
    return build("resnet50", num_classes, in_channels, torchvision_weights("resnet50", "IMAGENET1K_V1"))


@register_model("inception_resnet_v2", rgb_only=True, min_image_size=75)
def inception_resnet_v2(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """InceptionResNetV2 (Szegedy et al., AAAI 2017) from timm (``inception_resnet_v2``), random
    init: the WebVision backbone of DivideMix (InceptionResNetV2.py, trained from scratch) and
    ELR+. timm's global pooling is adaptive (ELR+'s copy; DivideMix's fixed 8x8 pool is the same
    at its 299-pixel input). Needs image_size >= 75; the protocols feed 299 (DivideMix) or 227."""
    return build_timm("inception_resnet_v2", num_classes, in_channels)
