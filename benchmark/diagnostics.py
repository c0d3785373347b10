"""Diagnostics computed by the runner from the clean labels (methods never see them)."""
from __future__ import annotations

import math

import torch
from sklearn.metrics import roc_auc_score


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
