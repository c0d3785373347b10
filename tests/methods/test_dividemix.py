"""DivideMix: the semi-supervised helpers on hand-computed inputs, the co-divide, degenerate
divisions and exact resume, on hand-built contexts (see test_coteaching.fake_ctx)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import methods.selection.dividemix as dm
from methods.selection.dividemix import guess_labels, refine_labels, warmup_epochs
from methods.batching import cycled_order
from methods.selection.division import gmm_clean_prob, minmax
from methods.selection.mixup import linear_rampup, mix, mixup_lambdas, negative_entropy, sharpen, uniform_prior_penalty
from tests.methods.test_coteaching import fake_ctx, make


# --------------------------------------------------------------------------- helpers (semi.py)
def test_sharpen_hand_values_and_rows_sum_to_one():
    p = torch.tensor([[0.6, 0.4], [0.5, 0.5], [1.0, 0.0]])
    s = sharpen(p, 0.5)
    assert s[0].tolist() == pytest.approx([0.36 / 0.52, 0.16 / 0.52])
    assert s[1].tolist() == pytest.approx([0.5, 0.5])
    assert s[2].tolist() == [1.0, 0.0]
    q = torch.softmax(torch.randn(32, 10, generator=torch.Generator().manual_seed(0)), 1)
    sq = sharpen(q, 0.5)
    assert torch.allclose(sq.sum(1), torch.ones(32))
    assert (sq.max(1).values >= q.max(1).values - 1e-7).all()  # never flatter


def test_mixup_coefficients_at_least_half_and_shapes():
    lam = mixup_lambdas(np.random.default_rng(0), 4.0, 1000)
    assert lam.shape == (1000,) and lam.min() >= 0.5 and lam.max() <= 1.0
    assert lam.std() > 0.01  # really drawn, not a constant
    x = torch.randn(12, 3, 8, 8)
    t = torch.softmax(torch.randn(12, 5), 1)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    mx, mt = mix(x, t, 0.7, perm)
    assert mx.shape == x.shape and mt.shape == t.shape
    assert torch.allclose(mx[3], 0.7 * x[3] + 0.3 * x[perm[3]])
    assert torch.allclose(mt.sum(1), torch.ones(12))


def test_linear_rampup_hand_values():
    assert linear_rampup(10.5, 10, 16) == pytest.approx(0.03125)
    assert linear_rampup(5.0, 10, 16) == 0.0
    assert linear_rampup(40.0, 10, 16) == 1.0
    assert linear_rampup(3.0, 1, 0) == 1.0


def test_uniform_prior_penalty_and_negative_entropy_hand_values():
    assert float(uniform_prior_penalty(torch.full((4, 3), 1 / 3))) == pytest.approx(0.0, abs=1e-7)
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])  # mean (0.75, 0.25)
    want = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert float(uniform_prior_penalty(probs)) == pytest.approx(want)
    assert float(negative_entropy(torch.zeros(3, 10))) == pytest.approx(-math.log(10))


def test_refine_and_guess_labels():
    onehot = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    px = torch.tensor([[0.2, 0.8], [0.2, 0.8]])
    r = refine_labels(px, onehot, torch.tensor([1.0, 0.0]), 0.5)
    assert r[0].tolist() == [1.0, 0.0]                                     # trusted label
    assert r[1].tolist() == pytest.approx([0.04 / 0.68, 0.64 / 0.68])      # own prediction
    g = guess_labels(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[0.5, 0.5]], [[0.5, 0.5]]]), 0.5)
    assert g.shape == (1, 2) and g[0].tolist() == pytest.approx([0.5, 0.5])


def test_cycled_order_is_back_to_back_permutations():
    g = torch.Generator().manual_seed(0)
    o = cycled_order(5, 13, g, torch.device("cpu"))
    assert o.shape == (13,)
    assert sorted(o[:5].tolist()) == sorted(o[5:10].tolist()) == list(range(5))
    assert set(o[10:].tolist()) <= set(range(5)) and len(set(o[10:].tolist())) == 3


# --------------------------------------------------------------------------- the mixture
def _bimodal(seed, n_clean=700, n_noisy=300):
    rng = np.random.default_rng(seed)
    losses = np.concatenate([rng.normal(0.3, 0.08, n_clean), rng.normal(2.0, 0.4, n_noisy)])
    clean = np.r_[np.ones(n_clean, bool), np.zeros(n_noisy, bool)]
    return torch.tensor(losses, dtype=torch.float32), clean


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gmm_recovers_the_clean_set_from_the_low_mean_component(seed):
    losses, clean = _bimodal(seed, n_clean=300 + 200 * seed, n_noisy=700 - 200 * seed)
    prob = gmm_clean_prob(minmax(losses), seed=seed).numpy()
    assert prob.shape == (1000,)
    assert roc_auc_score(clean, prob) > 0.95
    # the low-mean component is P(clean): clean samples high, noisy ones low, whatever the
    # order scikit-learn gives the components
    assert prob[clean].mean() > 0.9 and prob[~clean].mean() < 0.1


def test_gmm_is_reproducible_with_its_seed():
    losses, _ = _bimodal(3)
    a = gmm_clean_prob(losses, seed=5)
    assert torch.equal(a, gmm_clean_prob(losses, seed=5))


# --------------------------------------------------------------------------- the method
def test_warmup_default_scales_with_the_budget():
    cfg = dm.DivideMixConfig()
    assert [warmup_epochs(cfg, e) for e in (4, 6, 20, 100, 300)] == [1, 1, 2, 10, 10]
    assert warmup_epochs(dm.DivideMixConfig(warmup=30), 300) == 30


def test_conf_penalty_only_for_asymmetric_noise():
    assert make("dividemix", fake_ctx(noise_kind="asym")).penalise
    assert not make("dividemix", fake_ctx(noise_kind="sym")).penalise


def test_networks_differ_in_initialisation_and_warmup_order():
    ctx = fake_ctx(n=64, batch=8)  # warm-up batch 16
    m = make("dividemix", ctx, warmup=2)
    assert ctx.built == [0, 1] and not torch.equal(m.nets[0].table, m.nets[1].table)
    m.train_epoch(1)
    o1, o2 = ([ids for _, ids in net.calls] for net in m.nets)
    assert sorted(sum(o1, [])) == sorted(sum(o2, [])) == list(range(64))
    assert o1 != o2


def test_each_network_trains_on_the_partners_division(monkeypatch):
    n = 64
    ctx = fake_ctx(n=n, batch=8, epochs=4)
    m = make("dividemix", ctx, warmup=1)
    ids = torch.arange(n)
    fixed = [torch.where(ids % 2 == 0, 0.9, 0.1), torch.where(ids < 16, 0.8, 0.2)]
    monkeypatch.setattr(m, "divide", lambda k, epoch: fixed[k].clone())
    seen = []
    real = dm.refine_labels

    def spy(px, onehot, w, temperature):
        seen.append(w.clone())
        return real(px, onehot, w, temperature)

    monkeypatch.setattr(dm, "refine_labels", spy)
    out = m.train_epoch(2)
    # net 1 trains first, on net 2's labelled set (16 samples, w = 0.8);
    # then net 2 on net 1's (32 samples, w = 0.9)
    n1 = out["dividemix/labelled_net1"] * n
    w1 = torch.cat(seen[:2])       # 16 labelled / batch 8 = 2 batches for net 1
    w2 = torch.cat(seen[2:])
    assert n1 == 16 and w1.numel() == 16 and torch.all(w1 == 0.8)
    assert w2.numel() == 32 and torch.all(w2 == 0.9)
    assert torch.equal(m.selected(), ids % 2 == 0)
    assert torch.equal(m.clean_scores(), fixed[0])


def test_co_divide_uses_the_low_loss_samples():
    """After warm-up on a learnable half, the mixture marks that half clean."""
    n, c = 64, 4
    ctx = fake_ctx(n=n, c=c, batch=16, epochs=3)
    m = make("dividemix", ctx, warmup=1)
    with torch.no_grad():
        for net in m.nets:
            net.table.zero_()
            net.table[torch.arange(32), ctx.noisy_labels[:32]] = 6.0  # fits ids < 32 only
    p = m.divide(0, 2)
    assert p[:32].min() > 0.5 > p[32:].max()


@pytest.mark.parametrize("cut", [0.0, 1.0])
def test_degenerate_divisions_do_not_crash(monkeypatch, cut):
    ctx = fake_ctx(n=40, batch=16, model="cnn", epochs=3)
    m = make("dividemix", ctx, warmup=1)
    prob = torch.full((40,), 1.0 - cut)  # cut 0: everything labelled; cut 1: nothing labelled
    monkeypatch.setattr(m, "divide", lambda k, epoch: prob.clone())
    before = [p.detach().clone() for p in m.nets[0].parameters()]
    out = m.train_epoch(2)
    assert math.isfinite(out["train/loss"])
    changed = any(not torch.equal(a, b) for a, b in zip(before, m.nets[0].parameters()))
    if cut == 1.0:
        assert out["dividemix/skipped_net1"] == 1.0 and not changed
    else:
        assert out["dividemix/lu_net1"] == 0.0 and changed


def test_resume_mid_semi_supervised_phase_with_loss_history_is_exact():
    def fresh():
        return make("dividemix", fake_ctx(n=80, batch=16, model="cnn", epochs=4),
                    warmup=1, loss_history=5, lambda_u=25.0, rampup_epochs=1.0)

    def epoch(m, e):
        torch.manual_seed(e)
        return m.train_epoch(e)

    a = fresh()
    ra = [epoch(a, e) for e in (1, 2, 3, 4)]
    b = fresh()
    for e in (1, 2, 3):
        epoch(b, e)
    assert b.history[0].shape == (2, 80)  # two post-warm-up divisions kept
    c = fresh()
    c.load_state_dict(b.state_dict())
    assert torch.equal(c.clean_scores(), b.clean_scores())
    rc = epoch(c, 4)
    assert rc == ra[-1] and ra[-1]["dividemix/lu_net1"] > 0
    assert torch.equal(a.history[1], c.history[1])
    x = torch.rand(5, 1, 8, 8) - 0.5
    assert torch.equal(a.predict_logits(x), c.predict_logits(x))


def test_single_pass_for_identical_views_matches_two_view_passes():
    """Without augmentation the de-duplicated no-gradient pass trains exactly like the two-view one."""
    def run(same):
        m = make("dividemix", fake_ctx(n=48, batch=16, model="cnn", epochs=3), warmup=1,
                 rampup_epochs=1.0)
        assert m._same_views
        m._same_views = same
        for e in (1, 2):
            torch.manual_seed(e)
            out = m.train_epoch(e)
        return m, out

    (a, ra), (b, rb) = run(True), run(False)
    assert ra["dividemix/lu_net2"] > 0
    assert ra["train/loss"] == pytest.approx(rb["train/loss"], rel=1e-4)
    for pa, pb in zip(a.nets[1].parameters(), b.nets[1].parameters()):
        assert torch.allclose(pa, pb, atol=1e-5)


def test_random_augmentation_uses_two_distinct_views():
    ctx = fake_ctx(n=48, batch=16, model="cnn", epochs=3)
    base = ctx.normalise
    ctx.augment = lambda t, gen: base(t) + 0.1 * torch.randn(t.shape, generator=gen)
    m = make("dividemix", ctx, warmup=1)
    assert not m._same_views
    views = m._views(ctx.train_x[:4], torch.Generator().manual_seed(0))
    assert len(views) == 2 and not torch.equal(*views)
    m.train_epoch(1)
    out = m.train_epoch(2)
    assert math.isfinite(out["train/loss"]) and out["dividemix/skipped_net1"] == 0.0


# --------------------------------------------------------------- the Clothing1M protocol
def _official_walk(labels, perm, n, c):
    """dataloader_clothing1M.py, mode 'all': walk the shuffled list, keep while the class has
    fewer than n / c and fewer than n are kept."""
    kept, count = [], [0] * c
    for i in perm:
        y = int(labels[i])
        if count[y] < n / c and len(kept) < n:
            kept.append(int(i))
            count[y] += 1
    return kept


@pytest.mark.parametrize("n", [7, 30, 64, 500])
def test_balanced_subset_is_the_official_walk(n):
    g = torch.Generator().manual_seed(3)
    labels = torch.cat([torch.zeros(100, dtype=torch.long), torch.randint(1, 5, (80,), generator=g)])
    got = dm.balanced_subset(labels, n, 5, torch.Generator().manual_seed(11))
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(11))
    want = _official_walk(labels, perm.tolist(), n, 5)
    assert sorted(got.tolist()) == sorted(want) and len(set(got.tolist())) == len(want)
    counts = torch.bincount(labels[got], minlength=5)
    assert counts.max() <= math.ceil(n / 5)


def test_num_batches_draws_class_balanced_subsets_for_warmup_and_division():
    n, c, batch = 120, 4, 4
    ctx = fake_ctx(n=n, c=c, batch=batch, epochs=3)
    m = make("dividemix", ctx, warmup=1, num_batches=3)  # warm-up 3 x 8, division 3 x 4
    m.train_epoch(1)
    seen = [sorted(sum((ids for _, ids in net.calls), [])) for net in m.nets]
    assert len(seen[0]) == len(seen[1]) == 24 and seen[0] != seen[1]   # each its own draw
    assert len(set(seen[0])) == 24
    for net in m.nets:
        net.calls.clear()
    m.train_epoch(2)
    for k in (0, 1):
        scored = torch.isfinite(m.prob[k])
        assert int(scored.sum()) == 12          # num_batches x batch_size samples divided
        assert torch.bincount(ctx.noisy_labels[scored], minlength=c).max() <= 3
    assert not torch.equal(torch.isfinite(m.prob[0]), torch.isfinite(m.prob[1]))  # two draws
    sel = m.selected()  # nothing outside the divided subset is selected
    assert sel is not None and not bool(sel[~torch.isfinite(m.prob[0])].any())


def test_mix_forward_labelled_trains_on_the_labelled_rows_only(monkeypatch):
    n = 32
    ctx = fake_ctx(n=n, batch=8, epochs=3)
    m = make("dividemix", ctx, warmup=1, mix_forward="labelled", lambda_u=0.0)
    ids = torch.arange(n)
    monkeypatch.setattr(m, "divide", lambda k, epoch: torch.where(ids < 16, 0.9, 0.1))
    m.nets[0].calls.clear()
    m.train_epoch(2)
    trained = [len(r) for grad, r in m.nets[0].calls if grad]
    assert trained == [16, 16]   # 2 batches of 2 x 8 mixed labelled rows (no unlabelled rows)


def test_clothing1m_settings_are_checked_together():
    from methods.params import ConfigError
    from methods import resolve_hp
    with pytest.raises(ConfigError, match="lambda_u must be 0"):
        resolve_hp("dividemix", {"mix_forward": "labelled", "lambda_u": 25.0}, None)
    with pytest.raises(ConfigError, match="loss_history must be 1"):
        resolve_hp("dividemix", {"num_batches": 10, "loss_history": 5}, None)
