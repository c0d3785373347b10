"""The run folder: which files it holds, which final figures a result carries. One place, read by
the store (runs.py), merge (merge.py) and ``runner.py ls``.

    <root>/<run_id>/config.json    resolved config (+ derived seeds, protocol, noise summary)
                    metrics.csv    one row per epoch
                    result.json    final figures; present only for a finished run
                    meta.json      git SHA, package versions, device, wall time, peak memory
                    checkpoint.pt  while the run is alive (removed when it finishes), and the
                                   previous one as checkpoint.prev.pt
                    failure.json   why a run stopped (NaN loss, exception); never a result
                    stopped.json   a run stopped early on purpose (resumable)
                    wandb.json     the offline W&B directory of its last attempt
                    .lock          the run's lock while a process trains it

    <root>/_noise/<key>/...        noise artifacts; <key>: the dataset's name, or a
                                   separator-free stand-in for list:/folder: (noise_cache.py)
"""
from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

__all__ = ["RUN_ID", "RUN_FILES", "CHECKPOINTS", "SUITE_FILES", "FINAL_METRICS", "ACCURACIES", "FRACTIONS",
           "MEASURED", "MACHINE_KEYS", "NOISE_DIR", "in_noise_dir", "machine_differences", "same_machine"]

RUN_ID = re.compile(r"[0-9a-f]{16}")
"""A run folder's name: the first 16 hex digits of its config hash (RunConfig.run_id)."""

RUN_FILES = ("config.json", "metrics.csv", "result.json", "meta.json")
"""The files of a finished run: what a merge verifies and copies (in this order)."""

CHECKPOINTS = ("checkpoint.pt", "checkpoint.prev.pt")
"""A live run's checkpoints, newest first."""

SUITE_FILES = {*RUN_FILES, "failure.json", "stopped.json", "wandb.json", *CHECKPOINTS, ".lock"}
"""Every file the suite writes in a run folder (plus *.bad checkpoints and *.tmp leftovers)."""

FINAL_METRICS = ("test/acc_last", "test/acc_best", "test/acc_at_best_val", "noise/actual_rate",
                 "time/total_s", "time/samples_per_s", "mem/peak_mb")
"""Final figures every result.json holds (null when not defined, e.g. no validation split)."""

ACCURACIES = ("test/acc_last", "test/acc_at_best_val", "test/acc_best")
"""The three test accuracies, as ``ls`` shows them: last epoch, selected by noisy validation,
oracle (best tested epoch)."""

FRACTIONS = re.compile(r"[a-z0-9_]+/(?:[a-z0-9_]+_)?acc(?:_last|_best|_at_best_val|_last10_mean|_net\d+)?"
                       r"|noise[/.]actual_rate(?:_full)?|memo/(?:noisy|true)_fit"
                       r"|select/(?:precision|recall|f1|auc|fraction)|correct/[a-z_]+")
"""Figures that are fractions, as metrics.csv columns and result.json keys (``noise.actual_rate``
is result.json's noise record): every accuracy (``test/acc``, ``val_noisy/acc_best``,
``test_imagenet/acc_last``, ``test/acc_net1``, ``cl/oos_noisy_acc``; not ``test/acc_best_epoch``),
the measured noise rates, memorisation, selection and relabelling quality. Where a run recorded
one, it is a finite number in [0, 1]."""

NOISE_DIR = "_noise"
"""The store's noise cache folder (noise_cache.cache_path: ``_noise/<dataset>/<spec>-seed<S>.npz``)."""


def in_noise_dir(rel: PurePath) -> bool:
    """Whether ``rel``, a noise artifact's path relative to a store root, lies in the store's
    NOISE_DIR by its own components: relative, starting with NOISE_DIR, with no ``..`` or ``.``.

    The path is made from the run's dataset name, and a received store chooses that name: a
    dataset ``list:../../../../x/list.txt`` gives a path that climbs out of the store, through
    which merge would read an outside file in the source and write an .npz and its lock outside
    the target. Judged on the components alone (no file system is consulted), so a source and a
    target judge it alike."""
    parts = rel.parts
    return (not rel.is_absolute() and len(parts) > 1 and parts[0] == NOISE_DIR
            and not any(p in ("", ".", "..") for p in parts))


MEASURED = ("time/", "mem/")
"""result.json keys and metrics.csv columns that measure the machine, not the run: two copies of
one run made on two machines may differ there."""

MACHINE_KEYS = ("device_type", "torch", "cpu", "gpu")
"""Numerics (config.json's ``numerics``) that describe the machine rather than the run's settings:
a finished run made on another machine (merged) is that machine's result of the same run, so these
may differ there; bit-for-bit equality holds only where they agree."""


def machine_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """How two numerics records' machine kernels differ, one item per field, e.g.
    ``cpu.capability AVX2 vs AVX512``; empty when they name the same kernels. A key one record
    lacks (made before it was recorded) counts as agreeing, as a whole."""
    found = []
    for k in MACHINE_KEYS:
        if k not in a or k not in b or a[k] == b[k]:
            continue
        x, y = a[k], b[k]
        if isinstance(x, dict) and isinstance(y, dict):
            found += [f"{k}.{sub} {_text(x.get(sub))} vs {_text(y.get(sub))}"
                      for sub in sorted(x.keys() | y.keys()) if x.get(sub) != y.get(sub)]
        else:
            found.append(f"{k} {_text(x)} vs {_text(y)}")
    return found


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two numerics records name the same machine kernels (a record made before a key was
    recorded counts as agreeing on it)."""
    return not machine_differences(a, b)


def _text(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(none)"
    return str(value) if str(value) else "''"
