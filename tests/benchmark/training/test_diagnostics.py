"""The gradient-error diagnostics: closed forms against autograd, names, and no side effects."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.models import build_model
from benchmark.training.diagnostics import gradient_errors, linear_ce_grads, probe_metrics, relative_error
from methods.mask import MaskConfig, MaskedLinear


def _data(b=20, d=6, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, generator=g), torch.randn(c, d, generator=g),
            torch.randn(c, generator=g), torch.randint(0, c, (b,), generator=g))


@pytest.mark.parametrize("masked", [False, True])
def test_closed_form_gradients_match_autograd(masked):
    f, w, b, y = _data()
    mask = (torch.rand(w.shape, generator=torch.Generator().manual_seed(1)) > 0.5).float() if masked else None
    g_w, g_f = linear_ce_grads(f, w, b, y, mask)
    w_ = w.clone().requires_grad_()
    f_ = f.clone().requires_grad_()
    w_eff = w_ * mask if masked else w_
    # G_W: gradient of the mean CE; G_f: per-sample gradients = gradient of the summed CE
    gw_auto, = torch.autograd.grad(F.cross_entropy(f @ w_eff.T + b, y), w_)
    w_eff = w * mask if masked else w
    gf_auto, = torch.autograd.grad(F.cross_entropy(f_ @ w_eff.T + b, y, reduction="sum"), f_)
    torch.testing.assert_close(g_w, gw_auto)
    torch.testing.assert_close(g_f, gf_auto)
    if masked:
        assert (g_w[mask == 0] == 0).all()


def test_relative_error():
    a = torch.tensor([3.0, 4.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(torch.zeros(2), a) == pytest.approx(1.0)
    assert relative_error(a * 2, a) == pytest.approx(1.0)
    assert math.isnan(relative_error(a, torch.zeros(2)))
    f, w, b, y = _data()
    assert gradient_errors(f, w, b, y, y) == {"fc": 0.0, "feat": 0.0}
    ones = torch.ones_like(w)
    noisy = (y + 1) % 4
    assert gradient_errors(f, w, b, noisy, y, ones) == pytest.approx(gradient_errors(f, w, b, noisy, y))


class _Method:
    def __init__(self, net):
        self.net = net

    def networks(self):
        return [self.net]


def _net(masked: bool):
    torch.manual_seed(0)
    net = build_model("cnn", num_classes=10, in_channels=1, image_size=8)
    if masked:
        net.classifier = MaskedLinear.from_linear(net.classifier, MaskConfig(sparsity=0.5))
    net.train()
    x = torch.randn(32, 1, 8, 8)
    net(x).sum().backward()  # one training forward: a mask, BN statistics, gradients
    return net


@pytest.mark.parametrize("masked", [False, True])
def test_probe_metrics_names_and_no_side_effects(masked):
    net = _net(masked)
    x = torch.randn(64, 1, 8, 8)
    clean = torch.randint(0, 10, (64,))
    noisy = clean.clone()
    noisy[:20] = (noisy[:20] + 3) % 10
    before = {k: v.clone() for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}
    grads = [p.grad.clone() for p in net.parameters()]
    extra = net.classifier.get_extra_state() if masked else None
    rng = torch.random.get_rng_state()
    out = probe_metrics(_Method(net), x, noisy, clean)
    expect = {"grad/err_fc_unmasked", "grad/err_feat_unmasked"}
    if masked:
        expect |= {"grad/err_fc_masked", "grad/err_feat_masked"}
    assert set(out) == expect
    assert all(math.isfinite(v) and v > 0 for v in out.values())
    assert net.training  # mode restored
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats, weights, mask
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, net.parameters()))
    assert torch.equal(rng, torch.random.get_rng_state())
    if masked:
        assert net.classifier.get_extra_state() == extra  # no step counted, no refresh
        # the masked figures are the closed form with the mask, on eval-mode features
        net.eval()
        with torch.no_grad():
            f = net.forward_features(x)
        ref = gradient_errors(f, net.classifier.weight.detach(), net.classifier.bias.detach(),
                              noisy, clean, net.classifier.mask)
        assert out["grad/err_fc_masked"] == pytest.approx(ref["fc"])
        assert out["grad/err_feat_masked"] == pytest.approx(ref["feat"])
    assert probe_metrics(_Method(net), x, clean, clean)["grad/err_fc_unmasked"] == 0.0


def test_methods_without_a_linear_head_report_nothing():
    class NoNets:
        def networks(self):
            return []
    assert probe_metrics(NoNets(), torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long),
                         torch.zeros(2, dtype=torch.long)) == {}
