"""Co-teaching: the schedule, the small-loss choice and the cross update, on instrumented nets.

The instrumented runs use a hand-built RunContext whose "images" carry their own sample id and
whose networks are lookup tables (one row of logits per sample): a table row changes only when
that sample's loss reached the network's update, so the rows that moved show who trained whom.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.models import build_model
from methods import RunContext, get_method, resolve_hp
from methods.selection.coteaching import drop_rate, num_kept, official_plan, small_loss_subset


class TableNet(nn.Module):
    """Logits looked up by sample id: x (B, 1, 1, 1) holding ids -> (B, C) table rows.

    Records the ids of every forward pass, with whether gradients were on."""

    def __init__(self, n: int, c: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(n, c, generator=g))
        self.calls: list[tuple[bool, list[int]]] = []

    def forward(self, x):
        ids = x.reshape(x.shape[0], -1)[:, 0].round().long()
        self.calls.append((torch.is_grad_enabled(), ids.tolist()))
        return self.table[ids]


def fake_ctx(n=64, c=4, batch=16, epochs=20, noise_rate=0.5, model=None, labels=None,
             noise_kind="sym", lr=0.1, seed=0):
    """A RunContext without the runner. model=None: TableNet lookup tables on id-images;
    otherwise a registered backbone on random 8x8 images."""
    g = torch.Generator().manual_seed(seed)
    if model is None:
        x = torch.arange(n, dtype=torch.uint8).reshape(n, 1, 1, 1)
        built = []

        def build(k):
            built.append(k)
            return TableNet(n, c, seed=100 + k)

        def norm(t):
            return t.float()
    else:
        x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
        built = []

        def build(k):
            built.append(k)
            torch.manual_seed(1000 + k)
            return build_model(model, num_classes=c, in_channels=1, image_size=8)

        def norm(t):
            return t.float() / 255.0 - 0.5
    y = labels if labels is not None else torch.randint(0, c, (n,), generator=g)

    def set_lr(opt, epoch, epochs=None):
        for group in opt.param_groups:
            group["lr"] = lr
        return lr

    ctx = RunContext(
        train_x=x, noisy_labels=y, num_classes=c, epochs=epochs, batch_size=batch,
        eval_batch_size=256, device=torch.device("cpu"), noise_rate=noise_rate,
        noise_kind=noise_kind, build_model=build,
        make_optimizer=lambda p, weight_decay=None: torch.optim.SGD(p, lr=lr), set_epoch_lr=set_lr,
        augment=lambda t, gen: norm(t), normalise=norm,
        generator=lambda epoch, stream: torch.Generator().manual_seed(7919 * epoch + stream))
    ctx.built = built  # the keys build_model was called with (test-only attribute)
    return ctx


def make(method, ctx, **hp):
    m = get_method(method)()
    m.setup(ctx, resolve_hp(method, hp))
    return m


# --------------------------------------------------------------------------- schedule
def test_drop_rate_schedule_hand_values():
    # paper: R(e) = tau * min((e - 1) / T_k, 1), tau = 0.5, T_k = 10
    assert [drop_rate(e, 0.5, 10, "paper") for e in (1, 2, 6, 10, 11, 12, 200)] == pytest.approx(
        [0.0, 0.05, 0.25, 0.45, 0.5, 0.5, 0.5])
    assert drop_rate(1, 0.3, 0, "paper") == 0.3  # no ramp


def test_official_indexing_is_main_pys_rate_schedule():
    """main.py: rate_schedule = ones(n_epoch) * tau; rate_schedule[:T_k] = linspace(0, tau, T_k);
    epoch e (1, 2, ...) trains with rate_schedule[e]."""
    import numpy as np
    for tau, tk in ((0.5, 10), (0.45, 5), (0.2, 2), (0.3, 1), (0.3, 0)):
        schedule = np.ones(200) * tau
        schedule[:tk] = np.linspace(0, tau, tk)
        assert [drop_rate(e, tau, tk) for e in range(1, 30)] == list(schedule[1:30])  # bit for bit
    # every ramp of the usual grid: the rate is np.linspace's value exactly (0.54, e=6: 0.36000000000000004)
    for tk in range(2, 21):
        for k in range(1, 100):
            tau = k / 100
            ramp = np.linspace(0, tau, tk)
            assert all(drop_rate(e, tau, tk) == ramp[e] for e in range(1, tk)), (tau, tk)
    assert drop_rate(6, 0.54, 10) == 0.36000000000000004


def test_kept_counts_truncate_as_loss_py():
    """int((1 - R) * B) in float64, as the official loss.py, but at least 1."""
    assert num_kept(128, 0.2) == 102          # int(102.4)
    assert num_kept(90, 0.3) == 62            # (1 - 0.3) * 90 = 62.99999999999999: 62, as the official
    assert num_kept(10, 0.9) == 1             # int(0.9999999999999998) = 0 there: at least 1 here
    assert num_kept(10, 0.0) == 10
    assert num_kept(3, 0.9) == 1              # never empty
    from methods.selection.coteaching_plus import exchange
    z = torch.randn(5, 3)
    _, _, picks = exchange(z, z, torch.zeros(5, dtype=torch.long), 0.8)
    assert len(picks) == 5                    # Co-teaching+: int(0.9999999999999998) = 0 -> all 5


def test_official_plan_scales_to_the_budget():
    # 200 epochs: constant through epoch 80, then lr * (200 - e + 1) / 120 and beta1 0.1
    assert official_plan(80, 200, 1e-3, 0.4) == (1e-3, 0.9)
    assert official_plan(81, 200, 1e-3, 0.4) == (pytest.approx(1e-3), 0.1)
    assert official_plan(200, 200, 1e-3, 0.4) == (pytest.approx(1e-3 / 120), 0.1)
    # 10 epochs: decay from epoch 5 (40%), down to lr / 6 in the last epoch
    assert official_plan(4, 10, 1.0, 0.4) == (1.0, 0.9)
    assert official_plan(10, 10, 1.0, 0.4) == (pytest.approx(1 / 6), 0.1)


def test_small_loss_subset_keeps_the_smallest():
    losses = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7])
    assert small_loss_subset(losses, 3).tolist() == [1, 3, 2]


# --------------------------------------------------------------------------- instrumented runs
def test_cross_update_each_network_trains_on_the_partners_choice():
    n, c = 64, 4
    y = torch.arange(n) % c
    ctx = fake_ctx(n=n, c=c, batch=n, labels=y)  # one batch holding every sample
    m = make("coteaching", ctx, forget_rate=0.5)
    net1, net2 = m.nets
    with torch.no_grad():  # net 1 fits the even ids, net 2 the ids below 32
        ids = torch.arange(n)
        net1.table.zero_()
        net2.table.zero_()
        net1.table[ids[ids % 2 == 0], y[ids % 2 == 0]] = 5.0
        net2.table[ids[ids < 32], y[ids < 32]] = 5.0
    before1, before2 = net1.table.detach().clone(), net2.table.detach().clone()
    out = m.train_epoch(11)  # R = tau = 0.5: keep 32 of 64
    moved1 = (net1.table.detach() != before1).any(1)
    moved2 = (net2.table.detach() != before2).any(1)
    assert torch.equal(torch.nonzero(moved2).squeeze(1), ids[ids % 2 == 0])  # net 1's choice
    assert torch.equal(torch.nonzero(moved1).squeeze(1), ids[ids < 32])      # net 2's choice
    assert torch.equal(m.selected(), ids % 2 == 0)
    assert out["coteach/drop_rate"] == 0.5 and out["coteach/tau_is_oracle"] == 0.0
    # net 1's scores rank its own small-loss samples first
    s = m.clean_scores()
    assert s[ids % 2 == 0].min() > s[ids % 2 == 1].max()


def test_one_shared_batch_and_one_forward_per_network_as_the_official_code():
    """main.py feeds one loader's batch to both networks, one forward each with gradients."""
    ctx = fake_ctx(n=64, batch=16)
    m = make("coteaching", ctx)
    assert ctx.built == [0, 1]
    net1, net2 = m.nets
    assert not torch.equal(net1.table, net2.table)
    m.train_epoch(1)
    assert all(grad for grad, _ in net1.calls + net2.calls)  # no separate ranking pass
    seen1, seen2 = [ids for _, ids in net1.calls], [ids for _, ids in net2.calls]
    assert seen1 == seen2 and len(seen1) == 4                # the same batches, in the same order
    assert sorted(sum(seen1, [])) == list(range(64))


def test_independent_orders_remain_an_option():
    """batch_order = independent (revision 1): each network ranks its own batch without
    gradients, and is updated on the partner's batch."""
    ctx = fake_ctx(n=64, batch=16)
    m = make("coteaching", ctx, batch_order="independent")
    net1, net2 = m.nets
    m.train_epoch(1)
    rank1 = [ids for grad, ids in net1.calls if not grad]   # net 1 ranks its own batches
    rank2 = [ids for grad, ids in net2.calls if not grad]
    upd1 = [ids for grad, ids in net1.calls if grad]        # and is updated on net 2's batches
    upd2 = [ids for grad, ids in net2.calls if grad]
    assert sorted(sum(rank1, [])) == list(range(64)) == sorted(sum(rank2, []))
    assert rank1 != rank2                                  # different orders
    assert upd2 == rank1 and upd1 == rank2                 # the cross pairing, batch by batch


def test_oracle_tau_is_recorded():
    m = make("coteaching", fake_ctx(noise_rate=0.4))
    out = m.train_epoch(6)
    assert out["coteach/forget_rate"] == 0.4 and out["coteach/tau_is_oracle"] == 1.0
    assert out["coteach/drop_rate"] == 6 * (0.4 / 9)  # official indexing, T_k = 10


def test_official_schedule_sets_adam_lr_and_beta1():
    ctx = fake_ctx(epochs=10, model="cnn")
    m = make("coteaching", ctx, schedule="official")
    assert all(isinstance(o, torch.optim.Adam) for o in m.opts)
    out = m.train_epoch(10)
    assert out["train/lr"] == pytest.approx(1e-3 / 6)
    assert m.opts[1].param_groups[0]["betas"] == (0.1, 0.999)
    assert math.isfinite(out["train/loss"])


def test_bad_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        make("coteaching", fake_ctx(), schedule="cosine")


def test_resume_mid_schedule_is_exact():
    def fresh():
        return make("coteaching", fake_ctx(n=96, batch=32, model="cnn"), forget_rate=0.3)

    a = fresh()
    for e in (1, 2, 3):
        torch.manual_seed(e)
        ra = a.train_epoch(e)
    b = fresh()
    for e in (1, 2):
        torch.manual_seed(e)
        b.train_epoch(e)
    c = fresh()
    c.load_state_dict(b.state_dict())
    torch.manual_seed(3)
    rc = c.train_epoch(3)
    assert ra == rc
    assert torch.equal(a.selected(), c.selected())
    for pa, pc in zip(a.nets[1].parameters(), c.nets[1].parameters()):
        assert torch.equal(pa, pc)
