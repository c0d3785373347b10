"""SingleNetwork, the base of every method that trains one network on every sample with a loss of
its logits (CE, GCE, the robust losses, the regularisers), and the one supervised epoch they share."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from methods.base import Method, RunContext
from methods.batching import batches


def supervised_epoch(model: nn.Module, opt: torch.optim.Optimizer, ctx: RunContext, epoch: int,
                     batch_loss: Callable[[Tensor, Tensor, Tensor], Tensor], stream: int = 0,
                     penalty: Callable[[], Tensor | None] | None = None,
                     before_step: Callable[[], None] | None = None,
                     positions: Tensor | None = None) -> dict[str, float]:
    """One epoch of plain supervised training on the noisy labels.

    batch_loss: (B, C) logits, (B,) noisy labels, (B,) training positions -> scalar loss (the
    positions index per-sample state such as ELR's targets). penalty(): an optional term that
    depends on the parameters only (ANL-CE's L1), added to every batch's loss. before_step(): an
    optional hook between backward and the optimiser step (CDR's gradient mask; the protocol's
    gradient clipping, a step pre-hook of the optimiser, runs after it). Returns train/loss (the
    data term, penalty excluded, so runs with and without it stay comparable), train/acc
    (accuracy against the noisy labels) and train/penalty when there is one. ``positions``
    ((M,) int64 training positions) trains on that subset only (Confident Learning's folds and
    its kept set); batch_loss then receives the samples' training positions as ``idx``.
    """
    model.train()
    gen = ctx.generator(epoch, stream)
    total_loss = torch.zeros((), device=ctx.device)
    total_pen = torch.zeros((), device=ctx.device)
    correct = torch.zeros((), device=ctx.device, dtype=torch.long)
    seen = steps = 0
    n = ctx.num_train if positions is None else len(positions)
    for idx in batches(n, ctx.batch_size, gen, ctx.device):
        if positions is not None:
            idx = positions[idx]
        x = ctx.augment(ctx.train_x[idx], gen)
        y = ctx.noisy_labels[idx]
        logits = model(x)
        loss = batch_loss(logits, y, idx)
        pen = penalty() if penalty is not None else None
        opt.zero_grad(set_to_none=True)
        (loss if pen is None else loss + pen).backward()
        if before_step is not None:
            before_step()
        opt.step()
        # accumulate on the device: no host sync per step
        total_loss += loss.detach() * idx.numel()
        if pen is not None:
            total_pen += pen.detach()
        correct += (logits.detach().argmax(1) == y).sum()
        seen += idx.numel()
        steps += 1
    out = {"train/loss": float(total_loss) / seen, "train/acc": float(correct) / seen}
    if penalty is not None:
        out["train/penalty"] = float(total_pen) / max(steps, 1)
    return out


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
