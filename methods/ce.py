"""Cross-entropy (CE): the baseline every table is read against.

Method card
- Paper: none (standard empirical risk minimisation on the noisy labels).
- Official code checked: not applicable.
- Defaults: no hyperparameters; optimiser, schedule and epochs come from the protocol.
- Deviations: none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from methods.base import Method, RunContext, register_method
from methods.common import ce_per_sample, supervised_epoch


class SingleNetwork(Method):
    """One network trained with a per-sample loss on every sample; subclasses choose the loss."""

    def setup(self, ctx: RunContext, cfg: Any) -> None:
        self.ctx, self.cfg = ctx, cfg
        self.net = ctx.build_model(0)
        self.opt = ctx.make_optimizer(self.net.parameters())

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """(B, C), (B,) -> (B,) per-sample loss."""
        raise NotImplementedError

    def train_epoch(self, epoch: int) -> dict[str, float]:
        lr = self.ctx.set_epoch_lr(self.opt, epoch)
        out = supervised_epoch(self.net, self.opt, self.ctx, epoch, self.loss)
        out["train/lr"] = lr
        return out

    @torch.no_grad()
    def predict_logits(self, x: Tensor) -> Tensor:
        self.net.eval()
        return self.net(x)

    def networks(self):
        return [self.net]

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])


@dataclass
class CEConfig:
    """CE has no hyperparameters of its own."""


@register_method("ce")
class CE(SingleNetwork):
    Config = CEConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return ce_per_sample(logits, y)
