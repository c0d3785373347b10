"""DISC: dynamic instance-specific selection and correction, on a weak and a strong view.

Method card
- Paper: Li, Han, Wang & Wang, "DISC: Learning from Noisy Labels via Dynamic Instance-Specific
  Selection and Correction", CVPR 2023.
- Official code checked: JackYFL/DISC @ a21e910: algorithms/DISC.py (the training step :270-326,
  the after-epoch selection :328-360, the hidden optimiser overrides :118-143, the per-setting
  overrides :60-90), main.py (--momentum :25), configs/DISC_CIFAR.py, losses/loss_mixup.py,
  losses/loss_other.py (GCE), datasets/randaugment.py (RandAugmentwogeo).
- Defaults and their source (``-1`` resolves per setting at setup, as DISC.py does; the resolved
  values are logged as disc/*):
  start_epoch: warm-up epochs with CE on both views, 20; 15 for instance-dependent noise
  (DISC.py:66-81). momentum (lambda of the threshold EMA): 0.99 (main.py:25); 0.95 for
  asymmetric noise and at rates 0.6 and 0.8 (DISC.py:64-90). lambda_h: 1; 0.2 at rates 0.6 and
  0.8 (DISC.py:72-89). lambda_ce 1, sigma 0.5 (DISC.py:58-60; the maintainer says 0.3 suits low noise,
  JackYFL/DISC#7, kept at the code's 0.5), threshold cap 0.99 (v1.0 had 0.90), GCE q 0.7
  (loss_other.py:39), mixup alpha 5 (DISC_CIFAR.py:23), thresholds start at 1 / N (DISC.py:211).
  schedule "official": DISC.py's optimiser, not the config's: rate <= 0.6 SGD lr 0.1, momentum 0
  (none passed), wd 1e-3, lr x0.1 at 40% and 80% of the epochs (MultiStepLR [80, 160] of 200);
  rate > 0.6 Adam lr 0.001, from 60% of the epochs (120 of 200) lr falls linearly and beta1 is
  0.1. "protocol" uses the run's optimiser and schedule.
  Strong view: RandAugmentwogeo(n=2, m=5) for 10 classes, m=10 for 100 (randaugment.py:270-381):
  DISC's 16-operation pool, each operation with probability 0.5, then a grey Cutout of 0.15 of
  the side (benchmark/data/augment/strong.py).
- Algorithm (per epoch e, 1-based): warm-up while e <= start_epoch. Every step stores the
  softmax of both views for the batch (train-mode forwards of that step). After every epoch,
  with the thresholds tau_w, tau_s of the previous epoch: clean = p_w[y] > tau_w and
  p_s[y] > tau_s; selected = either; hard = selected but not clean; corrected = not selected and
  max of the view-mean probability > min((tau_w + tau_s) / 2 + sigma, cap), relabelled to its
  argmax; then tau <- m tau + (1 - m) max_c p per view. A robust step's loss: lambda_ce (CE_w + CE_s)
  on clean samples x |clean| / B, lambda_h (GCE_w + GCE_s) on hard ones x |hard| / B, plus mixup
  of the selected and corrected samples with their (new) labels, once on the weak and once on the
  strong images, each with its own lambda and permutation.
- Deviations (numbered):
  1. Schedules scale with the epoch budget (milestones at 40% / 80%, Adam decay from 60%); at
     200 epochs they are the official ones. The official Adam plan is read one epoch late
     (alpha_plan[e] set at the end of epoch e); here epoch e uses the plan's entry e - 1, like
     Co-teaching's (the first decayed epoch differs by one).
  2. The weak view is the protocol's crop and flip (zero padding; DISC pads by reflection). The
     strong view crops and flips on its own draw, then the policy, as the official transform.
  3. Ground-truth labels: the official code reads them to print accuracies; here only the runner
     scores selection and correction (select/*, correct/*), never visible to the method.
  4. The official run skips the optimiser step when the loss is exactly zero (no set non-empty);
     the same here. A 1-sample batch is skipped (BatchNorm).
  5. The test set is the whole test set (the official loader drops its last partial batch).
  6. The backbone is the protocol's: DISC.py:37-38 switches CIFAR with instance noise to
     ResNet-34, which a preset for that setting must choose (the disc preset has no such setting).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Method, RunContext, StrongSpec, register_method
from methods.batching import batches
from methods.per_sample import gce_per_sample, one_hot
from methods.selection.coteaching import official_plan
from methods.mask import one_step
from methods.params import param
from methods.selection.mixup import epoch_rng, mixup_lambda, soft_ce

SCHEDULES = ("official", "protocol")


@dataclass
class DISCConfig:
    start_epoch: int = param(-1, ge=0, also=(-1,))
    """Warm-up epochs (CE on both views). -1: DISC.py's per-setting value (20; 15 for idn noise)."""
    momentum: float = param(-1.0, ge=0.0, lt=1.0, also=(-1.0,))
    """lambda of the per-sample threshold EMA, in [0, 1). -1: 0.99, or 0.95 for asymmetric
    noise and at rates 0.6 and 0.8 (DISC.py)."""
    lambda_ce: float = param(1.0, ge=0.0)
    """Weight of the CE term on the clean set (DISC.py:58)."""
    lambda_h: float = param(-1.0, ge=0.0, also=(-1.0,))
    """Weight of the GCE term on the hard set. -1: 1, or 0.2 at rates 0.6 and 0.8 (DISC.py)."""
    sigma: float = param(0.5, ge=0.0, le=1.0)
    """Margin added to the mean threshold for correction (DISC.py:60)."""
    threshold_cap: float = param(0.99, gt=0.0, le=1.0)
    """Upper bound of the correction threshold (0.99 at a21e910; 0.90 in v1.0)."""
    gce_q: float = param(0.7, gt=0.0, le=1.0)
    """q of the GCE loss on the hard set (losses/loss_other.py:39)."""
    alpha: float = param(5.0, gt=0.0)
    """Mixup Beta(alpha, alpha) parameter (configs/DISC_CIFAR.py:23)."""
    schedule: str = param("official", choices=SCHEDULES)
    """"official": DISC.py's optimiser per noise rate (see the card); "protocol": the run's."""
    strong_policy: str = param("randaugment", choices=("randaugment", "autoaugment", "none"))
    """Strong view policy (DISC: RandAugmentwogeo, the "randaugment" policy with the disc pool)."""
    strong_m: int = param(-1, ge=2, le=10, also=(-1,))
    """RandAugment level bound m (levels 1..m-1). -1: 5 for <= 10 classes, 10 otherwise."""


def resolve_settings(cfg: DISCConfig, kind: str, rate: float, num_classes: int) -> dict[str, float]:
    """DISC.py's per-setting overrides for the ``-1`` fields (DISC.py:60-90, main.py:25)."""
    # DISC.py:71, 83, 87 switch at percent 0.6 and 0.8 exactly (other rates keep the defaults)
    high = any(abs(rate - r) < 1e-9 for r in (0.6, 0.8))
    # instance noise warms up 15 epochs, except CIFAR-100 at 80% (DISC.py:88 sets 20 again)
    idn_short = kind == "idn" and not (num_classes > 10 and rate >= 0.8 - 1e-9)
    asym = kind in ("asym", "pairflip")
    return {
        "start_epoch": cfg.start_epoch if cfg.start_epoch >= 0 else (15 if idn_short else 20),
        "momentum": cfg.momentum if cfg.momentum >= 0 else (0.95 if asym or high else 0.99),
        "lambda_h": cfg.lambda_h if cfg.lambda_h >= 0 else (0.2 if high else 1.0),
        "strong_m": cfg.strong_m if cfg.strong_m >= 0 else (5 if num_classes <= 10 else 10),
    }


def select(p_w: Tensor, p_s: Tensor, y: Tensor, tau_w: Tensor, tau_s: Tensor, sigma: float,
           cap: float) -> dict[str, Tensor]:
    """DISC's after-epoch division (DISC.py:328-350).

    p_w, p_s: (N, C) stored softmax of the weak and strong views; y: (N,) given labels;
    tau_w, tau_s: (N,) thresholds of the previous epoch. Returns (N,) bool clean, hard, selected,
    corrected and (N,) int64 the corrected label (argmax of the view mean; meaningful where
    corrected)."""
    pw_y = p_w.gather(1, y[:, None]).squeeze(1)
    ps_y = p_s.gather(1, y[:, None]).squeeze(1)
    w_ok, s_ok = pw_y > tau_w, ps_y > tau_s
    clean = w_ok & s_ok
    selected = w_ok | s_ok
    ens = (p_w + p_s) / 2
    conf, label = ens.max(1)
    thr = ((tau_w + tau_s) / 2 + sigma).clamp(max=cap)
    corrected = (conf > thr) & ~selected
    return {"clean": clean, "hard": selected & ~clean, "selected": selected,
            "corrected": corrected, "label": label}


def update_thresholds(tau: Tensor, probs: Tensor, momentum: float) -> Tensor:
    """(N,) threshold, (N, C) stored probabilities -> (N,) m tau + (1 - m) max_c p (DISC.py:358-360)."""
    return momentum * tau + (1.0 - momentum) * probs.max(1).values


@register_method("disc")
class DISC(Method):
    Config = DISCConfig

    def setup(self, ctx: RunContext, cfg: DISCConfig) -> None:
        self.ctx, self.cfg = ctx, cfg
        self.s = resolve_settings(cfg, ctx.noise_kind, ctx.noise_rate, ctx.num_classes)
        self.net = ctx.build_model(0)
        self.adam = cfg.schedule == "official" and ctx.noise_rate > 0.6 + 1e-9
        if cfg.schedule == "protocol":
            self.opt = ctx.make_optimizer(self.net.parameters())
        elif self.adam:
            self.opt = torch.optim.Adam(self.net.parameters(), lr=0.001)
        else:
            self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1, momentum=0.0, weight_decay=1e-3)
        self.strong = ctx.strong_view(StrongSpec(policy=cfg.strong_policy, pool="disc", n=2,
                                                 m=int(self.s["strong_m"])))
        n, c, dev = ctx.num_train, ctx.num_classes, ctx.device
        self.p_w = torch.zeros(n, c, device=dev)
        self.p_s = torch.zeros(n, c, device=dev)
        self.tau_w = torch.full((n,), 1.0 / n, device=dev)
        self.tau_s = torch.full((n,), 1.0 / n, device=dev)
        self.flags = {k: torch.zeros(n, dtype=torch.bool, device=dev)
                      for k in ("clean", "hard", "selected", "corrected")}
        self.labels = ctx.noisy_labels.clone()  # the label mixup trains each sample on
        self.divided = False

    def _lr(self, epoch: int) -> float:
        ctx, e = self.ctx, self.ctx.epochs
        if self.cfg.schedule == "protocol":
            return ctx.set_epoch_lr(self.opt, epoch)
        if self.adam:
            lr, beta1 = official_plan(epoch, e, 0.001, 0.6)
            for g in self.opt.param_groups:
                g["lr"], g["betas"] = lr, (beta1, g["betas"][1])
            return lr
        lr = 0.1 * 0.1 ** sum(1 for m in (0.4 * e, 0.8 * e) if epoch > round(m))
        for g in self.opt.param_groups:
            g["lr"] = lr
        return lr

    def train_epoch(self, epoch: int) -> dict[str, float]:
        ctx = self.ctx
        lr = self._lr(epoch)
        warm = epoch <= self.s["start_epoch"]
        g = ctx.generator(epoch, 0)
        rng = epoch_rng(g)
        self.net.train()
        dev = ctx.device
        tot = torch.zeros((), device=dev)
        steps = 0
        for idx in batches(ctx.num_train, ctx.batch_size, g, dev):
            xu, y = ctx.train_x[idx], ctx.noisy_labels[idx]
            xw, xs = ctx.augment(xu, g), self.strong(xu, g)
            b = len(idx)
            with one_step(self.net):
                out = self.net(torch.cat([xw, xs]))
                lw, ls = out[:b], out[b:]
                if warm:
                    loss = F.cross_entropy(lw.float(), y) + F.cross_entropy(ls.float(), y)
                else:
                    loss = self._robust_loss(idx, xw, xs, lw, ls, y, rng, g)
            with torch.no_grad():
                self.p_w[idx] = F.softmax(lw.detach().float(), 1)
                self.p_s[idx] = F.softmax(ls.detach().float(), 1)
            if loss.requires_grad:
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                tot += loss.detach()
                steps += 1
        self._divide()
        out = {"train/loss": float(tot) / max(steps, 1), "train/lr": lr,
               "disc/warmup": 1.0 if warm else 0.0,
               "disc/tau_weak_mean": float(self.tau_w.mean()), "disc/tau_strong_mean": float(self.tau_s.mean()),
               **{f"disc/{k}_fraction": float(v.float().mean()) for k, v in self.flags.items()},
               **{f"disc/{k}": float(v) for k, v in self.s.items()}}
        out["train/acc"] = float((self.p_w.argmax(1) == ctx.noisy_labels).float().mean())
        return out

    def _robust_loss(self, idx, xw, xs, lw, ls, y, rng, g) -> Tensor:
        cfg, b = self.cfg, len(idx)
        clean, hard = self.flags["clean"][idx], self.flags["hard"][idx]
        loss = torch.zeros((), device=lw.device)
        nc, nh = int(clean.sum()), int(hard.sum())
        if nc:
            ce = F.cross_entropy(lw[clean].float(), y[clean]) + F.cross_entropy(ls[clean].float(), y[clean])
            loss = loss + ce * cfg.lambda_ce * nc / b
        if nh:
            loss = loss + (gce_per_sample(lw[hard], y[hard], cfg.gce_q).mean()
                           + gce_per_sample(ls[hard], y[hard], cfg.gce_q).mean()) * self.s["lambda_h"] * nh / b
        keep = (self.flags["selected"] | self.flags["corrected"])[idx]
        k = int(keep.sum())
        if k:
            target = one_hot(self.labels[idx][keep], self.ctx.num_classes)
            for x in (xw[keep], xs[keep]):  # one mixup per view, each its own lambda and permutation
                lam = mixup_lambda(rng, cfg.alpha)
                perm = torch.randperm(k, generator=g, device=g.device).to(x.device)
                mixed = lam * x + (1 - lam) * x[perm]
                t = lam * target + (1 - lam) * target[perm]
                loss = loss + soft_ce(self.net(mixed), t).mean()
        return loss

    @torch.no_grad()
    def _divide(self) -> None:
        y = self.ctx.noisy_labels
        d = select(self.p_w, self.p_s, y, self.tau_w, self.tau_s, self.cfg.sigma, self.cfg.threshold_cap)
        for k in self.flags:
            self.flags[k] = d[k]
        self.labels = torch.where(d["selected"], y, torch.where(d["corrected"], d["label"], self.labels))
        self.tau_w = update_thresholds(self.tau_w, self.p_w, self.s["momentum"])
        self.tau_s = update_thresholds(self.tau_s, self.p_s, self.s["momentum"])
        self.divided = True

    @torch.no_grad()
    def predict_logits(self, x: Tensor) -> Tensor:
        self.net.eval()
        return self.net(x)

    def selected(self) -> Tensor | None:
        """(N,) bool: samples trained on their given label (clean or hard) after the last epoch."""
        return self.flags["selected"] if self.divided else None

    def clean_scores(self) -> Tensor | None:
        """(N,) the view-mean probability of the given label from the last epoch's steps."""
        if not self.divided:
            return None
        y = self.ctx.noisy_labels[:, None]
        return ((self.p_w + self.p_s) / 2).gather(1, y).squeeze(1)

    def corrected_labels(self) -> Tensor | None:
        if not self.divided:
            return None
        return torch.where(self.flags["corrected"], self.labels, torch.full_like(self.labels, -1))

    def networks(self):
        return [self.net]

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(),
                "p_w": self.p_w.cpu(), "p_s": self.p_s.cpu(), "tau_w": self.tau_w.cpu(),
                "tau_s": self.tau_s.cpu(), "flags": {k: v.cpu() for k, v in self.flags.items()},
                "labels": self.labels.cpu(), "divided": self.divided}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        dev = self.ctx.device
        if tuple(state["p_w"].shape) != tuple(self.p_w.shape):
            raise ValueError("DISC state of another training split")
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        for k in ("p_w", "p_s", "tau_w", "tau_s", "labels"):
            setattr(self, k, state[k].to(dev))
        self.flags = {k: v.to(dev) for k, v in state["flags"].items()}
        self.divided = bool(state["divided"])

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {"hp.sigma": (0.1, 0.7), "hp.momentum": (0.9, 0.999), "hp.lambda_h": (0.1, 1.0)}
