"""The edge mask of the final classifier: scores, exact top-k masks and the masked heads.

``MaskedLinear`` replaces a model's ``classifier`` (an ``nn.Linear(D, C)``). In training it computes
``F.linear(x, W * M, b)`` with ``M`` a (C, D) 0/1 buffer, so a masked edge adds nothing to the
output and the gradient of ``W`` at a masked entry is exactly ``0 * upstream = 0``. The bias is
never masked: it is one parameter per class, not an edge between a feature and a class, and
masking it would remove a class's prior rather than a connection.

Every ``refresh`` training steps the mask is recomputed from the current batch (the layer's input
``x`` seen in forward), under ``torch.no_grad``: the edges with the lowest score are masked. A
"training step" is a forward pass in train mode with autograd enabled while the mask is active
(one per optimiser step in every method of the suite; no-gradient passes such as Co-teaching's
ranking pass or DivideMix's label guessing use the current mask but neither count nor refresh).

Scores (higher = more important, kept), all (C, D):

- ``obd``: Optimal Brain Damage saliency ``1/2 * w_ij^2 * h_ij`` with the exact diagonal of the
  Gauss-Newton matrix of softmax cross-entropy for a linear layer,
  ``h_ij = mean_b p_bi (1 - p_bi) x_bj^2`` (arXiv 2508.09697 v3);
- ``actstd``: ``|w_ij| * std_b(x_j)``, the batch std of the edge's activation ``w_ij x_bj`` (v2);
- ``magnitude``: ``|w_ij|``;
- ``random``: uniform noise from a CPU ``torch.Generator`` seeded from (layer seed, refresh
  count), so a resumed run draws exactly what an uninterrupted one draws (a control).

``MaskedEdges`` masks a classifier head that has one learnable function per edge (the KAN head,
``--set classifier=kan``) in the same way, with the scores generalised to an edge's activation
phi_ij(x_j) (see its docstring); ``EdgeMask`` holds what the two share (counters, warm-up, state).

Exact sparsity: with ``n`` candidate edges (``D`` per row for scope ``row``, ``C * D`` for scope
``layer``) exactly ``k = min(n - 1, floor(s * n + 1/2))`` edges are masked (s rounded half up, and
at least one edge kept). Ties are broken by index (stable sort), so the mask is deterministic.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.params import param

MASK_REVISION = 1
"""The version of the mask's numbers (see methods.base.Method.revision): part of every masked
run's id from 2 on."""
SCORES = ("obd", "actstd", "magnitude", "random")
SCOPES = ("row", "layer")
OBD_PROBS = ("unmasked", "masked")


@dataclass
class MaskConfig:
    sparsity: float = param(0.5, ge=0.0, lt=1.0)
    """Fraction s in [0, 1) of classifier edges masked during training. Not published: the v2
    abstract says only "a few critical edges" are kept (a high s); 0.5 is the middle of the
    ablation sweep {0.1, ..., 0.9} and a conservative start. Tune it (search space 0.0-0.95)."""
    score: str = param("obd", choices=SCORES)
    """Edge importance: obd (v3, 1/2 w^2 diag-GN), actstd (v2, |w| std(x)), magnitude (|w|),
    random (a seeded control)."""
    scope: str = param("row", choices=SCOPES)
    """row: mask the same number of edges in every class row; layer: rank the whole (C, D) matrix."""
    refresh: int = param(1, ge=1)
    """Recompute the mask every this many training steps (1 = every step; not published)."""
    warmup_epochs: int = param(0, ge=0)
    """Epochs 1..warmup_epochs train unmasked (the mask starts at the first step after them)."""
    at_eval: bool = param(False)
    """Also mask at evaluation. The paper masks during training only (masking at test was worse)."""
    obd_probs: str = param("unmasked", choices=OBD_PROBS)
    """Which prediction p enters the obd score: the full layer's (unmasked, OBD's setting: the cost
    of removing each edge from the whole layer, masked edges included so they can come back) or
    the prediction the masked network made with the previous mask (masked)."""


# ----- scores: pure functions, fp32 ------------------------------------------------------------

def obd_scores(w: Tensor, x: Tensor, logits: Tensor) -> Tensor:
    """(C, D) weights, (B, D) inputs, (B, C) logits -> (C, D) OBD saliency 1/2 w^2 E_b[p(1-p) x^2].

    For z = W x + b and L = CE(softmax(z), y), the Gauss-Newton matrix of W is
    J^T (diag(p) - p p^T) J with dz_k/dW_ij = [k = i] x_j, whose (ij, ij) entry is p_i (1 - p_i) x_j^2
    (no label enters it). One (C, B) @ (B, D) product: cheap.
    """
    p = F.softmax(logits.float(), dim=1)
    x = x.float()
    h = (p * (1.0 - p)).T @ (x * x) / x.shape[0]
    return 0.5 * w.float().square() * h


def actstd_scores(w: Tensor, x: Tensor) -> Tensor:
    """(C, D), (B, D) -> (C, D) |w_ij| * std_b(x_bj) = std_b(w_ij x_bj) (population std)."""
    return w.float().abs() * x.float().std(dim=0, correction=0)[None, :]


def edge_obd_scores(phi: Tensor, logits: Tensor) -> Tensor:
    """(B, C, D) edge activations phi_ij(x_bj), (B, C) logits -> (C, D) 1/2 E_b[p_bi (1 - p_bi) phi^2].

    The OBD saliency of setting one edge's activation to zero: the change of logit i is
    -phi_ij(x_bj), and the Gauss-Newton diagonal of softmax cross-entropy for logit i is
    p_i (1 - p_i). With phi_ij = w_ij x_j this is :func:`obd_scores`."""
    p = F.softmax(logits.float(), dim=1)
    return 0.5 * torch.einsum("bc,bcd->cd", p * (1.0 - p), phi.float().square()) / phi.shape[0]


def random_scores(shape: tuple[int, int], seed: int, device: torch.device) -> Tensor:
    """(C, D) uniform scores from a CPU generator seeded with ``seed`` (device-independent)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g).to(device)


def num_masked(sparsity: float, n: int) -> int:
    """Edges masked out of ``n``: round(s * n) half up, keeping at least one edge."""
    return max(0, min(n - 1, math.floor(sparsity * n + 0.5)))


def mask_from_scores(scores: Tensor, sparsity: float, scope: str) -> Tensor:
    """(C, D) scores -> (C, D) float 0/1 mask with exactly num_masked(...) zeros per row (``row``)
    or in the whole matrix (``layer``): the lowest scores are masked, ties broken by index."""
    mask = torch.ones_like(scores, dtype=torch.float32)
    if scope == "row":
        k = num_masked(sparsity, scores.shape[1])
        if k:
            low = torch.argsort(scores, dim=1, stable=True)[:, :k]
            mask.scatter_(1, low, 0.0)
    elif scope == "layer":
        k = num_masked(sparsity, scores.numel())
        if k:
            low = torch.argsort(scores.flatten(), stable=True)[:k]
            mask.view(-1)[low] = 0.0
    else:
        raise ValueError(f"unknown mask scope '{scope}'. Valid: {', '.join(SCOPES)}")
    return mask


def _mix(seed: int, count: int) -> int:
    """A 63-bit seed for refresh number ``count`` of a layer seeded with ``seed`` (splitmix-style)."""
    z = (seed + 0x9E3779B97F4A7C15 * (count + 1)) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 1


# ----- the layer ---------------------------------------------------------------------------------

@contextlib.contextmanager
def one_step(*nets: nn.Module) -> Iterator[None]:
    """Forward passes inside this block belong to one optimiser step of ``nets``: a masked
    classifier counts the step and may refresh its mask on the first of them only (DISC's weak,
    strong and two mixup passes; SED's weak and strong passes). Without it every gradient-enabled
    train-mode forward is a step, and a refresh between two forwards of one step would change a
    mask the first forward's graph still needs. A no-op for networks without a mask."""
    layers = [m for n in nets for m in n.modules() if isinstance(m, EdgeMask)]
    for layer in layers:
        layer._hold, layer._counted = True, False
    try:
        yield
    finally:
        for layer in layers:
            layer._hold = False

class EdgeMask(nn.Module):
    """What every masked classifier shares: the (C, D) 0/1 ``mask`` buffer, the step and refresh
    counters, warm-up (``active``), ``one_step`` holding, and their state. Subclasses define
    ``forward`` and ``scores``; ``mask``, the counters and the random-score seed are in
    ``state_dict()`` (buffer + extra state), so a checkpoint of the network restores the mask."""

    def __init__(self, cfg: MaskConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        self.seed = int(seed)
        """Seed of the random score (drawn by the wrapper from the run's order stream)."""
        self.steps = 0
        """Training steps taken while active (Python int: no device sync to decide a refresh)."""
        self.refreshes = 0
        """Mask recomputations so far (also the counter of the random score's seed)."""
        self.active = True
        """False during warm-up: train unmasked, no refresh (the wrapper sets it per epoch)."""
        self._hold = False
        self._counted = False

    @property
    def in_features(self) -> int:
        return self.mask.shape[1]

    @property
    def out_features(self) -> int:
        return self.mask.shape[0]

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"sparsity={c.sparsity}, score={c.score}, scope={c.scope}, refresh={c.refresh}")

    def get_extra_state(self) -> dict[str, Any]:
        return {"steps": self.steps, "refreshes": self.refreshes, "seed": self.seed,
                "active": self.active}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.steps, self.refreshes = int(state["steps"]), int(state["refreshes"])
        self.seed, self.active = int(state["seed"]), bool(state["active"])

    def masking(self) -> bool:
        """Whether this forward pass uses the mask: training (after warm-up), or evaluation with at_eval."""
        return self.active if self.training else self.cfg.at_eval

    def _step_refreshes(self) -> bool:
        """Count a training step (decision 5 of methods/obd.py) and say whether it refreshes the mask."""
        if self.training and self.active and torch.is_grad_enabled() and not (self._hold and self._counted):
            due = self.steps % self.cfg.refresh == 0
            self.steps += 1
            self._counted = True
            return due
        return False

    @torch.no_grad()
    def refresh(self, x: Tensor) -> None:
        """Recompute the mask from the batch ``x`` (B, D) (no graph is built)."""
        cfg = self.cfg
        if num_masked(cfg.sparsity, self.in_features if cfg.scope == "row" else self.mask.numel()):
            self.mask.copy_(mask_from_scores(self.scores(x.detach()), cfg.sparsity, cfg.scope))
        self.refreshes += 1

    def scores(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """(B, D) batch -> (C, D) fp32 edge scores under cfg.score (higher = kept)."""
        raise NotImplementedError

    def _random(self) -> Tensor:
        return random_scores(tuple(self.mask.shape), _mix(self.seed, self.refreshes), self.mask.device)

    def realised_sparsity(self) -> float:
        """Fraction of edges masked in the forward passes that use the mask."""
        return float((self.mask == 0).float().mean())


class MaskedLinear(EdgeMask):
    """A linear classifier (D -> C) whose edges are masked by a (C, D) 0/1 buffer ``mask``.

    ``weight`` (C, D) and ``bias`` (C,) are the replaced ``nn.Linear``'s parameters (copied, so the
    model's initialisation is unchanged and no random number is drawn).
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, cfg: MaskConfig, seed: int = 0):
        super().__init__(cfg, seed)
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.register_buffer("mask", torch.ones_like(self.weight))

    @classmethod
    def from_linear(cls, linear: nn.Linear, cfg: MaskConfig, seed: int = 0) -> "MaskedLinear":
        return cls(linear.weight, linear.bias, cfg, seed)

    def forward(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, C)."""
        if self._step_refreshes():
            self.refresh(x)
        if self.masking():
            return F.linear(x, self.weight * self.mask, self.bias)
        return F.linear(x, self.weight, self.bias)

    @torch.no_grad()
    def scores(self, x: Tensor) -> Tensor:
        """(B, D) batch -> (C, D) fp32 edge scores under cfg.score (higher = kept)."""
        w = self.weight.detach()
        score = self.cfg.score
        if score == "obd":
            w_in = w if self.cfg.obd_probs == "unmasked" else w * self.mask
            return obd_scores(w, x, F.linear(x.float(), w_in.float(), None if self.bias is None
                                             else self.bias.detach().float()))
        if score == "actstd":
            return actstd_scores(w, x)
        if score == "magnitude":
            return w.float().abs()
        if score == "random":
            return self._random()
        raise ValueError(f"unknown mask score '{score}'. Valid: {', '.join(SCORES)}")


class MaskedEdges(EdgeMask):
    """A classifier head with one learnable function per edge (a KAN layer), its edges masked.

    ``head`` must give every edge's activation through ``edge_outputs(x)``: (B, D) -> (B, C, D),
    phi_ij(x_bj), with ``head(x) == edge_outputs(x).sum(-1)`` (benchmark's KANHead). Masked, the
    logits are sum_j M_ij phi_ij(x_j): a masked edge adds nothing and its parameters get exactly
    zero gradient; unmasked, the head's own forward. Scores, (C, D), generalise the linear ones,
    whose edge activation is phi_ij(x_j) = w_ij x_j:

    - ``obd``: 1/2 E_b[p_bi (1 - p_bi) phi_ij(x_bj)^2], the Gauss-Newton OBD saliency of removing
      the edge's whole activation from logit i (for a linear edge exactly 1/2 w^2 E[p(1-p) x^2]);
    - ``actstd``: std_b(phi_ij(x_bj)) (population std), the batch std of the edge's activation
      (pykan's edge scale, from which the v2 score |w| std(x) is the linear case);
    - ``random``: as for the linear layer. ``magnitude`` has no meaning here (an edge is a
      function, not one weight) and is refused.
    """

    def __init__(self, head: nn.Module, cfg: MaskConfig, seed: int = 0):
        if cfg.score == "magnitude":
            raise ValueError("mask.score = magnitude needs a linear classifier (a KAN edge is a "
                             "function, not one weight). Valid with a KAN head: obd, actstd, random")
        super().__init__(cfg, seed)
        self.head = head
        dev = next(head.parameters()).device
        self.register_buffer("mask", torch.ones(head.out_features, head.in_features, device=dev))

    def forward(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, C)."""
        if self._step_refreshes():
            self.refresh(x)
        if self.masking():
            return (self.head.edge_outputs(x) * self.mask).sum(-1)
        return self.head(x)

    @torch.no_grad()
    def scores(self, x: Tensor) -> Tensor:
        """(B, D) batch -> (C, D) fp32 edge scores under cfg.score (higher = kept)."""
        score = self.cfg.score
        if score == "random":
            return self._random()
        phi = self.head.edge_outputs(x).float()
        if score == "obd":
            logits = phi.sum(-1) if self.cfg.obd_probs == "unmasked" else (phi * self.mask).sum(-1)
            return edge_obd_scores(phi, logits)
        if score == "actstd":
            return phi.std(dim=0, correction=0)
        raise ValueError(f"unknown mask score '{score}' for a KAN head. Valid: obd, actstd, random")
