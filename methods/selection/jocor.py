"""JoCoR: two networks trained jointly with co-regularisation and one shared small-loss selection.

Method card
- Paper: Wei, Feng, Chen & An, "Combating Noisy Labels by Agreement: A Joint Training Method with
  Co-Regularization", CVPR 2020.
- Official code checked: hongxin001/JoCoR @ 86db359: main.py (defaults :15-53, per-dataset
  overrides :62-112), algorithm/jocor.py (forget rate :20-26, schedules :31-42, one Adam over both
  networks :64-65, the step :140-142), algorithm/loss.py (loss_jocor, kl_loss_compute :8-40).
- Defaults and their source: co_lambda 0.9, the README's value for CIFAR-10 (sym 20/50, asym 40;
  0.65 at 80% noise, 0.85 on CIFAR-100; the argparse default 0.1 is the MNIST example's family)
  and the [Re] CIFAR-N config; forget_rate = the noise rate, half of it for asymmetric noise
  (jocor.py:20-26; oracle, recorded); num_gradual 10, exponent 1 (main.py:20-22); schedule
  "protocol" (one optimiser over both networks, as the official code), "official" = Adam 0.001
  with the linear decay and beta1 0.1 from 40% of the epochs (epoch_decay_start 80 of 200;
  100 for CIFAR-100, decay_frac 0.5).
- Algorithm: per sample, loss = (1 - l)(CE_1 + CE_2) + l (KL(p_2 || p_1) + KL(p_1 || p_2)), with
  no detach (gradients flow through both sides of each KL, as kl_loss_compute); the
  floor((1 - R) B) samples with the smallest joint loss are kept, the loss is their mean, one
  backward and one step update both networks.
- Deviations (numbered):
  1. KL is computed from log-probabilities (``log_target``): the same value and gradient, without
     the 0 x log 0 = NaN the official softmax targets produce when a probability underflows (an
     official run logged Loss1: nan at epoch 175; noisypy made the same change).
  2. Kept count int((1 - R) x B) as loss.py:30-31 truncates it (float64; the ramp's R is
     np.linspace's value bit for bit), but at least one sample: the official mean over an empty
     pick is NaN. Revision 1 added 1e-6 before flooring, which kept one more sample where
     (1 - R) x B falls just below an integer (never at B = 128; at R = 0.8, B = 5 the official
     count is 0).
  6. Ties in the ranking are broken by position (a stable sort); the official np.argsort is
     numpy's quicksort, whose order of equal losses depends on the numpy version and SIMD path.
     Changes results only where two joint losses are exactly equal at the cut.
  3. The official loader drops the last partial batch; here it is kept (a 1-sample batch is skipped).
  4. Augmentation follows the run's protocol (the official code uses none).
  5. The "official" schedule scales with the epoch budget and epoch e reads the plan's entry e - 1
     (jocor.py reads alpha_plan[epoch] for epochs 1, 2, ...: the decay and beta1 0.1 start one
     epoch earlier there), as the suite's Co-teaching (its deviation 5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import RunContext, register_method
from methods.batching import batches
from methods.selection.coteaching import SmallLossPair, drop_rate, num_kept, small_loss_subset
from methods.params import param

SCHEDULES = ("protocol", "official")


@dataclass
class JoCoRConfig:
    co_lambda: float = param(0.9, ge=0.0, le=1.0)
    """lambda: weight of the co-regularisation (symmetric KL) against the two CE terms."""
    forget_rate: float = param(-1.0, ge=0.0, lt=1.0, also=(-1.0,))
    """tau in [0, 1). -1: the nominal noise rate, halved for asymmetric noise (not for pair flip;
    jocor.py:20-26)."""
    num_gradual: int = param(10, ge=0)
    """T_k: epochs over which the drop rate grows to tau (main.py:20)."""
    schedule: str = param("protocol", choices=SCHEDULES)
    """"protocol": the run's optimiser over both networks; "official": Adam with jocor.py's plan."""
    adam_lr: float = param(0.001, gt=0.0)
    """Adam learning rate of the "official" schedule (main.py:15)."""
    decay_frac: float = param(0.4, ge=0.0, le=1.0)
    """Where the "official" decay starts (80 of 200 epochs; CIFAR-100: 100 of 200)."""


def joint_loss(logits1: Tensor, logits2: Tensor, y: Tensor, co_lambda: float) -> Tensor:
    """(B, C), (B, C), (B,) -> (B,) JoCoR's per-sample loss (loss.py:22-24).

    (1 - l)(CE(z1, y) + CE(z2, y)) + l (KL(p2 || p1) + KL(p1 || p2)), KL summed over classes."""
    z1, z2 = logits1.float(), logits2.float()
    lp1, lp2 = F.log_softmax(z1, 1), F.log_softmax(z2, 1)
    ce = F.cross_entropy(z1, y, reduction="none") + F.cross_entropy(z2, y, reduction="none")
    kl12 = F.kl_div(lp1, lp2, reduction="none", log_target=True).sum(1)  # KL(p2 || p1)
    kl21 = F.kl_div(lp2, lp1, reduction="none", log_target=True).sum(1)  # KL(p1 || p2)
    return (1.0 - co_lambda) * ce + co_lambda * (kl12 + kl21)


@register_method("jocor")
class JoCoR(SmallLossPair):
    Config = JoCoRConfig
    revision = 2
    """2: the official kept count, int((1 - R) x B) with np.linspace's R (revision 1 added 1e-6;
    deviation 2): the pinned results did not move, but counts differ at some batch sizes."""
    shared_optimizer = True  # one optimiser over both networks, one backward and one step

    def oracle_tau(self, ctx: RunContext) -> float:
        # jocor.py:21 halves for "asymmetric" only; pair flip is its own type there (not halved)
        return float(ctx.noise_rate) / (2.0 if ctx.noise_kind == "asym" else 1.0)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        ctx, cfg = self.ctx, self.cfg
        lr = self._set_schedule(epoch)
        rate = drop_rate(epoch, self.tau, cfg.num_gradual, "official")
        for n in self.nets:
            n.train()
        g = ctx.generator(epoch, 0)
        kept = torch.zeros_like(self._kept)
        score = torch.zeros_like(self._score)
        tot = torch.zeros((), device=ctx.device)
        steps = 0
        for idx in batches(ctx.num_train, ctx.batch_size, g, ctx.device):
            x, y = ctx.augment(ctx.train_x[idx], g), ctx.noisy_labels[idx]
            per = joint_loss(self.nets[0](x), self.nets[1](x), y, cfg.co_lambda)
            s = small_loss_subset(per.detach(), num_kept(len(idx), rate))
            loss = per[s].mean()
            opt = self.opts[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            kept[idx[s]] = True
            score[idx] = torch.exp(-per.detach())
            tot += loss.detach()
            steps += 1
        self._kept, self._score, self._trained = kept, score, True
        return {"train/loss": float(tot) / max(steps, 1), "train/lr": lr, "coteach/drop_rate": rate,
                "coteach/forget_rate": self.tau, "coteach/tau_is_oracle": float(self.tau_is_oracle)}

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {"hp.co_lambda": (0.5, 0.95), "hp.forget_rate": (0.0, 0.9)}
