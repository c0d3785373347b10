"""Gradient diagnostics on a fixed probe batch, computed by the runner with the clean labels.

Filled in by the OBD-mask work (issue 4): the relative gradient error of noisy vs clean labels
for the classifier weights and for the features, with and without the edge mask.
"""
from __future__ import annotations

import torch


def probe_metrics(method, x: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    """x: (P, C, H, W) normalised probe batch; noisy, clean: (P,) labels. Returns metrics."""
    return {}
