"""Diagnostics the runner computes from the clean labels (methods never see them): memorisation,
selection and correction quality, and the gradient error on a fixed probe batch.

Gradient error: how far do the noisy labels push the classifier's gradients from the ones the
clean labels would give? On the runner's fixed probe batch (P samples), with network 1
(``method.networks()[0]``) in eval mode, features f = forward_features(x) (P, D) and the
classifier (W (C, D), b (C,)):

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
from sklearn.metrics import roc_auc_score
from torch import Tensor

__all__ = ["memorisation", "selection_quality", "correction_quality", "linear_ce_grads", "relative_error",
           "gradient_errors", "probe_metrics"]


def memorisation(pred: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    """On noisy-labelled samples: fraction predicted as their noisy label and as their true label.

    pred, noisy, clean: (M,) int64 for M samples whose noisy label differs from the clean one.
    A rising memo/noisy_fit is the network memorising the noise.
    """
    return {"memo/noisy_fit": float((pred == noisy).float().mean()),
            "memo/true_fit": float((pred == clean).float().mean())}


def selection_quality(selected: torch.Tensor | None, scores: torch.Tensor | None,
                      is_clean: torch.Tensor) -> dict[str, float]:
    """Precision/recall/F1 of the set a method treats as clean, and the AUC of its P(clean).

    selected: (N,) bool or None; scores: (N,) float or None (NaN: not scored this epoch; the
    figures then cover the scored samples only); is_clean: (N,) bool truth.
    Precision is the label precision of the kept set (Co-teaching's "pure ratio").
    """
    out: dict[str, float] = {}
    if scores is not None and not bool(torch.isfinite(scores).all()):
        # scored on a subset this epoch (NaN elsewhere: DivideMix's per-epoch draw on Clothing1M):
        # judge the division on the samples it divided
        rows = torch.isfinite(scores).to(is_clean.device)
        out["select/scored"] = float(rows.float().mean())  # so a NaN from a bug shows as such
        scores, is_clean = scores.to(is_clean.device)[rows], is_clean[rows]
        selected = None if selected is None else selected.to(rows.device)[rows]
    if selected is not None:
        sel = selected.to(is_clean.device).bool()
        tp = float((sel & is_clean).sum())
        n_sel, n_clean = float(sel.sum()), float(is_clean.sum())
        p = tp / n_sel if n_sel else math.nan
        r = tp / n_clean if n_clean else math.nan
        out["select/precision"] = p
        out["select/recall"] = r
        out["select/f1"] = 2 * p * r / (p + r) if (p + r) > 0 else math.nan
        out["select/fraction"] = n_sel / len(sel) if len(sel) else math.nan
    if scores is not None:
        truth = is_clean.cpu().numpy()
        if 0 < truth.sum() < len(truth):
            out["select/auc"] = float(roc_auc_score(truth, scores.detach().float().cpu().numpy()))
        else:
            out["select/auc"] = math.nan
    return out


def correction_quality(corrected: torch.Tensor | None, noisy: torch.Tensor,
                       clean: torch.Tensor) -> dict[str, float]:
    """How well a relabelling method's new labels match the truth.

    corrected: (N,) int64, the new label or -1 where the method kept the given one (or None);
    noisy, clean: (N,) int64. correct/accuracy is the fraction of relabelled samples whose new
    label is the clean one; correct/fixed the fraction of noisy samples relabelled to their clean
    label; correct/broken the fraction of clean samples relabelled to a wrong label; and
    correct/label_precision the label precision of the whole training set after relabelling.
    """
    if corrected is None:
        return {}
    c = corrected.to(clean.device)
    rel = c >= 0
    n_rel = float(rel.sum())
    is_noisy = noisy != clean
    now = torch.where(rel, c, noisy)
    hit = rel & (c == clean)
    return {"correct/fraction": n_rel / len(c),
            "correct/accuracy": float(hit.sum()) / n_rel if n_rel else math.nan,
            "correct/fixed": float((hit & is_noisy).sum()) / max(float(is_noisy.sum()), 1.0),
            "correct/broken": float((rel & ~is_noisy & (c != clean)).sum()) / max(float((~is_noisy).sum()), 1.0),
            "correct/label_precision": float((now == clean).float().mean())}


# ----- gradient error on the probe batch ------------------------------------------------------

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
