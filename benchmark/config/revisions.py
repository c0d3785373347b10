"""Revisions: the version of the numbers a run's code produces, part of its identity.

A finished run is never recomputed, so a change that moves a method's numbers would leave runs of
the old code in every store under the ids of the new one. Each method carries a revision
(methods.base.Method.revision; the mask's is methods.mask.MASK_REVISION) and the training loop
carries HARNESS_REVISION; they enter the run id (config.run.RunConfig.identity, only where above
1, so runs made before revisions existed keep their ids) and are bumped whenever the pinned
results (tests/fingerprints.json) move. ``stale_reason`` says when a stored run was made by an
older revision than the code in hand: ``ls`` marks it and reports leave it out of their tables.
"""
from __future__ import annotations

from typing import Any

from methods import list_methods, revisions_of

__all__ = ["HARNESS_REVISION", "TUNE_SEED_BASE", "run_revisions", "stale_reason", "is_tuning_run"]

HARNESS_REVISION = 1
"""The version of the training loop's numbers (data order, evaluation, selection): bumped when a
change to the harness moves pinned results (tests/fingerprints.json); part of every run id from 2."""


TUNE_SEED_BASE = 1000
"""Seeds from here on are tuning seeds: ``tune`` trains its trials on TUNE_SEED_BASE, +1, ..., so a
preset's seeds 0, 1, 2 are fresh, and reports leave runs on these seeds out of their tables (a
tuning study keeps the runs it chose for scoring well on noisy validation: averaged into a table
they would carry that selection's luck, a winner's curse)."""


def is_tuning_run(config: dict[str, Any]) -> bool:
    """Whether the run recorded in ``config`` (a config.json) was trained on a tuning seed."""
    seed = config.get("seed")
    return isinstance(seed, int) and not isinstance(seed, bool) and seed >= TUNE_SEED_BASE


def run_revisions(method: str) -> dict[str, int]:
    """The revisions a run's numbers depend on: the harness's and the method's (and the mask's),
    e.g. ``{"harness": 1, "sed": 2, "mask": 1}`` for ``sed+obd``."""
    return {"harness": HARNESS_REVISION, **revisions_of(method)}


def stale_reason(config: dict[str, Any]) -> str:
    """'' when the run recorded in ``config`` (a config.json) was made by the revisions of the code
    in hand, or when that cannot be told (its method is not registered here, e.g. a plugin that
    is not loaded: nothing is imported to find out); otherwise which revisions moved, e.g.
    ``"sed revision 1, now 2"``. A run made before revisions existed records none: all were 1."""
    method = config.get("method")
    if not isinstance(method, str) or method not in list_methods():
        return ""
    recorded = config.get("revisions")
    recorded = recorded if isinstance(recorded, dict) else {}
    moved = [f"{k} revision {recorded.get(k, 1)}, now {v}" for k, v in run_revisions(method).items()
             if recorded.get(k, 1) != v]
    return "; ".join(moved)
