"""Gradient diagnostics on a fixed probe batch, computed by the runner with the clean labels.

How far do the noisy labels push the classifier's gradients from the ones the clean labels would
give? On the runner's fixed probe batch (P samples), with network 1 (``method.networks()[0]``) in
eval mode, features f = forward_features(x) (P, D) and the classifier (W (C, D), b (C,)):

- ``grad/err_fc_unmasked``  = ||G_W(noisy) - G_W(clean)||_F / ||G_W(clean)||_F,
  G_W = (softmax(z) - onehot(y))^T f / P, z = f W^T + b: the CE gradient of the classifier weights;
- ``grad/err_feat_unmasked`` = the same ratio for G_f = (softmax(z) - onehot(y)) W (P, D): each
  sample's CE gradient sent back to its features (Frobenius norm over the batch);
- ``grad/err_fc_masked``, ``grad/err_feat_masked``: the same with the classifier's current edge
  mask M (only when the classifier is a MaskedLinear): z = f (W*M)^T + b, G_W is masked
  (G_W * M: the gradient the masked layer's W actually receives in training) and G_f = r (W*M).
  They are reported whatever ``at_eval`` says: they measure what training sends back.

Unmasked methods report the two unmasked figures (the baseline the masked ones are read against).
Gradients are closed-form (no autograd, no parameter touched), in fp32; BatchNorm statistics,
optimiser state and RNG are untouched, and the network's train/eval mode is restored.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def linear_ce_grads(f: Tensor, w: Tensor, b: Tensor | None, y: Tensor,
                    mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Closed-form CE gradients of a (masked) linear classifier.

    f: (P, D) features, w: (C, D), b: (C,) or None, y: (P,) int64 labels, mask: (C, D) 0/1 or None.
    Returns (G_W (C, D): gradient of the mean CE w.r.t. W (zero where masked),
             G_f (P, D): row p = gradient of sample p's CE w.r.t. f_p).
    """
    w_eff = w if mask is None else w * mask
    z = f @ w_eff.T
    if b is not None:
        z = z + b
    r = F.softmax(z, dim=1) - F.one_hot(y, w.shape[0]).to(z.dtype)
    g_w = r.T @ f / f.shape[0]
    if mask is not None:
        g_w = g_w * mask
    return g_w, r @ w_eff


def relative_error(noisy: Tensor, clean: Tensor) -> float:
    """||noisy - clean||_F / ||clean||_F (NaN when the clean gradient is exactly zero)."""
    den = float(torch.linalg.norm(clean))
    return float(torch.linalg.norm(noisy - clean)) / den if den > 0 else math.nan


def gradient_errors(f: Tensor, w: Tensor, b: Tensor | None, noisy: Tensor, clean: Tensor,
                    mask: Tensor | None = None) -> dict[str, float]:
    """{"fc": err of G_W, "feat": err of G_f} for one classifier (shapes as in linear_ce_grads)."""
    gw_n, gf_n = linear_ce_grads(f, w, b, noisy, mask)
    gw_c, gf_c = linear_ce_grads(f, w, b, clean, mask)
    return {"fc": relative_error(gw_n, gw_c), "feat": relative_error(gf_n, gf_c)}


@torch.no_grad()
def probe_metrics(method, x: Tensor, noisy: Tensor, clean: Tensor) -> dict[str, float]:
    """x: (P, C, H, W) normalised probe batch; noisy, clean: (P,) labels. Returns grad/* metrics
    ({} when the method has no network with ``forward_features`` and a linear ``classifier``)."""
    nets = method.networks()
    if not nets:
        return {}
    net = nets[0]
    head = getattr(net, "classifier", None)
    weight = getattr(head, "weight", None)
    if not hasattr(net, "forward_features") or not isinstance(weight, Tensor) or weight.dim() != 2:
        return {}
    was_training = net.training
    net.eval()
    try:
        f = net.forward_features(x).float()
    finally:
        net.train(was_training)
    w = weight.detach().float()
    b = head.bias.detach().float() if getattr(head, "bias", None) is not None else None
    noisy, clean = noisy.to(f.device), clean.to(f.device)
    out = {f"grad/err_{k}_unmasked": v for k, v in gradient_errors(f, w, b, noisy, clean).items()}
    mask = getattr(head, "mask", None)
    if isinstance(mask, Tensor):
        masked = gradient_errors(f, w, b, noisy, clean, mask.float())
        out.update({f"grad/err_{k}_masked": v for k, v in masked.items()})
    return out
