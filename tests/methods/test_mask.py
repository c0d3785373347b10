"""The masked classifier layer: OBD score against autograd, exact sparsity, zero gradients, refresh."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from methods.params import check_fields
from methods.mask import (SCORES, MaskConfig, MaskedLinear, actstd_scores, mask_from_scores,
                          num_masked, obd_scores)


def _layer(c=5, d=12, seed=0, **cfg) -> MaskedLinear:
    torch.manual_seed(seed)
    return MaskedLinear.from_linear(torch.nn.Linear(d, c), MaskConfig(**cfg), seed=seed)


def _x(b=16, d=12, seed=1) -> torch.Tensor:
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed))


def test_obd_score_is_half_w2_times_the_gauss_newton_diagonal():
    """diag(J^T (diag p - p p^T) J) of softmax CE w.r.t. W, built with autograd, per sample, averaged."""
    torch.manual_seed(0)
    c, d, b = 3, 4, 6
    w = torch.randn(c, d, dtype=torch.float64)
    bias = torch.randn(c, dtype=torch.float64)
    x = torch.randn(b, d, dtype=torch.float64)
    gn = torch.zeros(c * d, c * d, dtype=torch.float64)
    for xb in x:
        jac = torch.autograd.functional.jacobian(lambda ww: ww @ xb + bias, w).reshape(c, c * d)
        p = F.softmax(w @ xb + bias, dim=0)
        gn += jac.T @ (torch.diag(p) - torch.outer(p, p)) @ jac
    gn /= b
    diag = gn.diagonal().reshape(c, d)
    # the closed form the layer uses: h_ij = E_b[p_i (1 - p_i) x_j^2]
    p = F.softmax(x @ w.T + bias, dim=1)
    closed = (p * (1 - p)).T @ (x ** 2) / b
    torch.testing.assert_close(diag, closed)
    score = obd_scores(w, x, x @ w.T + bias).double()
    torch.testing.assert_close(score, 0.5 * w.square() * diag, rtol=1e-5, atol=1e-7)


def test_layer_obd_score_uses_the_unmasked_or_the_masked_prediction():
    layer = _layer(score="obd")
    x = _x()
    w, b = layer.weight.detach(), layer.bias.detach()
    torch.testing.assert_close(layer.scores(x), obd_scores(w, x, x @ w.T + b))
    layer.mask[:, :6] = 0
    torch.testing.assert_close(layer.scores(x), obd_scores(w, x, x @ w.T + b))  # unmasked default
    layer.cfg.obd_probs = "masked"
    torch.testing.assert_close(layer.scores(x), obd_scores(w, x, x @ (w * layer.mask).T + b))


def test_actstd_and_magnitude_scores():
    layer = _layer(score="actstd")
    x = _x()
    expect = (layer.weight.detach()[:, None, :] * x[None]).std(dim=1, correction=0)
    torch.testing.assert_close(actstd_scores(layer.weight.detach(), x), expect.abs())
    torch.testing.assert_close(layer.scores(x), expect.abs())
    layer.cfg.score = "magnitude"
    torch.testing.assert_close(layer.scores(x), layer.weight.detach().abs())


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("shape", [(10, 128), (3, 7), (1, 2)])
def test_sparsity_is_exact_per_row_and_per_layer(sparsity, shape):
    scores = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    row = mask_from_scores(scores, sparsity, "row")
    k = num_masked(sparsity, shape[1])
    assert k == min(shape[1] - 1, math.floor(sparsity * shape[1] + 0.5))
    assert ((row == 0).sum(1) == k).all()
    # the masked entries are the lowest scores of their row
    for r in range(shape[0]):
        if 0 < k < shape[1]:
            assert scores[r][row[r] == 0].max() <= scores[r][row[r] == 1].min()
    layer = mask_from_scores(scores, sparsity, "layer")
    n = scores.numel()
    assert int((layer == 0).sum()) == num_masked(sparsity, n)
    if 0 < num_masked(sparsity, n):
        assert scores[layer == 0].max() <= scores[layer == 1].min()
    assert set(row.unique().tolist()) <= {0.0, 1.0} and set(layer.unique().tolist()) <= {0.0, 1.0}


def test_ties_are_broken_by_index():
    m = mask_from_scores(torch.zeros(2, 4), 0.5, "row")
    assert m.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]
    assert mask_from_scores(torch.zeros(2, 4), 0.25, "layer").flatten().tolist() == [0, 0, 1, 1, 1, 1, 1, 1]


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("scope", ["row", "layer"])
def test_masked_entries_get_exactly_zero_gradient(score, scope):
    layer = _layer(score=score, scope=scope, sparsity=0.5)
    layer.train()
    x = _x()
    out = layer(x)
    F.cross_entropy(out, torch.arange(16) % 5).backward()
    masked = layer.mask == 0
    assert int(masked.sum()) > 0
    assert (layer.weight.grad[masked] == 0).all()
    assert (layer.weight.grad[~masked] != 0).any()
    assert (layer.bias.grad != 0).any()  # the bias is never masked
    # the output uses only the kept edges
    torch.testing.assert_close(out, x @ (layer.weight * layer.mask).T + layer.bias)


def test_initial_weights_are_copied_and_sparsity_zero_is_the_plain_layer():
    torch.manual_seed(0)
    lin = torch.nn.Linear(12, 5)
    state = torch.random.get_rng_state()
    layer = MaskedLinear.from_linear(lin, MaskConfig(sparsity=0.0))
    assert torch.equal(torch.random.get_rng_state(), state)  # no random number drawn
    assert torch.equal(layer.weight, lin.weight) and torch.equal(layer.bias, lin.bias)
    x = _x()
    layer.train()
    assert torch.equal(layer(x), lin(x))
    assert (layer.mask == 1).all()


def test_evaluation_is_unmasked_by_default_and_masked_with_at_eval():
    x = _x()
    for at_eval in (False, True):
        layer = _layer(sparsity=0.5, at_eval=at_eval)
        layer.train()
        layer(x)
        assert (layer.mask == 0).any()
        layer.eval()
        w = layer.weight * layer.mask if at_eval else layer.weight
        with torch.no_grad():
            assert torch.equal(layer(x), F.linear(x, w, layer.bias))
        assert layer.refreshes == 1 and layer.steps == 1  # eval passes neither count nor refresh


@pytest.mark.parametrize("k", [1, 3, 4])
def test_refresh_period_of_k_steps_recomputes_exactly_every_k_steps(k):
    layer = _layer(score="random", sparsity=0.5, refresh=k)
    layer.train()
    changed_at = []
    for step in range(10):
        before = layer.mask.clone()
        refreshes = layer.refreshes
        layer(_x(seed=step))
        if layer.refreshes != refreshes:
            changed_at.append(step)
            assert not torch.equal(layer.mask, before)  # random scores: a new mask every time
        else:
            assert torch.equal(layer.mask, before)
        with torch.no_grad():  # no-gradient passes (ranking, label guessing) do not count
            layer(_x(seed=100 + step))
    assert changed_at == list(range(0, 10, k))
    assert layer.steps == 10 and layer.refreshes == len(changed_at)


def test_inactive_layer_trains_unmasked_and_does_not_count():
    layer = _layer(sparsity=0.5)
    layer.active = False
    layer.train()
    x = _x()
    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
    assert layer.steps == 0 and layer.refreshes == 0 and (layer.mask == 1).all()


@pytest.mark.parametrize("score", SCORES)
def test_same_seed_same_masks_and_resume_is_exact(score):
    def steps(layer, n, start):
        out = []
        for i in range(start, start + n):
            layer(_x(seed=i))
            out.append(layer.mask.clone())
        return out

    a, b = _layer(score=score, refresh=2, seed=7), _layer(score=score, refresh=2, seed=7)
    a.train(), b.train()
    ma = steps(a, 6, 0)
    mb = steps(b, 3, 0)
    state = b.state_dict()
    assert "mask" in state and "_extra_state" in state
    c = _layer(score=score, refresh=2, seed=99)  # different seed and counters: all restored
    c.load_state_dict(state)
    c.train()
    mb += steps(c, 3, 3)
    assert all(torch.equal(x, y) for x, y in zip(ma, mb))
    if score == "random":
        d = _layer(score=score, refresh=2, seed=8)
        d.train()
        assert not all(torch.equal(x, y) for x, y in zip(ma, steps(d, 6, 0)))


@pytest.mark.parametrize("bad", [{"sparsity": 1.0}, {"sparsity": -0.1}, {"score": "taylor"},
                                 {"scope": "column"}, {"refresh": 0}, {"warmup_epochs": -1},
                                 {"obd_probs": "x"}])
def test_config_check_names_the_bad_setting(bad):
    with pytest.raises(ValueError, match=f"mask.{next(iter(bad))}"):
        check_fields(MaskConfig(**bad), "mask.")
