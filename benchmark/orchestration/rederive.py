"""Re-deriving recorded numbers (``runner.py verify``): retrain finished runs from their
config.json in a temporary store and compare every figure they recorded.

Any number in a report comes from a run folder; this retrains the run from the config the folder
holds and compares each metric of each epoch (metrics.csv) and each final figure (result.json),
leaving out what measures the machine (time, memory: layout.MEASURED). The comparison is bit for
bit when the retrained run's numerics (config.json's ``numerics``: the pinned settings, the torch
version and the CPU / GPU kernel set) equal the stored run's; on other kernels float reductions
round differently and drift over epochs, so figures are compared within TOLERANCE, and the
verdict says which comparison it made and why. Runs made by an older revision of their code
(config.stale_reason) cannot be re-derived by this code and are refused by name.
"""
from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

from benchmark.config import config_from_dict, flatten, stale_reason
from benchmark.errors import UsageError
from benchmark.store import Store
from benchmark.store.layout import MEASURED
from benchmark.store.verify import same, show
from benchmark.training import run
from methods import list_methods

__all__ = ["TOLERANCE", "Verdict", "choose", "verify_run", "compare"]

TOLERANCE = 1e-5
"""Absolute tolerance on a fraction (accuracy, rate) or relative on other figures, used when the
stored run was made on other kernels: the pinned results (tests/fingerprints.py) measured at most
9e-7 between AVX2 and AVX512 kernels over two epochs; a long run may drift further, and the
verdict then names the figures that moved."""

SAMPLE_SEED = 0
"""``--sample N`` draws the same runs of a given store every time (reproducible spot checks)."""


@dataclass
class Verdict:
    """The outcome of re-deriving one run."""

    run_id: str
    exact: bool
    """True: compared bit for bit (same numerics); False: within TOLERANCE."""
    why_not_exact: str = ""
    """Which numerics differ, when not exact."""
    differences: list[str] = field(default_factory=list)
    """One line per figure that differs: ``metrics.csv epoch 3 test/acc 0.8125 vs 0.8130``."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.differences


def choose(store: Store, run_ids: list[str], sample: int | None) -> list[str]:
    """The runs to verify: the named ones (each must be a finished run of the current revision),
    else ``sample`` of the store's finished current runs drawn with SAMPLE_SEED."""
    finished = {rid: cfg for rid, cfg, _res, _meta in store.finished_runs()}
    if run_ids:
        for rid in run_ids:
            if rid not in finished:
                what = "no run folder" if not store.run_dir(rid).is_dir() else "not a finished run"
                raise UsageError(f"run {rid}: {what} in {store.root} (runner.py ls --runs {store.root} lists them)")
        chosen = list(run_ids)
    else:
        current = sorted(rid for rid, cfg in finished.items() if not stale_reason(cfg))
        if not current:
            raise UsageError(f"no finished runs of the current code in {store.root}: nothing to verify")
        chosen = random.Random(SAMPLE_SEED).sample(current, min(sample or 3, len(current)))
    for rid in chosen:
        cfg = finished[rid]
        if cfg.get("method") not in list_methods():
            raise UsageError(f"run {rid}: method '{cfg.get('method')}' is not registered here; if it is a "
                             "plugin's, give it with --plugin")
        if why := stale_reason(cfg):
            raise UsageError(f"run {rid} was made by an older revision ({why}): this code computes other "
                             "numbers by design, so it cannot re-derive them")
    return chosen


def verify_run(store: Store, run_id: str, *, data_dir: str | None = None,
               progress: Callable[[str], None] | None = None) -> Verdict:
    """Retrain ``run_id`` of ``store`` in a temporary store and compare; reads ``store`` only."""
    folder = store.run_dir(run_id)
    stored_cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    stored_res = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    stored_rows = store.read_metrics(run_id)
    cfg = config_from_dict(stored_cfg)
    if data_dir:
        cfg.data_dir = data_dir  # where the data lives is not part of a run's identity
    with tempfile.TemporaryDirectory(prefix="nlb-verify-") as tmp:
        res = run(cfg, runs_dir=tmp, wandb="disabled",
                  progress=(lambda row: progress(f"{run_id} epoch {int(row['epoch'])}")) if progress else None)
        new = Store(tmp)
        new_cfg = json.loads((new.run_dir(res["run_id"]) / "config.json").read_text(encoding="utf-8"))
        new_res = json.loads((new.run_dir(res["run_id"]) / "result.json").read_text(encoding="utf-8"))
        new_rows = new.read_metrics(res["run_id"])
    mine, theirs = new_cfg.get("numerics") or {}, stored_cfg.get("numerics") or {}
    moved = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    verdict = Verdict(run_id, exact=not moved,
                      why_not_exact=", ".join(f"{k}: {theirs.get(k, '(not recorded)')} there, {mine.get(k)} here"
                                              for k in moved))
    if res["run_id"] != run_id:
        verdict.differences.append(f"run id {res['run_id']} retrained from this config.json (its config, noise "
                                   "or revisions do not give the folder's id)")
    verdict.differences += compare(stored_res, stored_rows, new_res, new_rows, exact=verdict.exact)
    verdict.seconds = float(new_res.get("time/total_s") or 0.0)
    return verdict


def compare(stored: dict[str, Any], stored_rows: list[dict[str, float]], new: dict[str, Any],
            new_rows: list[dict[str, float]], *, exact: bool) -> list[str]:
    """Every recorded figure that differs (result.json's and each metrics.csv row's), machine
    measurements left out; ``exact``: bit for bit, else within TOLERANCE."""
    out = []
    tol = 0.0 if exact else TOLERANCE
    a, b = flatten(stored), flatten(new)
    for k in sorted(a.keys() | b.keys()):
        if not k.startswith(MEASURED) and k != "run_id" and not same(a.get(k), b.get(k), tol):
            out.append(f"result.json {k} {show(a, k)} stored vs {show(b, k)} retrained")
    if len(stored_rows) != len(new_rows):
        out.append(f"metrics.csv {len(stored_rows)} epochs stored vs {len(new_rows)} retrained")
    for ra, rb in zip(stored_rows, new_rows):
        epoch = int(ra.get("epoch", rb.get("epoch", -1)))
        for k in sorted(ra.keys() | rb.keys()):
            if not k.startswith(MEASURED) and not same(ra.get(k), rb.get(k), tol):
                out.append(f"metrics.csv epoch {epoch} {k} {show(ra, k)} stored vs {show(rb, k)} retrained")
    return out
