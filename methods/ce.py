"""Cross-entropy (CE): the baseline every table is read against.

Method card
- Paper: none (standard empirical risk minimisation on the noisy labels).
- Official code checked: not applicable.
- Defaults: no hyperparameters; optimiser, schedule and epochs come from the protocol.
- Deviations: none.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from methods.base import register_method
from methods.per_sample import ce_per_sample
from methods.single import SingleNetwork


@dataclass
class CEConfig:
    """CE has no hyperparameters of its own."""


@register_method("ce")
class CE(SingleNetwork):
    Config = CEConfig

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return ce_per_sample(logits, y)
