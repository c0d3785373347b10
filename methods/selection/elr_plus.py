"""ELR+: two networks with weight-averaged copies, mixup, and early-learning targets from the
other network's average.

Method card
- Paper: Liu, Niles-Weed, Razavian & Fernandez-Granda, "Early-Learning Regularization Prevents
  Memorization of Noisy Labels", NeurIPS 2020 (ELR+: Section 4 and Appendix F/G).
- Official code checked: shengliu66/ELR @ 934af53, ELR_plus/: train.py (:39-122), trainer/
  trainer.py (the step :93-120, EMA update :321-331, mixup :344-359, test :211-241),
  base/base_trainer.py (alternating epochs :183-188), model/loss.py (elr_plus_loss :18-41),
  utils/util.py (sigmoid_rampup :45-52), config_cifar10.json, config_cifar100.json.
- Defaults and their source (config_cifar10.json): beta 0.7, lambda 3, mixup alpha 1, ema_alpha
  0.997 ramped by sigmoid_rampup(step + 1, ema_step 40000), coef_step 0 (no ramp of lambda);
  CIFAR-100 (config_cifar100.json): beta 0.9, lambda 7, coef_step 40000, and the targets
  reweight the mixed labels (loss.py:28-30, on when the run has 100 classes). The optimiser (SGD
  0.02, momentum 0.9, wd 5e-4, x0.1 at epoch 150 of 200) is the elr_plus preset's protocol.
- Algorithm, each epoch: network 1 trains a whole epoch, then network 2 (base_trainer.py:183-185).
  A step of network k: one-hot labels mixed with a permutation of the batch, lambda' = max(l, 1 -
  l), l ~ Beta(1, 1); the *other* network's EMA copy (train mode, no gradient) predicts the
  un-mixed batch; network k's targets t_i <- beta t_i + (1 - beta) p_ema, then q = lambda' t +
  (1 - lambda') t[perm]; loss = mean(-sum y~ log softmax(z)) + ramp(step) lambda mean(log(1 -
  <q, clamp(softmax(z), 1e-4, 1 - 1e-4)>)); then network k's own EMA copy is updated
  (parameters only). The step counter passed to the ramps is the same for both networks (the
  global step advances by network 1's steps after both epochs). Test: the mean of the two
  networks' logits (trainer.py:211-241).
- Deviations (numbered):
  1. Both networks train on the run's one noisy training set (the official loaders each draw
     their own split and their own noise; [Re] reports this).
  2. The EMA copies start as fresh networks (init keys 2 and 3), as the official copies do
     (config.initialize builds new networks); the OBD mask is off on them (methods/obd.py).
  3. Each network draws its own batch order (order streams 0 and 1), as its own loader does.
  4. Label re-weighting (CIFAR-100, loss.py:28-30) divides the mixed labels x targets by their
     sum as the official code does, except where that sum is exactly 0: the official result is
     then NaN for the batch's loss, and every parameter of that network after the step; here
     the row gets a zero target (the sample adds no CE term). That needs the EMA network's
     history at both mixed labels to be exactly 0 in float32 (a logit gap of about 90 since the
     first update, or about 880 epochs of decay): not reached in a normal run. Revision 1
     divided by max(sum, 1e-12), which also scaled down rows whose sum was below 1e-12.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Method, RunContext, register_method
from methods.batching import batches
from methods.per_sample import one_hot
from methods.params import param
from methods.selection.ema import ema_update, frozen
from methods.selection.mixup import epoch_rng, mixup_lambda, sigmoid_rampup, soft_ce


@dataclass
class ELRPlusConfig:
    beta: float = param(0.7, ge=0.0, lt=1.0)
    """Temporal ensembling momentum of the targets (CIFAR-10 0.7; CIFAR-100 and asym 0.9)."""
    lam: float = param(3.0, ge=0.0)
    """Weight of the early-learning regulariser (CIFAR-10 3; CIFAR-10 asym 1; CIFAR-100 7)."""
    mixup_alpha: float = param(1.0, gt=0.0)
    """Mixup Beta(alpha, alpha) (config: mixup_alpha 1)."""
    ema_alpha: float = param(0.997, ge=0.0, lt=1.0)
    """Final weight-EMA decay (config: ema_alpha)."""
    ema_step: int = param(40000, ge=0)
    """Steps over which the EMA decay ramps up by sigmoid_rampup (config: ema_step; 0: none)."""
    coef_step: int = param(0, ge=0)
    """Steps over which lambda ramps up by sigmoid_rampup (CIFAR-10 0 = none; CIFAR-100 40000)."""
    target_reweight: str = param("auto", choices=("auto", "on", "off"))
    """Multiply the mixed labels by the targets and renormalise (loss.py:28-30): "auto" = on for
    100 classes, as the official code decides by num_classes."""


def elr_plus_loss(logits: Tensor, y_mix: Tensor, q: Tensor, lam: float, reweight: bool) -> tuple[Tensor, Tensor]:
    """(B, C) logits, (B, C) mixed one-hot labels, (B, C) mixed targets -> (ce, reg) scalars.

    ce = mean(-sum y~ log softmax z), y~ = y_mix * q / sum(y_mix * q) when ``reweight``;
    reg = mean(log(1 - <q, clamp(softmax z, 1e-4, 1 - 1e-4)>)); the loss is ce + lam x reg."""
    if reweight:
        y_mix = y_mix * q
        s = y_mix.sum(1, keepdim=True)
        # loss.py:30 divides by s unguarded: equal wherever that is finite; a row with s = 0
        # (official: 0 / 0 = NaN, and the whole run NaN) gets a zero target here (deviation)
        y_mix = torch.where(s > 0, y_mix / s, torch.zeros_like(y_mix))
    p = F.softmax(logits.float(), 1).clamp(1e-4, 1 - 1e-4)
    return soft_ce(logits, y_mix).mean(), torch.log(1 - (q * p).sum(1)).mean()


@register_method("elr_plus")
class ELRPlus(Method):
    revision = 2
    """2: the re-weighted targets divide by their sum unguarded where it is positive (deviation 4)."""
    Config = ELRPlusConfig

    def setup(self, ctx: RunContext, cfg: ELRPlusConfig) -> None:
        self.ctx, self.cfg = ctx, cfg
        self.nets = [ctx.build_model(0), ctx.build_model(1)]
        self.emas = [frozen(ctx.build_model(2)), frozen(ctx.build_model(3))]
        self.opts = [ctx.make_optimizer(n.parameters()) for n in self.nets]
        n, c = ctx.num_train, ctx.num_classes
        self.targets = [torch.zeros(n, c, device=ctx.device) for _ in range(2)]
        self.step = 0  # the global step (advanced by network 1's steps after both epochs)
        self.reweight = cfg.target_reweight == "on" or (cfg.target_reweight == "auto" and c == 100)

    def _train_net(self, k: int, epoch: int) -> tuple[float, int]:
        ctx, cfg = self.ctx, self.cfg
        net, opt, other_ema, t = self.nets[k], self.opts[k], self.emas[1 - k], self.targets[k]
        g = ctx.generator(epoch, k)
        rng = epoch_rng(g)
        net.train()
        other_ema.train()  # as the official code: the EMA copies are never put in eval mode
        tot = torch.zeros((), device=ctx.device)
        local = 0
        for idx in batches(ctx.num_train, ctx.batch_size, g, ctx.device):
            x = ctx.augment(ctx.train_x[idx], g)
            y = one_hot(ctx.noisy_labels[idx], ctx.num_classes)
            lam = mixup_lambda(rng, cfg.mixup_alpha)
            perm = torch.randperm(len(idx), generator=g, device=g.device).to(x.device)
            logits = net(lam * x + (1 - lam) * x[perm])
            with torch.no_grad():
                p_ema = F.softmax(other_ema(x).float(), 1)
                t[idx] = cfg.beta * t[idx] + (1 - cfg.beta) * p_ema / p_ema.sum(1, keepdim=True)
                tb = t[idx]
                q = lam * tb + (1 - lam) * tb[perm]
            ce, reg = elr_plus_loss(logits, lam * y + (1 - lam) * y[perm], q, cfg.lam, self.reweight)
            it = self.step + local + 1  # trainer.py increments local_step before it is used
            loss = ce + sigmoid_rampup(it, cfg.coef_step) * cfg.lam * reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            alpha = sigmoid_rampup(it + 1, cfg.ema_step) * cfg.ema_alpha
            ema_update(self.emas[k], net, alpha)
            tot += loss.detach()
            local += 1
        return float(tot) / max(local, 1), local

    def train_epoch(self, epoch: int) -> dict[str, float]:
        lr = [self.ctx.set_epoch_lr(o, epoch) for o in self.opts][0]
        l1, steps1 = self._train_net(0, epoch)
        l2, _ = self._train_net(1, epoch)
        self.step += steps1
        return {"train/loss": (l1 + l2) / 2, "train/loss_net1": l1, "train/loss_net2": l2, "train/lr": lr,
                "elr/ema_alpha": sigmoid_rampup(self.step, self.cfg.ema_step) * self.cfg.ema_alpha}

    @torch.no_grad()
    def predict_logits(self, x: Tensor) -> Tensor:
        """(B, C): the mean of the two networks' logits (trainer.py:211-241)."""
        for n in self.nets:
            n.eval()
        return 0.5 * (self.nets[0](x) + self.nets[1](x))

    def clean_scores(self) -> Tensor | None:
        """(N,) network 1's target probability of the given label: ELR+ selects nothing, but its
        targets say how much it still believes each label."""
        if not bool(self.targets[0].any()):
            return None
        return self.targets[0].gather(1, self.ctx.noisy_labels[:, None]).squeeze(1)

    def networks(self):
        return list(self.nets)

    def state_dict(self) -> dict[str, Any]:
        return {"nets": [n.state_dict() for n in self.nets], "emas": [e.state_dict() for e in self.emas],
                "opts": [o.state_dict() for o in self.opts], "targets": [t.cpu() for t in self.targets],
                "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["targets"][0].shape) != tuple(self.targets[0].shape):
            raise ValueError("ELR+ state of another training split")
        for group, saved in ((self.nets, state["nets"]), (self.emas, state["emas"]), (self.opts, state["opts"])):
            for obj, s in zip(group, saved):
                obj.load_state_dict(s)
        self.targets = [t.to(self.ctx.device) for t in state["targets"]]
        self.step = int(state["step"])

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {"hp.beta": (0.5, 0.99), "hp.lam": (0.5, 10.0, "log")}
