"""The model registry: every backbone with the constraints it puts on its input, and the contract.

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
``@register_model("name", ...)`` in a family module (small.py, resnet.py, imagenet.py) that
benchmark/models/__init__.py imports; its input constraints (``rgb_only``, ``min_image_size``) and
whether it reads weights from a file (``pretrained``) are declared there, checked by
:func:`build_model` before the builder runs, and read by the tests, which are parametrised over
:func:`list_models`: a registered model is tested automatically.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn

from benchmark.models.heads import KANHead

__all__ = ["ModelSpec", "register_model", "list_models", "model_spec", "build_model", "Backbone",
           "num_parameters"]

ModelBuilder = Callable[[int, int, int], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A registered backbone: its builder and what it asks of its input."""

    name: str
    builder: ModelBuilder
    rgb_only: bool = False
    """3-channel inputs only (the ImageNet stems)."""
    min_image_size: int = 0
    """Smallest image side the network takes (0: any)."""
    pretrained: bool = False
    """Weights read from a file (tests/benchmark/models/test_pretrained.py covers their loading;
    the contract tests run the architecture under its random-init name)."""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, rgb_only: bool = False, min_image_size: int = 0,
                   pretrained: bool = False) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder(num_classes, in_channels, image_size) -> nn.Module`` as ``name``
    with its input constraints."""

    def deco(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' is already registered")
        _REGISTRY[name] = ModelSpec(name, builder, rgb_only, min_image_size, pretrained)
        return builder

    return deco


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The registration of ``name``; ValueError naming the valid models when it is unknown."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model '{name}'. Valid: {', '.join(list_models())}")
    return _REGISTRY[name]


def build_model(name: str, *, num_classes: int, in_channels: int, image_size: int,
                classifier: str = "linear") -> nn.Module:
    """Build a fresh model (PyTorch default initialisation; seed torch beforehand).

    ``classifier="kan"`` replaces the final ``nn.Linear`` by a KAN head (benchmark/models/heads.py),
    built after the backbone from the same generator, so the backbone's initial weights are the
    ones the linear model gets. Raises ``ValueError`` naming the valid models when ``name`` is
    unknown, and saying what the model needs when the input does not meet its constraints.
    """
    spec = model_spec(name)
    if spec.rgb_only and in_channels != 3:
        raise ValueError(f"{name} takes 3-channel images, the dataset has {in_channels}")
    if image_size < spec.min_image_size:
        raise ValueError(f"{name} needs image_size >= {spec.min_image_size}, got {image_size}")
    model = spec.builder(num_classes, in_channels, image_size)
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


def num_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
