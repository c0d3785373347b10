"""Taylor cross-entropy: a robust loss registered with noisy-label-bench from outside the suite.

Method card
- Paper: Feng, Shu, Lin, Lv, Li & An, "Can Cross Entropy Loss Be Robust to Label Noise?",
  IJCAI 2020: the Taylor series of CE in (1 - p_y), cut after t terms,
  L_t = sum_{k=1}^{t} (1 - p_y)^k / k. t = 1 is MAE up to a factor (bounded, robust, slow to
  fit); t -> infinity is CE (fits noise). Larger t trades robustness for fitting speed.
- Official code checked: none here: this package is the suite's example of a plugin, not a
  reproduction. Check the authors' code before publishing numbers with it.
- Defaults: t = 2.
- Deviations: not applicable (see above).

How it plugs in: importing this module registers "taylor_ce" (and, through the suite,
"taylor_ce+obd") with the suite's own decorator; the suite imports it from the entry point
declared in pyproject.toml, or from ``--plugin nlb_taylor_ce`` / ``--plugin path/to/__init__.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from methods.base import register_method
from methods.params import param
from methods.single import SingleNetwork

__version__ = "0.1.0"


@dataclass
class TaylorCEConfig:
    t: int = param(2, ge=1, le=20)
    """Terms of the Taylor series kept (1 <= t <= 20; t = 1 is MAE / 2, large t approaches CE)."""


@register_method("taylor_ce")
class TaylorCE(SingleNetwork):
    """One network trained with L_t on every sample (the suite's shared supervised loop)."""

    Config = TaylorCEConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """(B, C) logits, (B,) labels -> (B,) sum_{k=1}^t (1 - p_y)^k / k, in fp32."""
        q = 1.0 - F.softmax(logits.float(), dim=1).gather(1, y[:, None]).squeeze(1)
        total = q.new_zeros(q.shape)
        term = q.new_ones(q.shape)
        for k in range(1, self.cfg.t + 1):
            term = term * q
            total = total + term / k
        return total

    @classmethod
    def search_space(cls):
        return {"hp.t": [1, 2, 4, 6, 10]}
