"""Backbones: the registry with each model's input constraints (registry.py), the families
(small.py, resnet.py, imagenet.py, whose imports below fill the registry), pretrained weights
(pretrained.py) and the KAN classifier head (heads.py). A new model is one builder in a family
module with ``@register_model("name", ...)``; the model tests then cover it.
"""
from benchmark.models.heads import KANHead
from benchmark.models.registry import (Backbone, ModelSpec, build_model, list_models, model_spec,
                                       num_parameters, register_model)

# every family, once (registration side effects)
from benchmark.models import small, resnet, imagenet  # noqa: F401,E402

__all__ = ["Backbone", "KANHead", "ModelSpec", "build_model", "list_models", "model_spec", "num_parameters",
           "register_model"]
