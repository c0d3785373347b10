"""The KAN classifier head against pykan's own KANLayer, and the OBD mask on its edges."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kan.KANLayer import KANLayer

from benchmark.models import build_model
from benchmark.models.heads import KANHead
from methods.mask import MaskConfig, MaskedEdges, actstd_scores, edge_obd_scores, obd_scores
from methods.obd import mask_head


def _pair(d=6, c=4, seed=0):
    torch.manual_seed(seed)
    ours = KANHead(d, c)
    torch.manual_seed(seed)
    ref = KANLayer(in_dim=d, out_dim=c)  # pykan's defaults: num=5, k=3, grid_range [-1, 1]
    return ours, ref


def test_head_is_pykans_layer_initialised_and_evaluated_as_pykan():
    ours, ref = _pair()
    ours.eval()
    for name in ("grid", "coef", "scale_base", "scale_sp", "mask"):
        assert torch.equal(getattr(ours.layer, name), getattr(ref, name)), name
    x = torch.randn(16, 6) * 1.5  # inside and outside the grid's range
    y_ref, _pre, post_ref, _ps = ref(x)
    assert torch.equal(ours(x), y_ref)
    assert torch.equal(ours.edge_outputs(x), post_ref)  # (B, C, D): phi_ij(x_bj)
    assert torch.allclose(ours.edge_outputs(x).sum(-1), y_ref, atol=1e-6)
    # only the trainable tensors are parameters (deviation 1); the grid and mask are buffers
    assert {n for n, _ in ours.named_parameters()} == {"layer.coef", "layer.scale_base", "layer.scale_sp"}
    assert {n for n, _ in ours.named_buffers()} == {"layer.grid", "layer.mask"}
    assert set(ours.state_dict()) == {f"layer.{n}" for n in ("grid", "coef", "mask", "scale_base", "scale_sp")}


def test_masked_kan_equals_pykan_with_its_edge_mask_and_blocks_masked_gradients():
    ours, ref = _pair()
    layer = MaskedEdges(ours, MaskConfig(sparsity=0.5, score="actstd"), seed=0)
    x = torch.randn(32, 6)
    layer.train()
    out = layer(x)  # the first training step refreshes the mask from this batch
    m = layer.mask
    assert int((m == 0).sum()) == 4 * 3  # 3 of 6 edges masked in each of the 4 rows
    ref.mask.data = m.T.clone()  # pykan's own edge mask is (in, out)
    assert torch.allclose(out, ref(x)[0], atol=1e-6)
    out.square().sum().backward()
    g = ours.layer.coef.grad  # (in, out, G + k)
    assert torch.all(g[m.T == 0] == 0) and g[m.T == 1].abs().sum() > 0
    assert torch.all(ours.layer.scale_base.grad[m.T == 0] == 0)
    layer.eval()  # evaluation is unmasked by default (at_eval false): pykan's full forward
    assert torch.equal(layer(x), ours(x))


def test_edge_scores_generalise_the_linear_ones():
    """With phi_ij(x) = w_ij x_j the edge scores are the linear layer's obd and actstd scores."""
    torch.manual_seed(1)
    w, b, x = torch.randn(5, 7), torch.randn(5), torch.randn(20, 7)
    phi = w[None] * x[:, None, :]  # (B, C, D)
    logits = x @ w.T + b
    assert torch.allclose(edge_obd_scores(phi, logits), obd_scores(w, x, logits), rtol=1e-5, atol=1e-7)
    assert torch.allclose(phi.std(0, correction=0), actstd_scores(w, x), rtol=1e-5, atol=1e-7)


def test_kan_scores_follow_the_batch():
    ours, _ = _pair(d=6, c=3)
    ours.eval()
    x = torch.randn(64, 6)
    x[:, 2] = 0.0  # a dead feature: phi_i2 is constant, so its std is zero and it goes first
    layer = MaskedEdges(ours, MaskConfig(sparsity=1 / 6, score="actstd"))
    assert torch.all(layer.scores(x)[:, 2] == 0)
    layer.refresh(x)
    assert torch.all(layer.mask[:, 2] == 0) and int((layer.mask == 0).sum()) == 3
    obd = MaskedEdges(ours, MaskConfig(sparsity=0.5, score="obd")).scores(x)
    phi = ours.edge_outputs(x)
    p = F.softmax(phi.sum(-1), 1)
    expect = 0.5 * ((p * (1 - p))[:, :, None] * phi.square()).mean(0)
    assert torch.allclose(obd, expect, rtol=1e-5, atol=1e-8)


def test_magnitude_has_no_meaning_on_a_kan_edge():
    ours, _ = _pair()
    with pytest.raises(ValueError, match="Valid with a KAN head: obd, actstd, random"):
        mask_head(ours, MaskConfig(score="magnitude"), 0)


def test_build_model_with_a_kan_head_keeps_the_backbone_initialisation():
    torch.manual_seed(3)
    lin = build_model("lenet", num_classes=10, in_channels=1, image_size=28)
    torch.manual_seed(3)
    kan = build_model("lenet", num_classes=10, in_channels=1, image_size=28, classifier="kan")
    assert isinstance(kan.classifier, KANHead) and kan.classifier.in_features == lin.feature_dim
    body = {k: v for k, v in lin.state_dict().items() if not k.startswith("classifier.")}
    for k, v in body.items():
        assert torch.equal(kan.state_dict()[k], v), k
    assert kan(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="Valid: linear, kan"):
        build_model("lenet", num_classes=10, in_channels=1, image_size=28, classifier="mlp")


def test_the_grid_stays_because_pykans_refit_breaks_on_a_dead_feature():
    """Deviation 2: pykan's update_grid_from_samples on a batch where one feature is 0 throughout
    (a dead ReLU unit) gives NaN gradients to the inputs, that is, to the backbone; the head
    keeps pykan's initial grid through training instead."""
    torch.manual_seed(0)
    ref = KANLayer(in_dim=6, out_dim=3)
    x = torch.relu(torch.randn(64, 6))
    x[:, 2] = 0.0
    ref.update_grid_from_samples(x)
    xi = x.clone().requires_grad_(True)
    ref(xi)[0].sum().backward()
    assert not torch.isfinite(xi.grad[:, 2]).any()
    ours, ref = _pair()
    opt = torch.optim.SGD(ours.parameters(), lr=0.1)
    for _ in range(60):  # pykan would have refitted ten times by now
        loss = ours(torch.rand(32, 6) * 8).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(ours.layer.grid, ref.grid)
