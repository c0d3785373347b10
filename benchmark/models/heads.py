"""A KAN classifier head: pykan's ``KANLayer`` (D -> C) in place of a backbone's final ``nn.Linear``.

``--set classifier=kan`` builds every network of a run with this head. Each edge j -> i carries its
own learnable function phi_ij(x_j) = scale_base_ij * silu(x_j) + scale_sp_ij * spline_ij(x_j)
(a cubic B-spline on a grid of 5 intervals over [-1, 1], extended by 3 knots each side: pykan's
defaults ``num=5, k=3, grid_range=[-1, 1]``), and class i's logit is sum_j phi_ij(x_j) (no bias).
The layer is pykan's own (``kan.KANLayer.KANLayer``, pinned in requirements.txt), initialised
exactly as pykan initialises it, from torch's global generator (seeded per network by the runner).

Source: Liu et al., "KAN: Kolmogorov-Arnold Networks", ICLR 2025, and pykan 0.2.8
(KindXiaoming/pykan, ``kan/KANLayer.py``). The OBD-mask paper (arXiv 2508.09697 v1/v2) carries
the mask to a KAN classifier; methods/mask.py masks its edges (``MaskedEdges``).

Deviations from pykan (numbered):
  1. pykan registers its fixed grid and its (all-ones) edge mask as frozen ``nn.Parameter`` s; here
     they are buffers (same values, same state-dict keys), so ``parameters()`` holds only what
     trains (coef, scale_base, scale_sp): an L1 penalty over all parameters (ANL-CE), CDR's
     gradient rule and the weight EMAs of SED / ELR+ treat only those as weights. Cannot change
     results except through such penalties, where pykan's frozen tensors would only add a constant.
  2. The grid stays where pykan's KANLayer puts it ([-1, 1], 5 intervals). pykan's own training
     loop (``MultKAN.fit``) refits it to the batch before steps 0, 5, ..., 45
     (``update_grid_from_samples``); on a classifier head that refit is unsafe: a feature that is
     0 for the whole batch (a dead ReLU unit, common in these backbones) gets a grid of 12 equal
     knots, and the B-spline's backward then divides by zero-width intervals, so the gradient
     reaching the backbone is NaN and the run diverges (tests/benchmark/models/test_heads.py shows it
     on pykan's layer; every conformance run diverged in its first epoch when the refit was
     tried). The cost: features of a trained backbone that leave [-2.2, 2.2] (the grid with its
     3 extension knots; 30% of LeNet's after 5 epochs of Fashion-MNIST) reach the logits through
     the SiLU branch only. Can change results.
"""
from __future__ import annotations

from torch import Tensor, nn

KAN_GRID = 5
"""Grid intervals G (pykan KANLayer ``num`` default)."""
KAN_ORDER = 3
"""Spline order k (pykan KANLayer ``k`` default)."""


class KANHead(nn.Module):
    """pykan's KANLayer as a classifier: (B, D) features -> (B, C) logits.

    ``edge_outputs(x)`` gives every edge's activation phi_ij(x_j) as (B, C, D) (pykan's
    ``postacts``); ``forward(x)`` is pykan's summed output, equal to ``edge_outputs(x).sum(-1)``
    up to float rounding. The OBD mask recognises a head by ``edge_outputs``.
    """

    def __init__(self, in_features: int, out_features: int, grid: int = KAN_GRID, order: int = KAN_ORDER):
        super().__init__()
        # imported here: pykan's package import pulls in sympy and its plotting (seconds), paid only
        # by runs that build a KAN head
        from kan.KANLayer import KANLayer
        layer = KANLayer(in_dim=in_features, out_dim=out_features, num=grid, k=order)
        for name in ("grid", "mask"):  # deviation 1: frozen Parameters -> buffers
            value = getattr(layer, name).detach().clone()
            delattr(layer, name)
            layer.register_buffer(name, value)
        self.layer = layer

    @property
    def in_features(self) -> int:
        return self.layer.in_dim

    @property
    def out_features(self) -> int:
        return self.layer.out_dim

    def edge_outputs(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, C, D): phi_ij(x_bj) for every class i and feature j."""
        return self.layer(x)[2]

    def forward(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, C) logits, sum_j phi_ij(x_j) (pykan's forward)."""
        return self.layer(x)[0]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, grid={self.layer.num}, order={self.layer.k}"
