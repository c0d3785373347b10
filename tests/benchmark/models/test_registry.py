"""Contract tests run over every registered model: a new model is tested by being registered."""
from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from benchmark.models import build_model, list_models, model_spec, num_parameters

NUM_CLASSES = 7
BATCH = 2
# (in_channels, image_size); 1x8x8 (sklearn digits) only for the models meant for tiny inputs:
# cnn9 needs >= 28 pixels (two pools then three unpadded convs) and the ResNets target CIFAR.
SHAPES = [(1, 28), (3, 32)]
TINY_OK = {"mlp", "cnn"}
# weights read from a file are tested in test_pretrained.py; their architecture runs here
# under its random-init name
MODELS = [m for m in list_models() if not model_spec(m).pretrained]


def _side(name: str, size: int = 32) -> int:
    """The test image side for ``name``: ``size``, or the model's minimum when that is larger."""
    return max(size, model_spec(name).min_image_size)


def _cases():
    for name in MODELS:
        shapes = ([(3, _side(name))] if model_spec(name).rgb_only
                  else SHAPES + ([(1, 8)] if name in TINY_OK else []))
        for cin, size in shapes:
            yield pytest.param(name, cin, size, id=f"{name}-{cin}x{size}")


@functools.lru_cache(maxsize=None)
def _model(name: str, cin: int, size: int) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes=NUM_CLASSES, in_channels=cin, image_size=size).eval()


def _input(cin: int, size: int) -> torch.Tensor:
    return torch.randn(BATCH, cin, size, size, generator=torch.Generator().manual_seed(1))


def test_registry_has_the_contract_models():
    assert {"mlp", "cnn", "cnn9", "preact_resnet18", "resnet34"} <= set(list_models())
    assert list_models() == sorted(list_models())


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        build_model("nope", num_classes=10, in_channels=3, image_size=32)
    for name in list_models():
        assert name in str(err.value)


@pytest.mark.parametrize("name,cin,size", list(_cases()))
def test_shapes_and_classifier(name, cin, size):
    m = _model(name, cin, size)
    x = _input(cin, size)
    assert isinstance(m.classifier, nn.Linear)
    assert m.classifier.in_features == m.feature_dim
    assert m.classifier.out_features == NUM_CLASSES
    with torch.no_grad():
        feats = m.forward_features(x)
        out = m(x)
        assert feats.shape == (BATCH, m.feature_dim)
        assert out.shape == (BATCH, NUM_CLASSES)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, m.classifier(feats), rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_replacing_classifier_takes_effect(name):
    m = _model(name, 3, _side(name))
    x = _input(3, _side(name))
    old = m.classifier
    try:
        zero = nn.Linear(m.feature_dim, NUM_CLASSES)
        nn.init.zeros_(zero.weight)
        nn.init.zeros_(zero.bias)
        m.classifier = zero
        with torch.no_grad():
            assert torch.equal(m(x), torch.zeros(BATCH, NUM_CLASSES))
    finally:
        m.classifier = old


@pytest.mark.parametrize("name", MODELS)
def test_train_mode_backward(name):
    m = _model(name, 3, _side(name))
    x = _input(3, _side(name))
    m.train()
    try:
        m(x).sum().backward()
        assert m.classifier.weight.grad is not None
        assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    finally:
        m.zero_grad(set_to_none=True)
        m.eval()


@pytest.mark.parametrize("name", MODELS)
def test_channels_last(name):
    m = _model(name, 3, _side(name))
    x = _input(3, _side(name))
    with torch.no_grad():
        ref = m(x)
        m.to(memory_format=torch.channels_last)
        try:
            out = m(x.contiguous(memory_format=torch.channels_last))
        finally:
            m.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_parameters(name):
    cin = 3 if model_spec(name).rgb_only else 1
    torch.manual_seed(123)
    a = build_model(name, num_classes=NUM_CLASSES, in_channels=cin, image_size=_side(name, 28))
    torch.manual_seed(123)
    b = build_model(name, num_classes=NUM_CLASSES, in_channels=cin, image_size=_side(name, 28))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert num_parameters(a) > 0


def test_fast_max_pool_equals_max_pool_2d_without_gradients():
    from benchmark.models.small import MaxPool2x2
    pool = MaxPool2x2()
    for shape in [(3, 6, 28, 28), (2, 16, 10, 10), (2, 3, 7, 9)]:
        x = torch.relu(torch.randn(*shape, generator=torch.Generator().manual_seed(0)))
        x[:, :, :4, :4] = 0.25  # a flat region: ties inside windows
        with torch.no_grad():
            assert torch.equal(pool(x), torch.nn.functional.max_pool2d(x, 2))
        g = x.clone().requires_grad_(True)  # with autograd: the official kernel and its backward
        pool(g).sum().backward()
        g2 = x.clone().requires_grad_(True)
        torch.nn.functional.max_pool2d(g2, 2).sum().backward()
        assert torch.equal(g.grad, g2.grad)


@pytest.mark.parametrize("name", list_models())
def test_declared_input_constraints_are_enforced(name):
    """What a registration declares (rgb_only, min_image_size) is what building checks: one
    grey channel or one pixel below the minimum is refused, naming the need."""
    spec = model_spec(name)
    cin, size = (3 if spec.rgb_only else 1), max(spec.min_image_size, 8)
    if spec.rgb_only:
        with pytest.raises(ValueError, match="takes 3-channel images"):
            build_model(name, num_classes=NUM_CLASSES, in_channels=1, image_size=size)
    if spec.min_image_size:
        with pytest.raises(ValueError, match=f"needs image_size >= {spec.min_image_size}"):
            build_model(name, num_classes=NUM_CLASSES, in_channels=cin, image_size=spec.min_image_size - 1)
