"""SOP: sparse over-parameterisation, per-sample u and v that absorb the label noise.

Method card
- Paper: Liu et al., "Robust Training under Label Noise by Over-parameterization", ICML 2022.
- Official code checked: shengliu66/SOP @ 4d991ce: model/loss.py:34-131
  (overparametrization_loss: u (N, 1) and v (N, C) drawn from N(0, std 1e-8) (config_cifar100.json
  :27-28); U = clamp(u^2 y, 0, 1), V = clamp(v^2 (1 - y), 0, 1); q = clamp(softmax + U - V.detach(),
  1e-4), L1-normalised with eps 1e-4, clamped to [1e-4, 1]; loss = mean(-sum y log q) +
  ||onehot(argmax z) + U - V - y||^2 summed / B, so v learns from the squared term only);
  train.py:83-89 and config lines 62-72 (u and v trained by their own SGD, momentum 0, weight decay
  0, lr_u and lr_v, stepped every batch); README (symmetric noise lr_u 1, lr_v 10; asymmetric 40%
  lr_u 0.1, lr_v 100).
- Defaults: lr_u 1, lr_v 10, init_std 1e-8 (symmetric noise).
- Deviations:
  1. SOP+ (the class-balance and two-view consistency terms with AutoAugment) is not here: plain
     SOP, as [Re]'s SOP row (ratio_balance = ratio_consistency = 0). The official CIFAR-100 config
     is the SOP+ setting.
  2. u and v are drawn from the run's order stream (not the global torch RNG), so a run is
     reproducible; this changes which tiny values they start from, not their distribution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import RunContext, register_method
from methods.single import SingleNetwork
from methods.per_sample import PerSampleState, one_hot
from methods.params import param

UV_STREAM = 7  # order-stream key of u and v's initial draw (epoch 0: never a training epoch)
EPS = 1e-4


def sop_loss(logits: Tensor, y: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """(B, C) logits, (B,) labels, (B, 1) u and (B, C) v of the batch -> scalar SOP loss."""
    yoh = one_hot(y, logits.shape[1])
    U = (u.square() * yoh).clamp(0.0, 1.0)
    V = (v.square() * (1.0 - yoh)).clamp(0.0, 1.0)
    q = (F.softmax(logits.float(), dim=1) + U - V.detach()).clamp_min(EPS)
    q = F.normalize(q, p=1, dim=1, eps=EPS).clamp(EPS, 1.0)
    ce = -(yoh * q.log()).sum(dim=1).mean()
    hard = one_hot(logits.argmax(dim=1), logits.shape[1])  # argmax carries no gradient
    mse = F.mse_loss(hard + U - V, yoh, reduction="sum") / logits.shape[0]
    return ce + mse


@dataclass
class SOPConfig:
    lr_u: float = param(1.0, gt=0.0)
    """SGD learning rate of u (official symmetric 1; asymmetric 0.1)."""
    lr_v: float = param(10.0, gt=0.0)
    """SGD learning rate of v (official symmetric 10; asymmetric 100)."""
    init_std: float = param(1e-8, gt=0.0)
    """Standard deviation of u's and v's normal initialisation, mean 0 (official 1e-8)."""


@register_method("sop")
class SOP(SingleNetwork):
    Config = SOPConfig

    def setup(self, ctx: RunContext, cfg: SOPConfig) -> None:
        super().setup(ctx, cfg)
        g = ctx.generator(0, UV_STREAM)
        u = torch.randn(ctx.num_train, 1, generator=g, device=g.device) * cfg.init_std
        v = torch.randn(ctx.num_train, ctx.num_classes, generator=g, device=g.device) * cfg.init_std
        self.u, self.v = nn.Parameter(u.to(ctx.device)), nn.Parameter(v.to(ctx.device))
        self.state = PerSampleState(u=self.u, v=self.v)
        self.uv_opt = torch.optim.SGD([{"params": [self.u], "lr": cfg.lr_u},
                                       {"params": [self.v], "lr": cfg.lr_v}], momentum=0.0, weight_decay=0.0)

    def batch_loss(self, logits: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        return sop_loss(logits, y, self.u[idx], self.v[idx])

    def before_step(self) -> None:
        # u and v have their own optimiser, stepped with the network's every batch (official)
        self.uv_opt.step()
        self.uv_opt.zero_grad(set_to_none=True)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        out = super().train_epoch(epoch)
        with torch.no_grad():  # how much label mass u adds and v removes, on average per sample
            y = one_hot(self.ctx.noisy_labels, self.ctx.num_classes)
            out["sop/u2_mean"] = float(self.u.square().clamp(0, 1).mean())
            out["sop/v2_mean"] = float((self.v.square() * (1.0 - y)).clamp(0, 1).sum(dim=1).mean())
        return out

    def clean_scores(self) -> Tensor:
        """(N,) 1 - clamp(u^2, 0, 1): u grows where the noisy label's probability must be raised
        from outside the network, so a small u marks a sample the network fits by itself."""
        with torch.no_grad():
            return 1.0 - self.u.detach().square().clamp(0.0, 1.0).squeeze(1)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "per_sample": self.state.state_dict(),
                "uv_opt": self.uv_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.state.load_state_dict(state["per_sample"])
        self.uv_opt.load_state_dict(state["uv_opt"])

    @classmethod
    def search_space(cls):
        return {"hp.lr_u": (0.01, 10.0, "log"), "hp.lr_v": (1.0, 1000.0, "log")}
