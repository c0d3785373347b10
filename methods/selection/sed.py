"""SED: self-adaptive selection (SCS) and re-weighting (SCR) with a mean teacher and a strong view.

Method card
- Paper: Sheng, Sun, Yao et al., "Foster Adaptivity and Balance in Learning with Noisy Labels",
  ECCV 2024.
- Official code checked: NUST-Machine-Intelligence-Laboratory/SED @ 16fea96: main.py (warm-up
  :32-57, the robust epoch :61-140, argparse defaults :235-266), utils/SCS.py, utils/SCR.py,
  utils/ema.py, util.py (optimiser :146-147, lr plan :154-168, :245-255), utils/builder.py
  (transforms :54-71), run.sh, model/SevenCNN.py.
- Defaults and their source: warm-up 20 epochs (of 100; -1 keeps that share of any budget) of CE
  plus a confidence penalty (main.py:32-57;
  the penalty mean(sum p log p) is taken on logits clamped at 1e-12, main.py:29, kept);
  aph (teacher EMA) 0.95 (main.py:250), updated after every step, parameters only
  (utils/ema.py:22-25); alpha 1.0 (main.py:256); momentum_scs 0.999, momentum_scr 0.999
  (main.py:264-265); SCS quantile 0.8 with the global threshold clipped at 0.95 (SCS.py:24-36,
  use_quantile and clip_thresh default on); n_sigma 2 (SCR.py); SCS starts at local = 1 / C,
  global = 1 / C (SCS.py:20-21), SCR at mu = 1 / C, var = 1 (SCR.py:12-13).
  schedule "official": SGD momentum 0.9, nesterov, wd 5e-4 (util.py:146-147), lr 0.05 and
  warm-up lr 0.05 with ``cosine:20,5e-4,100`` (the README's full-run command: warm-up lr for the
  warm-up epochs, then a cosine from lr to 5e-4 between 20% and 100% of the epochs); the
  argparse defaults lr 0.001 / warm-up lr 0.001 are not the README's. "protocol": the run's.
  Strong view: AutoAugment's CIFAR-10 policy after crop and flip (utils/builder.py:54-71, the
  ``randaugment`` package's CIFAR10Policy).
  run.sh's per-setting momenta, lrs, alpha and aph are in the sed preset (its epochs are debug
  values, ``--warmup-epoch 1 --epoch 2``, and are not used).
- Algorithm, each robust epoch (after warm-up): a no-grad pass over the training set in train
  mode (as the official code: BatchNorm batch statistics, the student's running statistics move)
  stores the student's and the teacher's softmax of a weak view. SCS: with g_i = p_i[y_i], the
  global threshold G <- m G + (1 - m) quantile_0.8(g) clipped at 0.95, the class means
  L <- m L + (1 - m) mean_i p_i; sample i is clean iff g_i >= G L[y_i] / max L. SCR: per class c
  the teacher predicts, mu_c and var_c of its max-probability follow an EMA (classes with fewer
  than 2 predictions contribute mu 0, var 1); w_i = exp(-min(maxp_i - mu_c, 0)^2 / (2 var_c /
  n_sigma^2)). Step loss: CE on the batch's clean samples (mean over them) + alpha x mean over
  the whole batch of w_i CE(student(strong view), teacher argmax).
- Deviations (numbered):
  1. A batch with no clean sample drops the CE term (the official mean over an empty set is NaN).
  2. The lr plan scales with the epoch budget (fractions of the 100-epoch plan); as util.py, a
     warm-up longer than the cosine's start is followed by the cosine at once.
  3. The official mixup flag (off by default) permutes logits and labels together, a no-op; not
     implemented.
  4. The weak views pad with zeros (torchvision's default, as the official RandomCrop); the
     normalisation is the dataset's (the official code uses ImageNet statistics for CIFAR).
  5. The clean-set lookup is a boolean gather, not the official per-sample membership loop.
  6. SCR's weight divides by max(var_c, 1e-12): the official code divides by var_c itself, which
     is NaN (0 / 0) only if a class's EMA variance reaches 0 (every max-probability of that class
     exactly equal, for hundreds of epochs); above 1e-12 the two are the same. The class means
     and variances are torch.mean / torch.var of each class's samples, as in SCR.py (revision 1 used a
     one-pass float32 formula from sums, which gave 0 for variances near 1e-8; runs of revision 1
     have other run ids).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Method, RunContext, StrongSpec, register_method
from methods.batching import batches
from methods.per_sample import ce_per_sample
from methods.mask import one_step
from methods.params import param
from methods.selection.ema import ema_copy, ema_update

SCHEDULES = ("official", "protocol")


@dataclass
class SEDConfig:
    warmup_epochs: int = param(-1, ge=0, also=(-1,))
    """Epochs of CE + confidence penalty before selection starts (main.py --warmup-epochs 20 of
    its 100 epochs). -1: the same share of the run, round(0.2 x epochs) (20 at 100 epochs)."""
    aph: float = param(0.95, ge=0.0, lt=1.0)
    """Teacher EMA decay, applied after every step (main.py --aph; run.sh mostly 0.99)."""
    alpha: float = param(1.0, ge=0.0)
    """Weight of the re-weighted strong-view pseudo-label term (main.py --alpha)."""
    momentum_scs: float = param(0.999, ge=0.0, lt=1.0)
    """EMA momentum of SCS's global threshold and class means (main.py --momentum_scs)."""
    momentum_scr: float = param(0.999, ge=0.0, lt=1.0)
    """EMA momentum of SCR's per-class mean and variance (main.py --momentum_scr)."""
    quantile: float = param(0.8, gt=0.0, lt=1.0)
    """Quantile of the given-label probabilities that drives the global threshold (SCS.py)."""
    threshold_clip: float = param(0.95, gt=0.0, le=1.0)
    """Upper clip of the global threshold (SCS.py, clip_thresh on)."""
    n_sigma: float = param(2.0, gt=0.0)
    """SCR's width: w = exp(-d^2 / (2 var / n_sigma^2)) (SCR.py, fixed at 2)."""
    schedule: str = param("official", choices=SCHEDULES)
    """"official": SGD nesterov with SED's warm-up + cosine plan; "protocol": the run's."""
    lr: float = param(0.05, gt=0.0)
    """"official": lr after warm-up (the README's full run)."""
    warmup_lr: float = param(0.05, gt=0.0)
    """"official": lr of the warm-up epochs."""
    end_lr: float = param(5e-4, ge=0.0)
    """"official": the cosine's final lr (``cosine:20,END,100``)."""
    cosine_start: float = param(0.2, ge=0.0, le=1.0)
    """"official": where the cosine starts, as a fraction of the epochs (20 of 100)."""
    cosine_end: float = param(1.0, gt=0.0, le=2.0)
    """"official": where the cosine would reach end_lr, as a fraction of the epochs (100 of 100;
    run.sh's ``...,140`` with 100 epochs is 1.4: the cosine is cut off before its end)."""
    strong_policy: str = param("autoaugment", choices=("autoaugment", "randaugment", "none"))
    """Strong view (SED: AutoAugment's CIFAR-10 policy)."""


def warmup_of(cfg: SEDConfig, epochs: int) -> int:
    """The warm-up length: warmup_epochs, or 20% of the epochs when it is -1."""
    return cfg.warmup_epochs if cfg.warmup_epochs >= 0 else int(round(0.2 * epochs))


def sed_lr(cfg: SEDConfig, epoch: int, epochs: int) -> float:
    """The official plan for 1-based ``epoch``: warmup_lr for the warm-up epochs, lr until the
    cosine starts, then (lr - end) (1 + cos(pi i / len)) / 2 + end, i = 0, 1, ... (util.py:154-168),
    held at its last value after the cosine's end."""
    warmup = warmup_of(cfg, epochs)
    if epoch <= warmup:
        return cfg.warmup_lr
    start = int(round(cfg.cosine_start * epochs))
    length = max(int(round(cfg.cosine_end * epochs)) - start, 1)
    # util.py builds [warmup_lr] * W + [lr] * (S - W) + cosine: with W > S the constant part is
    # empty and the cosine begins right after the warm-up
    i = epoch - 1 - max(start, warmup)
    if i < 0:
        return cfg.lr
    i = min(i, length - 1)
    return (cfg.lr - cfg.end_lr) * 0.5 * (1 + math.cos(math.pi * i / length)) + cfg.end_lr


def scs_update(probs: Tensor, y: Tensor, global_: Tensor, local: Tensor, m: float, q: float,
               clip: float) -> tuple[Tensor, Tensor, Tensor]:
    """Self-adaptive clean selection (SCS.py). probs: (N, C) student softmax; y: (N,) given labels;
    global_: () threshold; local: (C,) class means. Returns the new global (), local (C,) and the
    (N,) bool clean mask p[y] >= G L[y] / max L."""
    g = probs.gather(1, y[:, None]).squeeze(1)
    global_ = m * global_ + (1 - m) * torch.quantile(g, q)
    global_ = global_.clamp(0.0, clip)
    local = m * local + (1 - m) * probs.mean(0)
    clean = g >= global_ * (local / local.max())[y]
    return global_, local, clean


def scr_update(probs_ema: Tensor, mu: Tensor, var: Tensor, m: float,
               n_sigma: float) -> tuple[Tensor, Tensor, Tensor]:
    """Self-adaptive re-weighting (SCR.py). probs_ema: (N, C) teacher softmax; mu, var: (C,).

    Per predicted class with at least 2 samples the mean and unbiased variance of the
    max-probability (``torch.mean`` and ``torch.var`` on that class's samples, as SCR.py computes
    them), otherwise mu 0 and var 1; EMA with momentum m. Returns mu (C,), var (C,) and (N,)
    weights exp(-min(maxp - mu_c, 0)^2 / (2 var_c / n_sigma^2))."""
    maxp, c = probs_ema.max(1)
    k = mu.shape[0]
    mean_b = torch.zeros(k, device=maxp.device)
    var_b = torch.ones(k, device=maxp.device)
    # one class at a time with torch's own reductions: a one-pass formula from sums of p and p^2
    # cancels to 0 in float32 when the max-probabilities sit near 1 (1e-8 variances), and the EMA
    # carries that error for the rest of the run. C small reductions per epoch cost nothing.
    for i in range(k):
        p = maxp[c == i]
        if p.numel() > 1:
            mean_b[i] = torch.mean(p)
            var_b[i] = torch.var(p, correction=1)
    mu = m * mu + (1 - m) * mean_b
    var = m * var + (1 - m) * var_b
    d = (maxp - mu[c]).clamp(max=0.0)
    w = torch.exp(-d ** 2 / (2 * var[c].clamp_min(1e-12) / n_sigma ** 2))
    return mu, var, w


@register_method("sed")
class SED(Method):
    Config = SEDConfig
    revision = 2
    """2: SCR's class variance is torch.var, as SCR.py (1: a one-pass float32 formula)."""

    def setup(self, ctx: RunContext, cfg: SEDConfig) -> None:
        self.ctx, self.cfg = ctx, cfg
        self.net = ctx.build_model(0)
        self.ema = ema_copy(self.net)
        if cfg.schedule == "official":
            self.opt = torch.optim.SGD(self.net.parameters(), lr=cfg.warmup_lr, momentum=0.9,
                                       nesterov=True, weight_decay=5e-4)
        else:
            self.opt = ctx.make_optimizer(self.net.parameters())
        self.strong = ctx.strong_view(StrongSpec(policy=cfg.strong_policy))
        c, n, dev = ctx.num_classes, ctx.num_train, ctx.device
        self.local = torch.full((c,), 1.0 / c, device=dev)
        self.global_ = torch.tensor(1.0 / c, device=dev)
        self.mu = torch.full((c,), 1.0 / c, device=dev)
        self.var = torch.ones(c, device=dev)
        self.clean = torch.zeros(n, dtype=torch.bool, device=dev)
        self.weight = torch.zeros(n, device=dev)
        self.pseudo = torch.zeros(n, dtype=torch.long, device=dev)
        self.score = torch.zeros(n, device=dev)
        self.divided = False

    def _lr(self, epoch: int) -> float:
        if self.cfg.schedule == "protocol":
            return self.ctx.set_epoch_lr(self.opt, epoch)
        lr = sed_lr(self.cfg, epoch, self.ctx.epochs)
        for g in self.opt.param_groups:
            g["lr"] = lr
        return lr

    @torch.no_grad()
    def _epoch_pass(self, epoch: int) -> None:
        """The official no-grad pass at the start of a robust epoch (train mode, weak view)."""
        ctx, cfg = self.ctx, self.cfg
        n, c = ctx.num_train, ctx.num_classes
        p = torch.zeros(n, c, device=ctx.device)
        pe = torch.zeros(n, c, device=ctx.device)
        self.net.train()
        self.ema.train()
        g = ctx.generator(epoch, 1)
        for idx in batches(n, ctx.batch_size, g, ctx.device):
            x = ctx.augment(ctx.train_x[idx], g)
            p[idx] = F.softmax(self.net(x).float(), 1)
            pe[idx] = F.softmax(self.ema(x).float(), 1)
        self.global_, self.local, self.clean = scs_update(p, ctx.noisy_labels, self.global_, self.local,
                                                          cfg.momentum_scs, cfg.quantile, cfg.threshold_clip)
        self.mu, self.var, self.weight = scr_update(pe, self.mu, self.var, cfg.momentum_scr, cfg.n_sigma)
        self.pseudo = pe.argmax(1)
        self.score = p.gather(1, ctx.noisy_labels[:, None]).squeeze(1)
        self.divided = True

    def train_epoch(self, epoch: int) -> dict[str, float]:
        ctx, cfg = self.ctx, self.cfg
        lr = self._lr(epoch)
        warm = epoch <= warmup_of(cfg, ctx.epochs)
        if not warm:
            self._epoch_pass(epoch)
        g = ctx.generator(epoch, 0)
        self.net.train()
        tot = torch.zeros((), device=ctx.device)
        correct = torch.zeros((), device=ctx.device, dtype=torch.long)
        steps = seen = 0
        for idx in batches(ctx.num_train, ctx.batch_size, g, ctx.device):
            xu, y = ctx.train_x[idx], ctx.noisy_labels[idx]
            xw = ctx.augment(xu, g)
            with one_step(self.net):
                logits = self.net(xw)
                if warm:
                    p = F.softmax(logits.float().clamp(min=1e-12), 1)  # main.py:29 clamps the logits
                    loss = F.cross_entropy(logits.float(), y) + (p * p.clamp_min(1e-12).log()).sum(1).mean()
                else:
                    clean = self.clean[idx]
                    logits_s = self.net(self.strong(xu, g))
                    loss = cfg.alpha * (ce_per_sample(logits_s, self.pseudo[idx]) * self.weight[idx]).mean()
                    if bool(clean.any()):
                        loss = loss + F.cross_entropy(logits[clean].float(), y[clean])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            ema_update(self.ema, self.net, cfg.aph)
            tot += loss.detach()
            correct += (logits.detach().argmax(1) == y).sum()
            steps += 1
            seen += len(idx)
        out = {"train/loss": float(tot) / max(steps, 1), "train/acc": float(correct) / max(seen, 1),
               "train/lr": lr, "sed/warmup": 1.0 if warm else 0.0}
        if self.divided:
            out.update({"sed/global_threshold": float(self.global_),
                        "sed/clean_fraction": float(self.clean.float().mean()),
                        "sed/weight_mean": float(self.weight.mean())})
        return out

    @torch.no_grad()
    def predict_logits(self, x: Tensor) -> Tensor:
        """The student in eval mode (main.py:325: the official test uses the student)."""
        self.net.eval()
        return self.net(x)

    def selected(self) -> Tensor | None:
        return self.clean if self.divided else None

    def clean_scores(self) -> Tensor | None:
        """(N,) the student's probability of the given label in the last epoch pass."""
        return self.score if self.divided else None

    def corrected_labels(self) -> Tensor | None:
        """(N,) the teacher's pseudo-label for the samples SCS did not select (-1 for the rest):
        the label the strong-view term trains them towards."""
        if not self.divided:
            return None
        return torch.where(self.clean, torch.full_like(self.pseudo, -1), self.pseudo)

    def networks(self):
        return [self.net]

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                **{k: getattr(self, k).cpu() for k in ("local", "global_", "mu", "var", "clean", "weight",
                                                        "pseudo", "score")},
                "divided": self.divided}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["clean"].shape) != tuple(self.clean.shape):
            raise ValueError("SED state of another training split")
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        for k in ("local", "global_", "mu", "var", "clean", "weight", "pseudo", "score"):
            setattr(self, k, state[k].to(self.ctx.device))
        self.divided = bool(state["divided"])

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {"hp.alpha": (0.25, 2.0), "hp.momentum_scs": [0.9, 0.99, 0.999],
                "hp.momentum_scr": [0.85, 0.9, 0.99, 0.999], "hp.aph": [0.95, 0.99]}
