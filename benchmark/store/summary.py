"""What a finished run's result is: the final figures derived from its per-epoch rows.

The training loop writes ``summarise(rows)`` into result.json, and a merge recomputes it from a
copied metrics.csv to verify the copy: one definition, here with the store that checks it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["summarise", "LAST_K", "LAST_EPOCH_PREFIXES"]

LAST_K = 10
"""test/acc_last10_mean: the mean test accuracy over the last LAST_K epochs, when each was tested
(test_every = 1, or test_last >= 10): the rule of the SED, DISC and JoCoR tables."""
LAST_EPOCH_PREFIXES = ("select/", "correct/", "mask/", "grad/", "memo/")
"""Diagnostics whose last-epoch values travel with the result."""


def summarise(rows: list[dict[str, float]]) -> dict[str, Any]:
    """Final figures from the per-epoch rows.

    acc_best is the oracle (best test accuracy over the tested epochs: chosen with the test set,
    reported for comparison with papers only); acc_at_best_val is the test accuracy at the epoch
    of the best noisy-validation accuracy (earliest epoch on ties): the honest, selected number.
    The last epoch is always tested, and the selected one at the end when the schedule skipped it
    (see benchmark.training's _BestVal); test/acc_last10_mean when each of the last LAST_K epochs was tested.
    """
    tested = [(int(r["epoch"]), r["test/acc"]) for r in rows if "test/acc" in r]
    best_epoch, best_acc = max(tested, key=lambda t: (t[1], -t[0]))
    out: dict[str, Any] = {"test/acc_last": rows[-1]["test/acc"], "test/acc_best": best_acc,
                           "test/acc_best_epoch": best_epoch, "test/acc_best_is_oracle": True,
                           "epochs": len(rows), "tested_epochs": len(tested)}
    tail = [acc for e, acc in tested if e > len(rows) - LAST_K]
    if len(tail) == min(LAST_K, len(rows)):
        out["test/acc_last10_mean"] = float(np.mean(tail))
    val = [r.get("val_noisy/acc", math.nan) for r in rows]
    extra = sorted({k for r in rows for k in r if k.startswith("test_") and k.endswith("/acc")})
    for k in extra:  # further test sets (WebVision's ILSVRC2012 val): last epoch
        out[f"{k}_last"] = rows[-1].get(k, math.nan)
    if all(math.isfinite(v) for v in val):
        sel = int(np.argmax(val))
        out.update({"test/acc_at_best_val": rows[sel].get("test/acc", math.nan),
                    "val_noisy/acc_best": val[sel], "selected_epoch": sel + 1})
        for k in extra:  # and at the epoch chosen by noisy validation, when it was tested
            out[f"{k}_at_best_val"] = rows[sel].get(k, math.nan)
    else:  # no validation split: nothing may be selected (never with the test set)
        out.update({"test/acc_at_best_val": math.nan, "val_noisy/acc_best": math.nan,
                    "selected_epoch": None})
    # last-epoch diagnostics travel with the result (selection quality, mask, gradient error)
    out.update({k: v for k, v in rows[-1].items() if k.startswith(LAST_EPOCH_PREFIXES)})
    return out
