"""DivideMix: co-divide the data with loss mixtures, then train semi-supervised with MixMatch.

Method card
- Paper: Li, Socher & Hoi, "DivideMix: Learning with Noisy Labels as Semi-supervised Learning",
  ICLR 2020.
- Official code checked: LiJunnan1992/DivideMix, Train_CIFAR.py (``warmup``, ``eval_train``,
  ``train``, ``SemiLoss``, ``linear_rampup``, ``NegEntropy``, ``test``, the epoch loop) and
  dataloader_cifar.py (labelled / unlabelled loaders, two augmented views per sample); at
  d9d3058 also Train_clothing1M.py + dataloader_clothing1M.py (class-balanced draws: num_batches,
  L139-168; the loss without L_u: mix_forward, L85-109) and Train_webvision.py.
- Defaults and their source (Train_CIFAR.py argparse unless noted):
  alpha = 4, T = 0.5, lambda_u = 25, p_threshold = 0.5; ramp-up length 16 epochs
  (``linear_rampup``); GMM max_iter 10, tol 1e-2, reg_covar 5e-4 (``eval_train``); loss history
  of 5 epochs only at r = 0.9 (``eval_train``); warm-up 10 epochs for CIFAR-10, 30 for CIFAR-100;
  warm-up batch 2x the training batch (dataloader_cifar.py, mode "warmup"). Per-setting values
  from the paper's appendix and README practice: lambda_u = 0 for sym-20% and for asym noise,
  150 with p_threshold 0.6 at sym-90% (set by benchmark/config/presets/cifar10.toml overrides).
  warmup: the default (-1) scales with the budget: clamp(round(0.1 * epochs), 1, 10), i.e. 10 for
  budgets of 100 epochs and more, 1 for 4-6 epochs; presets set it explicitly.
- Division used for diagnostics: clean_scores() is P(clean) from network 1's mixture (the
  division that trains network 2); selected() is its labelled set. None during warm-up.
- Deviations from the official code:
  1. Epochs are 1-based: warm-up is epochs 1..warmup, and the ramp-up's "current epoch" is
     (epoch - 1) + batch / num_batches, which equals the official 0-based value.
  2. The four no-gradient passes of the trained network (two views of the labelled and of the
     unlabelled batch) run as one forward over the concatenation, and the partner's two
     unlabelled views as one more; BatchNorm statistics of those passes therefore pool the views.
     When the protocol has no augmentation (MNIST-like data) the two views are equal, and the
     no-gradient predictions are computed once per sample (same batch statistics, a third less
     compute); the mixed batch still holds both copies, as official.
  3. Unlabelled batches: the unlabelled index stream is random permutations laid end to end
     (``cycled_order``), cut into batches of min(B, |U|); the official loader restarts at each
     pass and yields a shorter last batch. Labelled batches follow one permutation, last batch
     partial, as official.
  4. Degenerate divisions: with no labelled sample the trained network gets no update in that
     epoch (the official code crashes on an empty loader), reported as
     dividemix/skipped_netK = 1; with no unlabelled sample MixMatch runs on the labelled part
     only and L_u = 0.
  5. Batch size: ctx.batch_size for the labelled and the unlabelled batch (official 64 each, so
     the mixed batch is 4x), and warmup_batch_factor x ctx.batch_size in warm-up.
  6. Random numbers: lambda is drawn from a numpy Generator seeded from the epoch's order stream,
     the mixing permutation from that torch Generator, the GMM's initialisation from a seed
     derived from the epoch (the official code uses global RNGs and an unseeded GMM).
  7. The loss history (when loss_history > 1) holds the last loss_history min-max normalised
     loss vectors per network; the official code keeps all of them and averages the last 5.
  8. Augmentation is the run's protocol (crop + flip on CIFAR as official; none on MNIST-like data,
     where the two "views" are identical).
  9. Clothing1M (num_batches > 0; Train_clothing1M.py, dataloader_clothing1M.py): the official
     draws use Python's global ``random.shuffle``; here each draw is a permutation from the
     epoch's order stream (streams 4 + k for warm-up, 6 + k for the division), then the same
     walk (vectorised, tests/methods/test_dividemix.py checks it against the official loop). The
     official division runs after an epoch's validation, ours at the start of the next epoch:
     the same networks, so the same division. The official code keeps each network's best
     checkpoint on clean validation images; the runner selects on noisy validation (the suite's
     rule) and tests the ensemble. Can change results: the selected checkpoint. The random
     224 crops come from the stored 256 square, not from the whole long side of the resized
     image (benchmark/data/real_world.py): a narrower spread of crops, can change results.
  10. mix_forward = "labelled" (Train_clothing1M.py / Train_webvision.py): the mixing permutation
     still runs over all four groups (labelled and unlabelled views), as official; only the 2 x B
     labelled rows are forwarded and trained. In a last labelled batch shorter than B the
     official slice [:2B] also takes some mixed unlabelled rows; here exactly 2 x bx rows
     (negligible: one batch per epoch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Method, RunContext, register_method
from methods.batching import batches
from methods.per_sample import ce_per_sample, one_hot, per_sample_losses
from methods.params import param
from methods.batching import cycled_order
from methods.selection.division import gmm_clean_prob, minmax
from methods.selection.mixup import linear_rampup, mix, mixup_lambdas, negative_entropy, sharpen, soft_cross_entropy, uniform_prior_penalty


@dataclass
class DivideMixConfig:
    warmup: int = param(-1, ge=0, also=(-1,))
    """Warm-up epochs of plain CE (official 10 for CIFAR-10, 30 for CIFAR-100). -1: scale with
    the budget, clamp(round(0.1 * epochs), 1, 10)."""
    alpha: float = param(4.0, gt=0.0)
    """Beta(alpha, alpha) parameter of the MixMatch coefficient (official 4)."""
    T: float = param(0.5, gt=0.0)
    """Sharpening temperature of refined and guessed labels (official 0.5)."""
    lambda_u: float = param(25.0, ge=0.0)
    """Weight of the unlabelled MSE loss (official 25; 0 for sym-20% and asym, 150 at 90%)."""
    p_threshold: float = param(0.5, ge=0.0, le=1.0)
    """A sample is labelled when its P(clean) exceeds this (official 0.5; 0.6 at 90%)."""
    rampup_epochs: float = param(16.0, ge=0.0)
    """Length in epochs of the linear ramp of lambda_u after warm-up (official 16)."""
    loss_history: int = param(1, ge=1)
    """Epochs of normalised losses averaged before the GMM fit (official 5 at 90% noise, else 1)."""
    warmup_batch_factor: int = param(2, ge=1)
    """Warm-up batch = this x batch_size (the official warm-up loader uses 2 x 64)."""
    conf_penalty: str = param("auto", choices=("auto", "on", "off"))
    """Negative-entropy penalty in warm-up: "auto" (only for asym noise, as official), "on", "off"
    (Train_clothing1M.py: on)."""
    num_batches: int = param(0, ge=0)
    """0: every epoch divides and trains on the whole training set (Train_CIFAR.py,
    Train_webvision.py). N > 0: the Clothing1M protocol (dataloader_clothing1M.py, mode "all"):
    every epoch each network draws a fresh class-balanced subset of N x batch_size samples (at most
    that / C per noisy class) for its division, on which its partner then trains; warm-up trains
    each network on its own class-balanced draw of N x the warm-up batch (official N = 1000:
    32,000 and 64,000 images of Clothing1M's million)."""
    mix_forward: str = param("all", choices=("all", "labelled"))
    """Mixed rows the network is trained on: "all" (Train_CIFAR.py) or "labelled", the 2 x B rows
    of the labelled views only (Train_clothing1M.py, Train_webvision.py, which have no L_u term);
    "labelled" needs lambda_u = 0."""

    def check(self) -> None:
        if self.mix_forward == "labelled" and self.lambda_u != 0:
            raise ValueError(f"mix_forward 'labelled' trains on no unlabelled row, so lambda_u must be 0 "
                             f"(got {self.lambda_u})")
        if self.num_batches and self.loss_history != 1:
            raise ValueError("num_batches > 0 divides a new subset every epoch: loss_history must be 1")


def balanced_subset(labels: Tensor, n: int, num_classes: int, gen: torch.Generator) -> Tensor:
    """dataloader_clothing1M.py's class-balanced draw: walk a random permutation of the training
    set and keep a sample while its class has fewer than n / C kept and fewer than n are kept.

    labels: (N,) int64 noisy labels. Returns (M,) int64 training positions, M <= n, in random
    order (the official loader shuffles the kept list again). Vectorised: a sample is kept when
    its rank among the permutation's samples of its class is below ceil(n / C).
    """
    dev = labels.device
    perm = torch.randperm(len(labels), generator=gen, device=gen.device).to(dev)
    lab = labels[perm]
    order = torch.argsort(lab, stable=True)  # by class, permutation order within a class
    counts = torch.bincount(lab, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(lab)
    rank[order] = torch.arange(len(lab), device=dev) - starts[lab[order]]
    kept = perm[rank < -(-n // num_classes)][:n]
    return kept[torch.randperm(len(kept), generator=gen, device=gen.device).to(dev)]


def warmup_epochs(cfg: DivideMixConfig, epochs: int) -> int:
    """The resolved warm-up length: cfg.warmup, or clamp(round(0.1 * epochs), 1, 10) if negative."""
    if cfg.warmup >= 0:
        return cfg.warmup
    return int(min(10, max(1, round(0.1 * epochs))))


def refine_labels(probs_x: Tensor, onehot: Tensor, w: Tensor, temperature: float) -> Tensor:
    """Label co-refinement: sharpen(w * y + (1 - w) * p).

    probs_x: (B, C) the trained network's mean prediction over the two views; onehot: (B, C)
    noisy labels; w: (B,) P(clean) from the partner's mixture. Returns (B, C), rows sum to 1.
    """
    w = w.reshape(-1, 1)
    return sharpen(w * onehot + (1.0 - w) * probs_x, temperature)


def guess_labels(probs: Tensor, temperature: float) -> Tensor:
    """Label co-guessing: (K, B, C) predictions (K = networks x views) -> (B, C) sharpened mean."""
    return sharpen(probs.mean(dim=0), temperature)


@register_method("dividemix")
class DivideMix(Method):
    Config = DivideMixConfig

    def setup(self, ctx: RunContext, cfg: DivideMixConfig) -> None:
        self.ctx, self.cfg = ctx, cfg
        self.warmup = warmup_epochs(cfg, ctx.epochs)
        self.penalise = cfg.conf_penalty == "on" or (cfg.conf_penalty == "auto"
                                                      and ctx.noise_kind == "asym")
        self.nets = [ctx.build_model(0), ctx.build_model(1)]
        self.opts = [ctx.make_optimizer(n.parameters()) for n in self.nets]
        n = ctx.num_train
        # (H, N) normalised loss history per network; H grows to cfg.loss_history
        self.history = [torch.zeros(0, n, device=ctx.device) for _ in range(2)]
        # P(clean) of each network's last division, (N,) float32 each; None before the first
        self.prob: list[Tensor | None] = [None, None]
        # Does the protocol augment at all? (a random crop / flip of 8 images all matching the
        # plain normalisation is vanishingly unlikely). Without augmentation the two "views"
        # are equal and their no-gradient predictions are computed once (deviation 2).
        probe = ctx.train_x[:8]
        self._same_views = bool(torch.equal(ctx.augment(probe, ctx.generator(0, 99)),
                                            ctx.normalise(probe)))

    def _views(self, x: Tensor, gen: torch.Generator) -> list[Tensor]:
        """(B, C, H, W) uint8 -> two augmented float views [(B, C, H, W), (B, C, H, W)]."""
        if not len(x):
            return []
        if self._same_views:
            v = self.ctx.normalise(x)
            return [v, v]
        return [self.ctx.augment(x, gen), self.ctx.augment(x, gen)]

    # ------------------------------------------------------------------ epochs
    def train_epoch(self, epoch: int) -> dict[str, float]:
        lr = [self.ctx.set_epoch_lr(o, epoch) for o in self.opts][0]
        if epoch <= self.warmup:
            out = self._warmup_epoch(epoch)
        else:
            out = self._semi_epoch(epoch)
        out["train/lr"] = lr
        out["dividemix/warmup"] = float(self.warmup)
        return out

    def _warmup_epoch(self, epoch: int) -> dict[str, float]:
        """CE on every sample for each network, its own batch order (streams 0 and 1)."""
        ctx = self.ctx
        bs = max(2, ctx.batch_size * self.cfg.warmup_batch_factor)
        losses = []
        for k, (net, opt) in enumerate(zip(self.nets, self.opts)):
            net.train()
            gen = ctx.generator(epoch, k)
            tot = torch.zeros((), device=ctx.device)
            seen = 0
            if self.cfg.num_batches:  # its own class-balanced draw (the Clothing1M protocol)
                pool = balanced_subset(ctx.noisy_labels, self.cfg.num_batches * bs, ctx.num_classes,
                                       ctx.generator(epoch, 4 + k))
            else:
                pool = None
            for idx in batches(ctx.num_train if pool is None else len(pool), bs, gen, ctx.device):
                if pool is not None:
                    idx = pool[idx]
                logits = net(ctx.augment(ctx.train_x[idx], gen))
                loss = ce_per_sample(logits, ctx.noisy_labels[idx]).mean()
                total = (loss + negative_entropy(logits)) if self.penalise else loss
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                tot += loss.detach() * len(idx)
                seen += len(idx)
            losses.append(float(tot) / max(seen, 1))
        return {"train/loss": sum(losses) / 2, "train/loss_net1": losses[0],
                "train/loss_net2": losses[1]}

    def divide(self, k: int, epoch: int) -> Tensor:
        """(N,) P(clean) of network k: normalised per-sample CE (averaged over the history),
        a two-component GMM, the posterior of its low-mean component. Updates the history."""
        ctx = self.ctx
        # a seed per (epoch, network) from the order stream: a resumed run refits the same GMM
        g = ctx.generator(epoch, 2 + k)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device))
        if self.cfg.num_batches:  # a fresh class-balanced subset; NaN outside it (neither set)
            sub = balanced_subset(ctx.noisy_labels, self.cfg.num_batches * ctx.batch_size,
                                  ctx.num_classes, ctx.generator(epoch, 6 + k))
            prob = torch.full((ctx.num_train,), float("nan"), device=ctx.device)
            prob[sub] = gmm_clean_prob(minmax(per_sample_losses(self.nets[k], ctx, sub)), seed)
            return prob
        losses = minmax(per_sample_losses(self.nets[k], ctx))
        h = torch.cat([self.history[k], losses[None]])[-self.cfg.loss_history:]
        self.history[k] = h
        return gmm_clean_prob(h.mean(0), seed)

    def _semi_epoch(self, epoch: int) -> dict[str, float]:
        self.prob = [self.divide(0, epoch), self.divide(1, epoch)]
        out: dict[str, float] = {}
        totals = []
        for k in (0, 1):  # network k trains on the partner's division (co-divide)
            stats = self._train_net(k, epoch, self.prob[1 - k])
            totals.append(stats["loss"])
            for name, v in stats.items():
                out[f"dividemix/{name}_net{k + 1}"] = v
        out["train/loss"] = sum(totals) / 2
        out["train/loss_net1"], out["train/loss_net2"] = totals
        return out

    def _train_net(self, k: int, epoch: int, prob: Tensor) -> dict[str, float]:
        """One semi-supervised epoch of network k on the division ``prob`` ((N,) P(clean))."""
        ctx, cfg = self.ctx, self.cfg
        net, other, opt = self.nets[k], self.nets[1 - k], self.opts[k]
        dev, C, B = ctx.device, ctx.num_classes, ctx.batch_size
        gen = ctx.generator(epoch, k)
        lab = torch.nonzero(prob > cfg.p_threshold).squeeze(1)
        unl = torch.nonzero(prob <= cfg.p_threshold).squeeze(1)
        n_lab, n_unl = int(lab.numel()), int(unl.numel())
        stats = {"labelled": n_lab / max(1, n_lab + n_unl), "skipped": 0.0, "loss": 0.0, "lx": 0.0,
                 "lu": 0.0, "penalty": 0.0, "rampup": 0.0}
        if n_lab == 0:  # nothing to refine or to anchor the mixture: no update (deviation 4)
            stats["skipped"] = 1.0
            return stats
        num_iter = -(-n_lab // B)
        lab_order = lab[torch.randperm(n_lab, generator=gen, device=gen.device).to(dev)]
        bu = min(B, n_unl)
        unl_order = (unl[cycled_order(n_unl, num_iter * bu, gen, dev)] if n_unl
                     else unl)
        # one numpy stream per (epoch, network), seeded from the epoch's torch stream
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
        lams = mixup_lambdas(np.random.default_rng(seed), cfg.alpha, num_iter)
        net.train()
        other.eval()  # the partner only guesses labels (official: net2.eval())
        acc = torch.zeros(4, device=dev)  # loss, lx, lu, penalty
        ramp = 0.0
        for i in range(num_iter):
            xi = lab_order[i * B:(i + 1) * B]
            ui = unl_order[i * bu:(i + 1) * bu]
            bx, nu = len(xi), len(ui)
            # inputs in the order [x view 1, x view 2, u view 1, u view 2]: (2 bx + 2 nu, ...)
            views = self._views(ctx.train_x[xi], gen) + self._views(ctx.train_x[ui], gen)
            with torch.no_grad():
                onehot = one_hot(ctx.noisy_labels[xi], C)
                if self._same_views:
                    # identical views: one pass over [x, u] gives every prediction (deviation 2)
                    p_self = F.softmax(net(torch.cat([views[0], *views[2:3]])).float(), dim=1)
                    px, pu_self = p_self[:bx], p_self[bx:]
                    pu_other = F.softmax(other(views[2]).float(), dim=1) if nu else None
                    pu = torch.stack([pu_self, pu_other]) if nu else None
                else:
                    p_self = F.softmax(net(torch.cat(views)).float(), dim=1)
                    px = p_self[:2 * bx].reshape(2, bx, C).mean(0)
                    pu_other = (F.softmax(other(torch.cat(views[2:])).float(), dim=1) if nu
                                else None)
                    pu = (torch.cat([p_self[2 * bx:], pu_other]).reshape(4, nu, C) if nu
                          else None)
                tx = refine_labels(px, onehot, prob[xi], cfg.T)
                if nu:
                    tu = guess_labels(pu, cfg.T)
                    targets = torch.cat([tx, tx, tu, tu])
                else:
                    targets = torch.cat([tx, tx])
            views = torch.cat(views if nu else views[:2])
            perm = torch.randperm(len(views), generator=gen, device=gen.device).to(dev)
            mixed_x, mixed_t = mix(views, targets, float(lams[i]), perm)
            if cfg.mix_forward == "labelled":  # the mixed labelled rows only (no L_u, as official)
                mixed_x, mixed_t, nu = mixed_x[:2 * bx], mixed_t[:2 * bx], 0
            logits = net(mixed_x)
            lx = soft_cross_entropy(logits[:2 * bx], mixed_t[:2 * bx])
            probs = F.softmax(logits.float(), dim=1)
            if nu:
                lu = ((probs[2 * bx:] - mixed_t[2 * bx:]) ** 2).mean()
            else:
                lu = torch.zeros((), device=dev)
            ramp = linear_rampup((epoch - 1) + i / num_iter, self.warmup, cfg.rampup_epochs)
            penalty = uniform_prior_penalty(probs)
            loss = lx + cfg.lambda_u * ramp * lu + penalty
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            acc += torch.stack([loss.detach(), lx.detach(), lu.detach(), penalty.detach()])
        m = (acc / num_iter).tolist()
        stats.update(loss=m[0], lx=m[1], lu=m[2], penalty=m[3], rampup=ramp)
        return stats

    # ------------------------------------------------------------------ outputs
    @torch.no_grad()
    def predict_logits(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_classes): the sum of both networks' logits (official ``test``)."""
        for n in self.nets:
            n.eval()
        return self.nets[0](x) + self.nets[1](x)

    def clean_scores(self) -> Tensor | None:
        """(N,) P(clean) from network 1's mixture in the last epoch (None during warm-up; NaN
        outside the epoch's subset when num_batches > 0)."""
        return self.prob[0]

    def selected(self) -> Tensor | None:
        """(N,) bool: network 1's labelled set (P(clean) > p_threshold), which trained network 2."""
        return None if self.prob[0] is None else self.prob[0] > self.cfg.p_threshold

    def networks(self):
        return list(self.nets)

    def state_dict(self) -> dict[str, Any]:
        return {"nets": [n.state_dict() for n in self.nets],
                "opts": [o.state_dict() for o in self.opts],
                "history": [h.cpu() for h in self.history],
                "prob": [None if p is None else p.cpu() for p in self.prob]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for net, s in zip(self.nets, state["nets"]):
            net.load_state_dict(s)
        for opt, s in zip(self.opts, state["opts"]):
            opt.load_state_dict(s)
        dev = self.ctx.device
        self.history = [h.to(dev) for h in state["history"]]
        self.prob = [None if p is None else p.to(dev) for p in state["prob"]]

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {"hp.lambda_u": (0.0, 150.0), "hp.p_threshold": (0.3, 0.9)}
