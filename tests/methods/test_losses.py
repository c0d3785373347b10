"""The robust losses against hand-computed values, with the official quirks that change numbers."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.config import OptimConfig
from benchmark.models import build_model
from benchmark.training.optim import build_optimizer
from methods.per_sample import ce_per_sample
from methods.losses.bootstrap import bootstrap_loss
from methods.losses.forward_t import anchor_transition, forward_loss
from methods.losses.terms import l1_of, mae, nce, nnce, rce

P = torch.tensor([[0.7, 0.2, 0.1]])
LOGITS = P.log()  # softmax(log p) = p
Y0 = torch.tensor([0])
Y1 = torch.tensor([1])


def test_rce_uses_the_official_clamp_so_a_is_ln_1e_4():
    # -(0.2 ln 1e-4 + 0.1 ln 1e-4) = 0.3 * 9.2103...: A = ln 1e-4, not the -4 papers print
    assert rce(LOGITS, Y0).item() == pytest.approx(0.3 * -math.log(1e-4), rel=1e-6)
    assert rce(LOGITS, Y0).item() == pytest.approx(2.763102, rel=1e-6)
    assert rce(LOGITS, Y0, label_clamp=1e-2).item() == pytest.approx(0.3 * -math.log(1e-2), rel=1e-6)


def test_nce_nnce_and_mae_match_their_formulas():
    lp = [math.log(0.7), math.log(0.2), math.log(0.1)]
    assert nce(LOGITS, Y0).item() == pytest.approx(lp[0] / sum(lp), rel=1e-6)
    assert nce(LOGITS, Y0).item() == pytest.approx(0.083555, abs=1e-6)
    a = -math.log(1e-7)
    t = [a + v for v in lp]
    assert nnce(LOGITS, Y0).item() == pytest.approx(1 - t[0] / sum(t), rel=1e-6)
    assert nnce(LOGITS, Y0).item() == pytest.approx(0.642482, abs=1e-5)
    # the label with the largest probability has the smallest NNCE
    assert nnce(LOGITS, Y0).item() < nnce(LOGITS, Y1).item()
    assert mae(LOGITS, Y0).item() == pytest.approx(0.3, rel=1e-6)
    # nnce clamps p at min_prob: a zero probability stays finite
    z = torch.tensor([[0.0, -200.0, 0.0]])
    assert math.isfinite(nnce(z, torch.tensor([1])).item())


def test_bootstrap_soft_keeps_the_gradient_through_its_target_and_hard_uses_argmax():
    soft = bootstrap_loss(LOGITS, Y0, 0.95, "soft").item()
    want = -((0.95 + 0.05 * 0.7) * math.log(0.7) + 0.05 * 0.2 * math.log(0.2) + 0.05 * 0.1 * math.log(0.1))
    assert soft == pytest.approx(want, rel=1e-6)
    hard = bootstrap_loss(LOGITS, Y1, 0.8, "hard").item()
    assert hard == pytest.approx(-(0.8 * math.log(0.2) + 0.2 * math.log(0.7)), rel=1e-6)
    # official: no stop-gradient on p inside the soft target, so the gradient differs from that
    # of a detached target
    z = LOGITS.clone().requires_grad_(True)
    bootstrap_loss(z, Y0, 0.95, "soft").sum().backward()
    p = torch.softmax(z.detach(), 1)
    z2 = LOGITS.clone().requires_grad_(True)
    lp = torch.log_softmax(z2, 1)
    (-(0.95 * torch.nn.functional.one_hot(Y0, 3) + 0.05 * p) * lp).sum().backward()
    assert not torch.allclose(z.grad, z2.grad)


def test_anl_l1_sums_every_parameter_batch_norm_included():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        net[0].weight.fill_(0.5)
        net[0].bias.fill_(-1.0)
        net[1].weight.fill_(2.0)
        net[1].bias.fill_(0.25)
    # 6 * 0.5 + 2 * 1 + 2 * 2 + 2 * 0.25: a sum over weights, biases and batch-norm affine terms
    assert l1_of(net.parameters()).item() == pytest.approx(3.0 + 2.0 + 4.0 + 0.5)


def test_anl_ce_replaces_the_protocols_weight_decay_and_says_so(tiny, tmp_path):
    from benchmark.store import Store
    from benchmark.training import run
    res = run(tiny("anl_ce", epochs=1, **{"optim.weight_decay": 0.01}), tmp_path, wandb="disabled")
    row = Store(tmp_path).read_metrics(res["run_id"])[0]
    assert row["train/weight_decay_replaced"] == 0.0 and row["train/penalty"] > 0
    res = run(tiny("anl_ce", epochs=1, **{"optim.weight_decay": 0.01, "hp.replace_weight_decay": False}),
              tmp_path, wandb="disabled")
    assert "train/weight_decay_replaced" not in Store(tmp_path).read_metrics(res["run_id"])[0]
    opt = build_optimizer(OptimConfig(weight_decay=0.01), [nn.Parameter(torch.ones(2))], weight_decay=0.0)
    assert opt.param_groups[0]["weight_decay"] == 0.0


def test_forward_loss_with_identity_is_ce_and_with_t_is_minus_log_pt():
    assert forward_loss(LOGITS, Y1, torch.eye(3)).item() == pytest.approx(ce_per_sample(LOGITS, Y1).item(), rel=1e-5)
    T = torch.tensor([[0.6, 0.4, 0.0], [0.0, 0.6, 0.4], [0.4, 0.0, 0.6]])
    # (p @ T)_1 = 0.7 * 0.4 + 0.2 * 0.6 = 0.40
    assert forward_loss(LOGITS, Y1, T).item() == pytest.approx(-math.log(0.40), rel=1e-5)


def test_anchor_estimator_recovers_a_known_transition():
    """Noisy posteriors p(noisy | x) = p(clean | x) @ T with an anchor (a sure sample) per class:
    the estimator returns T. Its outlier filter then skips the top 3% of each column."""
    C, n = 4, 400
    T = torch.full((C, C), 0.1) + 0.5 * torch.eye(C)
    T = T / T.sum(1, keepdim=True)
    with torch.random.fork_rng():  # Dirichlet sampling takes no generator: seed a forked global one
        torch.manual_seed(0)
        clean = torch.distributions.Dirichlet(torch.ones(C) * 0.3).sample((n,))
    clean[:C] = torch.eye(C)  # the anchors
    noisy = clean @ T
    est = anchor_transition(noisy, filter_outliers=False)
    assert torch.allclose(est, T, atol=1e-6)
    assert torch.allclose(est.sum(1), torch.ones(C))
    # with the filter, the anchor is a near-sure sample below the 97th percentile: close, not exact
    filt = anchor_transition(noisy, filter_outliers=True)
    assert (filt - T).abs().max() < 0.1 and not torch.allclose(filt, T, atol=1e-6)


def test_gradient_clipping_is_a_protocol_setting_of_the_optimiser():
    p = nn.Parameter(torch.zeros(4))
    opt = build_optimizer(OptimConfig(name="sgd", lr=1.0, momentum=0.0, weight_decay=0.0, grad_clip=1.0), [p])
    p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])  # norm 5
    opt.step()
    assert p.detach().norm().item() == pytest.approx(1.0, rel=1e-5)  # the step used a clipped gradient
    q = nn.Parameter(torch.zeros(4))
    opt = build_optimizer(OptimConfig(name="sgd", lr=1.0, momentum=0.0, weight_decay=0.0), [q])
    q.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    opt.step()
    assert q.detach().norm().item() == pytest.approx(5.0, rel=1e-5)


def test_cnn8_is_the_apl_toy_model():
    net = build_model("cnn8", num_classes=10, in_channels=3, image_size=32)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 196, 196]
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 3
    fc = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fc] == [(3136, 256), (256, 10)]
    assert net.classifier is fc[-1]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_forward_t_stages_resume_across_the_estimate_and_oracle_is_recorded(tiny, tmp_path):
    from benchmark.store import Store
    from benchmark.training import run
    cfg = tiny("forward_t", epochs=4)  # W = 2: CE for epochs 1-2, T estimated, 3-4 corrected
    full = run(cfg, tmp_path / "full", wandb="disabled")
    part = run(cfg, tmp_path / "part", stop_after=2, wandb="disabled")  # stops right before the estimate
    assert not part["finished"]
    resumed = run(cfg, tmp_path / "part", wandb="disabled")
    a = Store(tmp_path / "full").read_metrics(full["run_id"])
    b = Store(tmp_path / "part").read_metrics(resumed["run_id"])
    assert [r["fwd/stage"] for r in a] == [1.0, 1.0, 2.0, 2.0]
    assert [r["train/loss"] for r in a] == [r["train/loss"] for r in b]
    assert a[2]["fwd/T_diag_mean"] == b[2]["fwd/T_diag_mean"] and "fwd/T_diag_mean" not in a[1]
    # each stage runs the schedule over its own length: stage 2 starts again from the full lr
    assert a[2]["train/lr"] == a[0]["train/lr"] > a[1]["train/lr"]
    oracle = run(tiny("forward_t", epochs=1, **{"hp.estimator": "oracle"}), tmp_path / "o", wandb="disabled")
    row = Store(tmp_path / "o").read_metrics(oracle["run_id"])[0]
    assert row["fwd/T_is_oracle"] == 1.0 and row["fwd/stage"] == 2.0
    # the oracle T is the artifact's realised matrix: its mean diagonal is one minus the flip rate
    assert row["fwd/T_diag_mean"] == pytest.approx(1 - oracle["noise/actual_rate"], abs=0.05)


def test_sce_keras_variant_caps_ce_and_leaves_rce_p_unclipped():
    """The SCE authors' Keras loss: CE of p clipped at 1e-7 (16.118 and no gradient when p_y is
    below), RCE with p unclipped; APL's PyTorch loss (the default) keeps the full CE."""
    import torch
    from methods.losses.sce import SCE, SCEConfig, keras_ce
    from methods.losses.terms import rce
    z = torch.tensor([[0.0, 20.0, 0.0], [2.0, 1.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0])
    ce = keras_ce(z, y)
    assert float(ce[0]) == pytest.approx(-math.log(1e-7), rel=1e-6)  # p_y = 2.1e-9 < 1e-7: capped
    ce[0].backward()
    assert torch.all(z.grad[0] == 0)
    assert float(ce[1]) == pytest.approx(float(torch.nn.functional.cross_entropy(z[1:], y[1:])), rel=1e-6)
    m = SCE()
    m.cfg = SCEConfig(variant="keras")
    p = torch.softmax(z.detach(), 1)
    expect_rce = -(p * torch.nn.functional.one_hot(y, 3).float().clamp(1e-4, 1).log()).sum(1)
    assert torch.allclose(rce(z.detach(), y, clip_p=False), expect_rce)
    keras = m.loss(z.detach(), y)
    m.cfg = SCEConfig(variant="apl")
    apl = m.loss(z.detach(), y)
    assert float(keras[0]) == pytest.approx(0.1 * 16.118095 + float(expect_rce[0]), rel=1e-5)
    assert float(apl[0]) == pytest.approx(0.1 * 20.0 + float(rce(z.detach(), y)[0]), rel=1e-5)
