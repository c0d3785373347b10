"""CDR: robust early-learning by keeping only the critical parameters' loss gradient.

Method card
- Paper: Xia et al., "Robust Early-Learning: Hindering the Memorization of Noisy Labels",
  ICLR 2021.
- Official code checked: xiaoboxia/CDR @ 6665a8b main.py:257-319 (train_one_step: after backward,
  over every parameter with dim 2 or 4 (linear and conv weights; biases and batch norm keep their
  full gradient) s = |w * g|; thresh = the smallest of the top int(nonzero_ratio * n) values of s
  over all of them together; grad <- grad * [s >= thresh] * clip, so SGD then applies only weight
  decay and momentum to the other weights); main.py:294-299 and 311 (the gradual clip schedule is
  computed and then overwritten: nonzero_ratio = clip = 1 - noise_rate, a constant); optimiser
  SGD 0.01, momentum 0.9, wd 1e-3 (main.py:387-394).
- Defaults: tau -1 = the nominal noise rate (oracle knowledge, as official; recorded as
  cdr/tau_is_oracle = 1); scope all. Scope classifier applies the same rule to the final
  classifier's weight only: CDR restricted to where the OBD mask acts, for a comparison on equal
  terms (the mask at sparsity s vs CDR at tau = s).
- Deviations:
  1. The threshold is found with torch.kthvalue instead of torch.topk (the same value, without
     sorting half the network's weights).
  2. The official loop makes an extra forward pass before each step (main.py:305), which updates
     batch-norm running statistics twice per batch; not reproduced (it changes only evaluation-mode
     statistics slightly).
  3. With the protocol's gradient clipping on, the mask is applied first, then the clip (CDR's code
     has no clipping).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from methods.base import RunContext, register_method
from methods.single import SingleNetwork
from methods.per_sample import ce_per_sample
from methods.params import param

SCOPES = ("all", "classifier")


@torch.no_grad()
def critical_gradient_mask(params: list[nn.Parameter], keep: float, scale: float) -> Tensor:
    """Keep the loss gradient of the top ``keep`` fraction of ``params``' entries by |w * g| (one
    threshold over all of them), scaled by ``scale``; zero the rest in place.

    Returns the fraction of entries kept as a 0-d device tensor (no host sync per step; ties at
    the threshold are kept, as the official ``>=``).
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return torch.zeros(())
    scores = [(p.detach() * p.grad).abs().float() for p in params]  # computed once, used twice
    s = torch.cat([sc.flatten() for sc in scores])
    n = s.numel()
    nz = int(keep * n)
    if nz <= 0:
        for p in params:
            p.grad.zero_()
        return torch.zeros((), device=s.device)
    thresh = torch.kthvalue(s, n - nz + 1).values  # the nz-th largest
    kept = torch.zeros((), device=s.device)
    for p, sc in zip(params, scores):
        m = sc >= thresh
        kept += m.sum()
        p.grad.mul_(m.to(p.grad.dtype) * scale)
    return kept / n


@dataclass
class CDRConfig:
    tau: float = param(-1.0, ge=0.0, lt=1.0, also=(-1.0,))
    """Fraction of weights whose loss gradient is cut, in [0, 1); the kept ones are scaled by
    1 - tau (official: both from the noise rate). -1: the nominal noise rate (oracle knowledge)."""
    scope: str = param("all", choices=SCOPES)
    """all: every conv and linear weight (official); classifier: the final classifier's weights only
    (a Linear's weight; a KAN head's spline coefficients and scales)."""


@register_method("cdr")
class CDR(SingleNetwork):
    Config = CDRConfig

    def setup(self, ctx: RunContext, cfg: CDRConfig) -> None:
        super().setup(ctx, cfg)
        self.tau_is_oracle = cfg.tau < 0
        self.tau = float(ctx.noise_rate if self.tau_is_oracle else cfg.tau)
        self._kept: list[Tensor] = []
        # the network is never replaced, so the candidate weights are listed once
        # classifier: its weight tensors (a Linear's weight; a KAN head's coefficients and scales)
        self._candidates = ([p for p in self.net.classifier.parameters() if p.dim() >= 2]
                            if cfg.scope == "classifier"
                            else [p for p in self.net.parameters() if p.dim() in (2, 4)])

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return ce_per_sample(logits, y)

    def before_step(self) -> None:
        self._kept.append(critical_gradient_mask(self._candidates, 1.0 - self.tau, 1.0 - self.tau))

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self._kept = []
        out = super().train_epoch(epoch)
        out["cdr/tau"] = self.tau
        out["cdr/tau_is_oracle"] = 1.0 if self.tau_is_oracle else 0.0
        out["cdr/kept_frac"] = float(torch.stack(self._kept).mean()) if self._kept else 0.0
        return out

    @classmethod
    def search_space(cls):
        return {"hp.tau": (0.0, 0.9), "hp.scope": list(SCOPES)}
