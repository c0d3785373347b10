"""Pinned results: every registered method (every X and X+obd, and the KAN head on a few) trained
for two epochs on a tiny dataset, every figure it records compared with tests/fingerprints.json.

A change that moves any method's numbers is then a visible, deliberate act: the test fails,
naming the method and the figures that moved, until the file is written again with

    .venv/bin/python -m tests.fingerprints            # say what changed, write nothing
    .venv/bin/python -m tests.fingerprints --write    # write the file (then commit it)
    .venv/bin/python -m tests.fingerprints --write ce gce   # only these entries

and a method whose numbers moved must bump its revision (methods.base.Method.revision, the
mask's MASK_REVISION, the harness's HARNESS_REVISION): the test also fails when the numbers of
an entry move while its revisions stay those the file was written under.

Tolerance: on the kernel set the file was written on (torch's CPU capability, CPU model and
ISA extensions, torch version: benchmark.training.runtime.numerics) every figure must be equal bit for
bit; on another kernel set CPU reductions round differently, and figures must agree within RTOL
relative or ATOL absolute, no more. Measured: the file written with AVX512 kernels, recomputed
with ``ATEN_CPU_CAPABILITY=avx2`` (torch's AVX2 kernels) on the same machine, differs bit-wise in
198 figures, by at most 9.0e-7 (NCE+RCE's first-epoch loss, 8.3396); the tolerance leaves a
margin of ten over that and is far below one sample of an accuracy (1/360).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmark.store import Store
from benchmark.training import run, run_revisions, runtime
from methods import list_methods
from tests.conftest import tiny_config

FILE = Path(__file__).with_name("fingerprints.json")
EPOCHS = 2
RTOL = 1e-5
ATOL = 1e-5
KAN = ("ce", "obd", "nce_rce+obd")
"""Methods also pinned with the KAN head (entries named "<method>@kan")."""


def entries() -> list[str]:
    """Every entry: each registered method, then the KAN ones."""
    return list_methods() + [f"{m}@kan" for m in KAN]


def _config(entry: str):
    method, _, head = entry.partition("@")
    extra = {"classifier": "kan"} if head == "kan" else {}
    return tiny_config(method, epochs=EPOCHS, **extra)


def fingerprint(entry: str) -> dict[str, Any]:
    """Train ``entry`` in a temporary store; its revisions and every figure it recorded:
    per-epoch metrics as "e<epoch>/<name>" (time/* left out) and the final numeric results."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(entry)
        res = run(cfg, tmp, wandb="disabled")
        rows = Store(tmp).read_metrics(res["run_id"])
    figures: dict[str, float] = {}
    for r in rows:
        ep = int(r["epoch"])
        for k, v in r.items():
            if k != "epoch" and not k.startswith("time/"):
                figures[f"e{ep}/{k}"] = float(v)
    for k, v in res.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith(("time/", "mem/")) \
                and k != "epochs":
            figures[k] = float(v)
    return {"run_id": res["run_id"], "revisions": run_revisions(cfg.method), "figures": figures}


def machine() -> dict[str, Any]:
    """The kernel set fingerprints are computed on (equal records: bit-for-bit comparisons)."""
    n = runtime.numerics(1, "fp32", torch.device("cpu"))
    return {"torch": n["torch"], "cpu": n["cpu"]}


def compare(pinned: dict[str, Any], now: dict[str, Any], exact: bool) -> list[str]:
    """The differences between a pinned entry and a fresh one, one line each (empty: equal)."""
    out = []
    if pinned.get("revisions") != now["revisions"]:
        out.append(f"revisions {pinned.get('revisions')} pinned, {now['revisions']} now")
    a, b = pinned.get("figures", {}), now["figures"]
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            out.append(f"{k}: {'only now' if k in b else 'no longer recorded'}")
            continue
        x, y = a[k], b[k]
        if math.isnan(x) and math.isnan(y):
            continue
        same = x == y if exact else math.isclose(x, y, rel_tol=RTOL, abs_tol=ATOL)
        if not same:
            out.append(f"{k}: {x!r} pinned, {y!r} now")
    return out


def load() -> dict[str, Any]:
    return json.loads(FILE.read_text()) if FILE.is_file() else {"machine": {}, "entries": {}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fingerprints", description=__doc__.split("\n\n")[0])
    ap.add_argument("entries", nargs="*", help="entries to compute (default: all)")
    ap.add_argument("--write", action="store_true", help="write the fresh figures into the file")
    a = ap.parse_args(argv)
    known = entries()
    bad = [e for e in a.entries if e not in known]
    if bad:
        print(f"unknown entries: {', '.join(bad)}. Valid: {', '.join(known)}", file=sys.stderr)
        return 2
    data = load()
    here = machine()
    exact = data.get("machine") == here
    if a.write and a.entries and not exact and data["entries"]:
        print("the file was written on another kernel set: write every entry here (no names), "
              "or its other entries would be compared bit for bit against this machine", file=sys.stderr)
        return 2
    changed = 0
    for entry in a.entries or known:
        now = fingerprint(entry)
        diff = compare(data["entries"].get(entry, {}), now, exact) if entry in data["entries"] else ["new entry"]
        if diff:
            changed += 1
            print(f"{entry}: " + "; ".join(diff[:6]) + (f"; ... ({len(diff)} differences)" if len(diff) > 6 else ""))
        data["entries"][entry] = now
    if not a.entries:  # a full run also drops entries of methods that no longer exist
        data["entries"] = {k: v for k, v in data["entries"].items() if k in known}
    print(f"{changed} of {len(a.entries or known)} entries differ from {FILE.name}"
          + ("" if exact else " (another kernel set: compared within tolerance)"))
    if a.write:
        data["machine"] = here
        data["entries"] = dict(sorted(data["entries"].items()))
        FILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"wrote {FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
