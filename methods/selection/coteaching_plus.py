"""Co-teaching+: Co-teaching's small-loss exchange restricted to the samples the networks disagree on.

Method card
- Paper: Yu, Han, Yao, Niu, Tsang & Sugiyama, "How does Disagreement Help Generalization against
  Label Corruption?", ICML 2019.
- Official code checked: xingruiyu/coteaching_plus @ a68ed61: main.py (defaults :23-46, init_epoch
  per dataset :52-132, the Adam plan :166-177, the drop-rate schedule :180-183, the loop
  :251-262), loss.py (loss_coteaching :10-35, loss_coteaching_plus :38-78).
- Defaults and their source: forget_rate = the nominal noise rate (main.py:155-158; oracle,
  recorded as coteach/tau_is_oracle); num_gradual 10 (main.py:28); init_epoch 20, the CIFAR-10
  value (main.py:73; 5 for CIFAR-100, :94, and 0 for MNIST: set per preset); schedule "protocol"
  as the suite's Co-teaching, "official" = Adam lr 0.001 with the linear decay and beta1 0.1 from
  40% of the epochs (main.py:166-177); softmax_inputs on: after init_epoch the official code
  passes softmax *probabilities* to cross_entropy (loss.py:38-39, 65-66), which takes another
  log-softmax; the published numbers come from that, so it is the default (off: logits).
- Algorithm, each step on one shared batch: in epochs before init_epoch, Co-teaching (each network's
  small-loss part of the batch trains the other). From init_epoch, only the samples whose
  argmax predictions differ are ranked: floor((1 - R) x |disagree|) smallest losses per network
  are exchanged (all of them if that rounds to 0). With no disagreement, the whole batch trains
  both networks while step < 5000, where step = epoch x batch index as the official code
  computes it (main.py:255), and nothing trains after that.
- Deviations (numbered):
  1. Loss scale: the mean over the kept samples (loss.py divides that mean once more by the
     count kept, a constant Adam all but ignores).
  2. The official loader drops the last partial batch; here it is kept (a 1-sample batch is skipped).
  3. Augmentation follows the run's protocol (the official code uses none for CIFAR).
  4. The "official" schedule scales with the epoch budget (decay from 40% of the epochs), and
     epoch e reads the plan's entry e - 1 (main.py reads alpha_plan[epoch] for epochs 1, 2, ...:
     its decay and beta1 0.1 start one epoch earlier), as the suite's Co-teaching (deviation 5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import RunContext, register_method
from methods.batching import batches
from methods.selection.coteaching import SmallLossPair, drop_rate, small_loss_subset
from methods.params import param

SCHEDULES = ("protocol", "official")


@dataclass
class CoteachingPlusConfig:
    forget_rate: float = param(-1.0, ge=0.0, lt=1.0, also=(-1.0,))
    """tau, the largest fraction dropped, in [0, 1). -1: the nominal noise rate (oracle, as main.py)."""
    num_gradual: int = param(10, ge=0)
    """T_k: epochs over which the drop rate grows to tau (main.py:28)."""
    init_epoch: int = param(20, ge=0)
    """Disagreement from this epoch on; epochs 1 .. init_epoch - 1 are plain Co-teaching (main.py
    trains epochs 1, 2, ... and tests ``epoch < init_epoch``; CIFAR-10 20, CIFAR-100 5, MNIST 0)."""
    softmax_inputs: bool = param(True)
    """Official: cross-entropy of softmax outputs after init_epoch (a double softmax); False: of logits."""
    schedule: str = param("protocol", choices=SCHEDULES)
    """"protocol": the run's optimiser; "official": Adam(adam_lr) with main.py's decay plan."""
    adam_lr: float = param(0.001, gt=0.0)
    """Adam learning rate of the "official" schedule (main.py:23)."""
    decay_frac: float = param(0.4, ge=0.0, le=1.0)
    """Where the "official" decay starts (80 of 200 epochs)."""


def disagreement(logits1: Tensor, logits2: Tensor) -> Tensor:
    """(B, C), (B, C) -> (B,) bool: the two networks' argmax predictions differ."""
    return logits1.argmax(1) != logits2.argmax(1)


def exchange(inputs1: Tensor, inputs2: Tensor, y: Tensor, rate: float) -> tuple[Tensor, Tensor, Tensor]:
    """Co-teaching on one set: (M, C) scores of each network, (M,) labels -> the losses of
    network 1 and network 2 on the partner's small-loss picks and net 1's picks (positions)."""
    l1 = F.cross_entropy(inputs1.float(), y, reduction="none")
    l2 = F.cross_entropy(inputs2.float(), y, reduction="none")
    keep = max(int((1.0 - rate) * len(y) + 1e-6), 0) or len(y)  # official: all when 0 remain
    s1 = small_loss_subset(l1.detach(), keep)
    s2 = small_loss_subset(l2.detach(), keep)
    return l1[s2].mean(), l2[s1].mean(), s1


@register_method("coteaching_plus")
class CoteachingPlus(SmallLossPair):
    Config = CoteachingPlusConfig

    def setup(self, ctx: RunContext, cfg: CoteachingPlusConfig) -> None:
        self.tau_is_oracle = cfg.forget_rate < 0
        self.tau = float(ctx.noise_rate if self.tau_is_oracle else cfg.forget_rate)
        self._setup_pair(ctx, cfg)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        ctx, cfg = self.ctx, self.cfg
        lr = self._set_schedule(epoch)
        rate = drop_rate(epoch, self.tau, cfg.num_gradual, "official")
        # main.py trains epochs 1, 2, ... and runs Co-teaching while epoch < init_epoch
        plus = epoch >= cfg.init_epoch
        for n in self.nets:
            n.train()
        g = ctx.generator(epoch, 0)
        kept = torch.zeros_like(self._kept)
        score = torch.zeros_like(self._score)
        dev = ctx.device
        tot = torch.zeros((), device=dev)
        dis_total = torch.zeros((), device=dev)
        steps = seen = 0
        for i, idx in enumerate(batches(ctx.num_train, ctx.batch_size, g, dev)):
            x, y = ctx.augment(ctx.train_x[idx], g), ctx.noisy_labels[idx]
            z1, z2 = self.nets[0](x), self.nets[1](x)
            with torch.no_grad():
                score[idx] = torch.exp(-F.cross_entropy(z1.float(), y, reduction="none"))
            if not plus:
                loss1, loss2, s1 = exchange(z1, z2, y, rate)
                kept[idx[s1]] = True
            else:
                in1, in2 = (F.softmax(z1, 1), F.softmax(z2, 1)) if cfg.softmax_inputs else (z1, z2)
                dis = disagreement(z1.detach(), z2.detach())
                dis_total += dis.sum()
                if bool(dis.any()):
                    pos = dis.nonzero().squeeze(1)
                    loss1, loss2, s1 = exchange(in1[pos], in2[pos], y[pos], rate)
                    kept[idx[pos[s1]]] = True
                elif epoch * i < 5000:  # main.py:255 passes step = epoch * batch index
                    loss1 = F.cross_entropy(in1.float(), y)
                    loss2 = F.cross_entropy(in2.float(), y)
                else:  # loss.py:77-78: a zero loss, and the optimisers still step (momentum moves)
                    loss1, loss2 = in1.sum() * 0.0, in2.sum() * 0.0
            for opt, loss in zip(self.opts, (loss1, loss2)):
                opt.zero_grad(set_to_none=True)
            (loss1 + loss2).backward()  # the two losses touch disjoint networks
            for opt in self.opts:
                opt.step()
            tot += (loss1 + loss2).detach() / 2
            steps += 1
            seen += len(idx)
        self._kept, self._score, self._trained = kept, score, True
        return {"train/loss": float(tot) / max(steps, 1), "train/lr": lr, "coteach/drop_rate": rate,
                "coteach/forget_rate": self.tau, "coteach/tau_is_oracle": float(self.tau_is_oracle),
                "coteach/disagree_fraction": float(dis_total) / max(seen, 1) if plus else float("nan"),
                "coteach/plus": float(plus)}

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {"hp.forget_rate": (0.0, 0.9), "hp.num_gradual": [5, 10, 15], "hp.init_epoch": [0, 5, 20]}
