"""Cross-entropy (CE): the baseline every table is read against.

Method card
- Paper: none (standard empirical risk minimisation on the noisy labels).
- Official code checked: not applicable.
- Defaults: no hyperparameters; optimiser, schedule and epochs come from the protocol.
- Deviations: none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from methods.base import Method, RunContext, register_method
from methods.common import ce_per_sample, supervised_epoch


class SingleNetwork(Method):
    """One network trained on every sample with a loss of its logits; subclasses choose the loss.

    The hooks a subclass may override, each with a default that does nothing special:

    - ``loss(logits, y)``: (B, C), (B,) -> (B,) per-sample loss (most robust losses);
    - ``batch_loss(logits, y, idx)``: the batch's scalar loss, given the samples' training
      positions ``idx`` (B,) (default: the mean of ``loss``; ELR and SOP index per-sample state);
    - ``penalty()``: a scalar term of the parameters added to every step's loss (ANL-CE's L1);
    - ``before_step()``: runs between backward and the optimiser step (CDR's gradient mask);
    - ``weight_decay()``: None keeps the protocol's weight decay; a number replaces it (ANL-CE: 0);
    - ``epoch_lr(epoch)``: set this epoch's lr and return it (default: the protocol's schedule; a
      method with stages runs the schedule per stage).
    """

    def setup(self, ctx: RunContext, cfg: Any) -> None:
        self.ctx, self.cfg = ctx, cfg
        self.net = ctx.build_model(0)
        self.opt = ctx.make_optimizer(self.net.parameters(), weight_decay=self.weight_decay())

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """(B, C), (B,) -> (B,) per-sample loss."""
        raise NotImplementedError

    def batch_loss(self, logits: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        """(B, C) logits, (B,) noisy labels, (B,) training positions -> scalar loss."""
        return self.loss(logits, y).mean()

    def weight_decay(self) -> float | None:
        return None

    penalty: Callable[[], Tensor] | None = None
    before_step: Callable[[], None] | None = None

    def epoch_lr(self, epoch: int) -> float:
        return self.ctx.set_epoch_lr(self.opt, epoch)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        lr = self.epoch_lr(epoch)
        out = supervised_epoch(self.net, self.opt, self.ctx, epoch, self.batch_loss,
                               penalty=self.penalty, before_step=self.before_step)
        out["train/lr"] = lr
        if self.weight_decay() is not None:  # recorded: the protocol's value did not apply
            out["train/weight_decay_replaced"] = float(self.weight_decay())
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
