"""ELR, SOP and CDR against hand-computed values, and the harness parts they need."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import OptimConfig
from benchmark.training.optim import lr_at
from methods.per_sample import PerSampleState
from methods.regularisers.cdr import critical_gradient_mask
from methods.regularisers.elr import elr_loss
from methods.regularisers.sop import sop_loss

P = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
LOGITS = P.log()
Y = torch.tensor([0, 1])


def test_elr_updates_the_target_from_the_detached_prediction_and_regularises_the_live_one():
    t0 = torch.tensor([[0.2, 0.5, 0.3], [0.0, 0.0, 0.0]])
    z = LOGITS.clone().requires_grad_(True)
    loss, new_t = elr_loss(z, Y, t0, beta=0.7, lam=3.0)
    want_t = 0.7 * t0 + 0.3 * P  # p already sums to 1 and lies inside [1e-4, 1 - 1e-4]
    assert torch.allclose(new_t, want_t, atol=1e-6) and not new_t.requires_grad
    ce = -(math.log(0.7) + math.log(0.3)) / 2
    reg = sum(math.log(1 - float((want_t[i] * P[i]).sum())) for i in range(2)) / 2
    assert loss.item() == pytest.approx(ce + 3.0 * reg, rel=1e-5)
    # the gradient is that of CE + lam * log(1 - <t, p>) with t constant and p live
    loss.backward()
    z2 = LOGITS.clone().requires_grad_(True)
    p2 = torch.softmax(z2, 1)
    (F.cross_entropy(z2, Y) + 3.0 * (1 - (want_t * p2).sum(1)).log().mean()).backward()
    assert torch.allclose(z.grad, z2.grad, atol=1e-6)


def test_sop_clamps_u_and_v_and_v_learns_from_the_squared_term_only():
    u = torch.tensor([[0.3], [2.0]], requires_grad=True)  # sample 2: u^2 = 4, clamped to 1
    v = torch.full((2, 3), 0.2, requires_grad=True)
    z = LOGITS.clone().requires_grad_(True)
    loss = sop_loss(z, Y, u, v)
    loss.backward()
    assert u.grad[1].item() == 0.0 and u.grad[0].item() != 0.0  # saturated clamp: no gradient
    # v's gradient is the squared term's alone (v is detached inside the prediction)
    yoh = F.one_hot(Y, 3).float()
    v2 = v.detach().clone().requires_grad_(True)
    U = (u.detach().square() * yoh).clamp(0, 1)
    V = (v2.square() * (1 - yoh)).clamp(0, 1)
    hard = F.one_hot(LOGITS.argmax(1), 3).float()
    (F.mse_loss(hard + U - V, yoh, reduction="sum") / 2).backward()
    assert torch.allclose(v.grad, v2.grad, atol=1e-7)
    # the value: CE of the L1-normalised corrected prediction + the squared term
    q = (P + U - V.detach()).clamp_min(1e-4)
    q = (q / q.sum(1, keepdim=True)).clamp(1e-4, 1)
    want = -(yoh * q.log()).sum(1).mean() + F.mse_loss(hard + U - V.detach(), yoh, reduction="sum") / 2
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)


def test_cdr_keeps_the_top_fraction_by_w_times_g_scaled_and_zeroes_the_rest():
    a = nn.Parameter(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
    b = nn.Parameter(torch.tensor([4.0, 1.0, -1.0, 0.1]))
    a.grad = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # |w g| = 1, 2, 3, 0.5
    b.grad = torch.tensor([1.0, 0.5, 5.0, 1.0])       # |w g| = 4, 0.5, 5, 0.1
    kept = critical_gradient_mask([a, b], keep=0.5, scale=0.5)  # top 4 of 8: 5, 4, 3, 2
    assert kept.item() == 0.5
    assert torch.equal(a.grad, torch.tensor([[0.0, 0.5], [0.5, 0.0]]))
    assert torch.equal(b.grad, torch.tensor([0.5, 0.0, 2.5, 0.0]))
    # keep 0: every loss gradient is cut
    a.grad = torch.ones(2, 2)
    assert critical_gradient_mask([a], keep=0.0, scale=1.0).item() == 0.0 and not a.grad.any()


def test_cdr_run_records_its_oracle_tau_and_kept_fraction(tiny, tmp_path):
    from benchmark.store import Store
    from benchmark.training import run
    res = run(tiny("cdr", epochs=1), tmp_path, wandb="disabled")
    row = Store(tmp_path).read_metrics(res["run_id"])[0]
    assert row["cdr/tau"] == 0.4 and row["cdr/tau_is_oracle"] == 1.0
    assert 0.59 <= row["cdr/kept_frac"] <= 0.62  # int(0.6 n) of n, ties kept
    res = run(tiny("cdr", epochs=1, **{"hp.tau": 0.9, "hp.scope": "classifier"}), tmp_path, wandb="disabled")
    row = Store(tmp_path).read_metrics(res["run_id"])[0]
    assert row["cdr/tau_is_oracle"] == 0.0 and 0.09 <= row["cdr/kept_frac"] <= 0.12


def test_per_sample_state_refuses_another_split():
    s = PerSampleState(t=torch.zeros(5, 3))
    saved = s.state_dict()
    saved["t"][2, 1] = 7.0
    s.load_state_dict(saved)
    assert s["t"][2, 1] == 7.0
    with pytest.raises(ValueError, match="another training split"):
        PerSampleState(t=torch.zeros(6, 3)).load_state_dict(saved)


def test_cosine_restarts_and_eta_min():
    c = OptimConfig(lr=0.02, schedule="cosine_restarts", restart_every=10, eta_min=1e-3)
    assert lr_at(c, 1, 150) == pytest.approx(0.02)
    assert lr_at(c, 6, 150) == pytest.approx(1e-3 + (0.02 - 1e-3) * 0.5)
    assert lr_at(c, 11, 150) == pytest.approx(0.02)  # a restart every 10 epochs
    assert lr_at(c, 10, 150) == pytest.approx(1e-3 + (0.02 - 1e-3) * 0.5 * (1 + math.cos(math.pi * 0.9)))
    # torch's own scheduler, stepped once per epoch, gives the same values
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.02)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10, eta_min=1e-3)
    for epoch in range(1, 31):
        assert lr_at(c, epoch, 150) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()
    cos = OptimConfig(lr=0.02, schedule="cosine", eta_min=2e-4)
    assert lr_at(cos, 300, 300) > 2e-4 and lr_at(cos, 1, 300) == pytest.approx(0.02)


def test_new_optimiser_settings_are_checked_and_leave_old_run_ids_alone(tiny):
    from benchmark.config import check_config
    from benchmark.errors import UsageError
    with pytest.raises(UsageError, match="restart_every"):
        check_config(tiny("ce", **{"optim.schedule": "cosine_restarts"}))
    with pytest.raises(UsageError, match="eta_min"):
        check_config(tiny("ce", **{"optim.lr": 0.01, "optim.eta_min": 0.1}))
    base = tiny("ce")
    assert "grad_clip" not in base.identity()["optim"]
    clipped = tiny("ce", **{"optim.grad_clip": 5.0})
    assert clipped.identity()["optim"]["grad_clip"] == 5.0 and clipped.run_id() != base.run_id()
