"""The selection family's rules against values computed by hand on small inputs."""
import math

import pytest
import torch

from methods.selection.coteaching_plus import disagreement, exchange
from methods.selection.disc import DISCConfig, resolve_settings, select, update_thresholds
from methods.selection.elr_plus import elr_plus_loss
from methods.selection.jocor import joint_loss
from methods.selection.sed import SEDConfig, scr_update, scs_update, sed_lr
from methods.selection.mixup import sigmoid_rampup


def test_disc_sets_and_correction_by_hand():
    # 4 samples, 3 classes; given labels 0, 1, 2, 0
    p_w = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.05, 0.9, 0.05]])
    p_s = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.05, 0.85, 0.1]])
    y = torch.tensor([0, 1, 2, 0])
    tau_w = torch.tensor([0.5, 0.5, 0.9, 0.5])
    tau_s = torch.tensor([0.5, 0.5, 0.9, 0.3])
    d = select(p_w, p_s, y, tau_w, tau_s, sigma=0.3, cap=0.99)
    # sample 0: 0.8 > 0.5 and 0.7 > 0.5 -> clean; sample 1: weak 0.7 > 0.5, strong 0.3 < 0.5 -> hard;
    # sample 2: 0.8 < 0.9 and 0.7 < 0.9 -> not selected; mean max 0.75 < min(0.9 + 0.3, 0.99) -> not corrected;
    # sample 3: 0.05 and 0.05 below -> not selected; mean max 0.875 > min(0.4 + 0.3, .99) = 0.7 -> corrected to 1
    assert d["clean"].tolist() == [True, False, False, False]
    assert d["hard"].tolist() == [False, True, False, False]
    assert d["selected"].tolist() == [True, True, False, False]
    assert d["corrected"].tolist() == [False, False, False, True]
    assert int(d["label"][3]) == 1
    tau = update_thresholds(tau_w, p_w, 0.9)
    assert torch.allclose(tau, torch.tensor([0.9 * 0.5 + 0.1 * 0.8, 0.9 * 0.5 + 0.1 * 0.7,
                                             0.9 * 0.9 + 0.1 * 0.8, 0.9 * 0.5 + 0.1 * 0.9]))


def test_disc_per_setting_overrides():
    cfg = DISCConfig()
    assert resolve_settings(cfg, "sym", 0.2, 10) == {"start_epoch": 20, "momentum": 0.99, "lambda_h": 1.0,
                                                     "strong_m": 5}
    assert resolve_settings(cfg, "asym", 0.4, 10)["momentum"] == 0.95
    high = resolve_settings(cfg, "sym", 0.8, 100)
    assert (high["momentum"], high["lambda_h"], high["strong_m"]) == (0.95, 0.2, 10)
    assert resolve_settings(cfg, "idn", 0.4, 10)["start_epoch"] == 15
    assert resolve_settings(DISCConfig(momentum=0.5), "asym", 0.4, 10)["momentum"] == 0.5


def test_sed_threshold_and_clean_mask_by_hand():
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    y = torch.tensor([0, 1, 1, 2, 0])
    g0, l0 = torch.tensor(1 / 3), torch.full((3,), 1 / 3)
    g, loc, clean = scs_update(probs, y, g0, l0, m=0.5, q=0.8, clip=0.95)
    given = torch.tensor([0.6, 0.7, 0.4, 0.7, 0.3])
    q80 = torch.quantile(given, 0.8)  # linear interpolation: 0.7
    assert float(g) == pytest.approx(0.5 / 3 + 0.5 * float(q80))
    mean = probs.mean(0)
    assert torch.allclose(loc, 0.5 * l0 + 0.5 * mean)
    mod = loc / loc.max()
    expect = given >= g * mod[y]
    assert clean.tolist() == expect.tolist()
    assert clean.tolist() == [True, True, False, True, False]
    # the clip
    g_hi, _, _ = scs_update(torch.eye(3)[[0, 1, 2]], torch.tensor([0, 1, 2]), torch.tensor(0.99), l0, 0.0, 0.8, 0.95)
    assert float(g_hi) == pytest.approx(0.95)


def test_sed_weights_by_hand():
    pe = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3], [0.2, 0.8]])
    # argmax: 0, 0 (tie -> first), 0, 1: class 0 has maxp 0.9, 0.5, 0.7; class 1 only one sample
    mu, var, w = scr_update(pe, torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0]), m=0.0, n_sigma=2.0)
    assert float(mu[0]) == pytest.approx(0.7)
    assert float(var[0]) == pytest.approx(0.04)  # unbiased: ((0.2)^2 + (0.2)^2 + 0) / 2
    assert float(mu[1]) == 0.0 and float(var[1]) == 1.0  # fewer than 2 samples: mu 0, var 1
    assert float(w[0]) == pytest.approx(1.0)  # above the mean
    assert float(w[1]) == pytest.approx(math.exp(-(0.2 ** 2) / (2 * 0.04 / 4)), rel=1e-5)
    assert float(w[3]) == pytest.approx(1.0)


def test_sed_scr_variance_is_torch_var_near_one():
    """SCR.py takes torch.var of each predicted class's max-probabilities; near 1 a one-pass
    float32 formula cancels (class 0 below: 0 instead of 4.2e-9, class 1: 1.2e-7 instead of
    1.0e-8), and the EMA would carry the error for the rest of the run."""
    rows = [[0.9999, 0.0001], [0.9998, 0.0002], [0.99995, 0.00005], [0.99985, 0.00015],
            [0.0003, 0.9997], [0.0001, 0.9999], [0.0002, 0.9998]]
    pe = torch.tensor(rows)
    mu0, var0 = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0])
    for m in (0.0, 0.85):
        mu, var, w = scr_update(pe, mu0, var0, m=m, n_sigma=2.0)
        maxp, c = pe.max(1)
        for k in range(2):
            p = maxp[c == k]
            assert float(mu[k]) == float(m * mu0[k] + (1 - m) * torch.mean(p))
            assert float(var[k]) == float(m * var0[k] + (1 - m) * torch.var(p, correction=1))
        if m == 0.0:
            assert float(var[0]) == pytest.approx(4.165e-9, rel=1e-3)
            assert float(var[1]) == pytest.approx(1.0e-8, rel=1e-3)
            d = (maxp - mu[c]).clamp(max=0.0)
            assert torch.equal(w, torch.exp(-d ** 2 / (2 * var[c] / 4)))
            assert 0.0 < float(w.min()) < 1.0  # the weights are not all 1 (var 0 would make them 0 or NaN)


def test_sed_lr_plan():
    cfg = SEDConfig(warmup_epochs=20, lr=0.05, warmup_lr=0.01, end_lr=5e-4)
    assert sed_lr(cfg, 1, 100) == 0.01 and sed_lr(cfg, 20, 100) == 0.01
    assert sed_lr(cfg, 21, 100) == pytest.approx(0.05)  # i = 0 of the cosine
    assert sed_lr(cfg, 61, 100) == pytest.approx((0.05 - 5e-4) * 0.5 + 5e-4)  # i = 40 of 80
    assert sed_lr(cfg, 100, 100) > 5e-4
    # the default warm-up keeps the official share: 20 of 100, 6 of 30
    from methods.selection.sed import warmup_of
    assert warmup_of(SEDConfig(), 100) == 20 and warmup_of(SEDConfig(), 30) == 6


def test_jocor_joint_loss_by_hand():
    z1 = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 0])
    p1, p2 = z1.softmax(1), z2.softmax(1)
    ce = -(p1.log()[torch.arange(2), y] + p2.log()[torch.arange(2), y])
    kl21 = (p2 * (p2.log() - p1.log())).sum(1)  # KL(p2 || p1)
    kl12 = (p1 * (p1.log() - p2.log())).sum(1)
    lam = 0.7
    assert torch.allclose(joint_loss(z1, z2, y, lam), (1 - lam) * ce + lam * (kl21 + kl12), atol=1e-6)
    # gradients flow into both networks through the KL terms (no detach, as the official code)
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    joint_loss(a, b, y, 1.0).sum().backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_coteaching_plus_exchange_on_disagreement():
    z1 = torch.tensor([[3.0, 0.0], [0.0, 3.0], [2.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[3.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    dis = disagreement(z1, z2)
    assert dis.tolist() == [False, True, True, False]
    y = torch.tensor([0, 0, 0, 1])
    pos = dis.nonzero().squeeze(1)
    l1, l2, s1 = exchange(z1[pos], z2[pos], y[pos], rate=0.5)
    # one of two kept: net 1's smallest loss is sample 2 (position 1), net 2's is sample 1 (position 0)
    assert s1.tolist() == [1]
    ce = torch.nn.functional.cross_entropy
    assert float(l1) == pytest.approx(float(ce(z1[1:2], y[1:2])))  # net 1 trains on net 2's pick
    assert float(l2) == pytest.approx(float(ce(z2[2:3], y[2:3])))
    # everything when floor((1 - R) M) is 0
    _, _, s_all = exchange(z1[pos], z2[pos], y[pos], rate=0.9)
    assert len(s_all) == 2


def test_elr_plus_loss_and_ramp():
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y_mix = torch.tensor([[0.8, 0.2], [0.0, 1.0]])
    q = torch.tensor([[0.6, 0.4], [0.3, 0.7]])
    ce, reg = elr_plus_loss(logits, y_mix, q, 3.0, reweight=False)
    p = logits.softmax(1)
    assert float(ce) == pytest.approx(float(-(y_mix * p.log()).sum(1).mean()), abs=1e-6)
    assert float(reg) == pytest.approx(float(torch.log(1 - (q * p).sum(1)).mean()), abs=1e-6)
    ce_rw, _ = elr_plus_loss(logits, y_mix, q, 3.0, reweight=True)
    yt = y_mix * q / (y_mix * q).sum(1, keepdim=True)
    assert float(ce_rw) == pytest.approx(float(-(yt * p.log()).sum(1).mean()), abs=1e-6)
    assert sigmoid_rampup(5, 0) == 1.0
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(100, 100) == 1.0


def test_elr_plus_reweighting_matches_the_official_division_wherever_it_is_finite():
    """loss.py:30 divides by the row sum unguarded: a tiny sum (1e-13 on both labels) still gives a
    proper distribution (0.7, 0.3), where revision 1's clamp at 1e-12 gave (0.07, 0.03); a zero
    sum (official NaN) gives a zero target here."""
    logits = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    y_mix = torch.tensor([[0.7, 0.3], [0.6, 0.4]])
    q = torch.tensor([[1e-13, 1e-13], [0.0, 0.0]])
    ce, _ = elr_plus_loss(logits, y_mix, q, 3.0, reweight=True)
    logp = logits.log_softmax(1)
    expect = -(torch.tensor([0.7, 0.3]) * logp[0]).sum() / 2  # row 2 contributes nothing
    assert float(ce) == pytest.approx(float(expect), rel=1e-6)
    assert math.isfinite(float(ce))


def test_correction_quality_by_hand():
    from benchmark.training.diagnostics import correction_quality
    clean = torch.tensor([0, 1, 2, 3, 0, 1])
    noisy = torch.tensor([0, 2, 2, 1, 1, 1])       # samples 1, 3, 4 are noisy
    corrected = torch.tensor([-1, 1, 0, 2, -1, -1])  # fixes 1, breaks 2 (clean), relabels 3 wrongly
    q = correction_quality(corrected, noisy, clean)
    assert q["correct/fraction"] == pytest.approx(3 / 6)
    assert q["correct/accuracy"] == pytest.approx(1 / 3)
    assert q["correct/fixed"] == pytest.approx(1 / 3)
    assert q["correct/broken"] == pytest.approx(1 / 3)
    # after relabelling: 0 ok, 1 ok, 2 wrong, 3 wrong, 4 wrong (kept noisy), 5 ok
    assert q["correct/label_precision"] == pytest.approx(3 / 6)
    assert correction_quality(None, noisy, clean) == {}


def test_forwards_inside_one_step_count_one_mask_step():
    """DISC and SED run several forwards per optimiser step: one_step makes them one mask step
    (one refresh), and the graph of the first forward survives the second (no in-place change)."""
    from methods.mask import MaskConfig, MaskedLinear, one_step
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.classifier = MaskedLinear(torch.randn(3, 8), torch.zeros(3), MaskConfig(sparsity=0.5, refresh=1))
    net.train()
    x = torch.randn(4, 8)
    with one_step(net):
        a = net.classifier(x)
        b = net.classifier(torch.randn(4, 8))
        (a.sum() + b.sum()).backward()
    assert net.classifier.steps == 1 and net.classifier.refreshes == 1
    a = net.classifier(x)  # outside: every forward is a step
    net.classifier(x)
    assert net.classifier.steps == 3
