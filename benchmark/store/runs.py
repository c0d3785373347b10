"""The run store: one directory per run, named by its config hash; the source of truth.

:class:`Store` creates, locks, writes and describes run folders (their layout: layout.py) through
atomic writes (atomic.py). A run's checkpoints rotate and load with ``weights_only=True``; one
that does not load is set aside, never trusted.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from benchmark.errors import StoreError
from benchmark.store.atomic import atomic_write_bytes, atomic_write_json, read_json
from benchmark.store.layout import CHECKPOINTS, MACHINE_KEYS, RUN_ID, SUITE_FILES

__all__ = ["Store"]


def _read_or_empty(path: Path) -> dict[str, Any]:
    try:
        obj = read_json(path)
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _plain(obj: Any) -> Any:
    """numpy scalars and arrays inside a checkpoint state as Python numbers and tensors."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, str) and type(obj) is not str:  # e.g. torch's TorchVersion
        return str(obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    return obj


class Store:
    """A directory of runs. Cheap to construct; holds no state besides the root path."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        """Exclusive per-run lock (flock), held while a run trains.

        Two workers that draw the same run wait for each other; the second then finds it finished.
        The OS releases the lock of a killed process, so a dead worker never blocks a run.
        """
        d = self.run_dir(run_id)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / ".lock", "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def is_finished(self, run_id: str) -> bool:
        return (self.run_dir(run_id) / "result.json").is_file()

    def check_numerics(self, run_id: str, numerics: dict[str, Any]) -> None:
        """Refuse to hand out a finished run computed under another numerical setting.

        The settings the suite controls (threads, precision, the fixed determinism flags) must
        agree; the device type and the torch version may differ (a run merged from another
        machine is that machine's result of the same run, recorded in its meta.json).
        """
        cfg_path = self.run_dir(run_id) / "config.json"
        stored = (read_json(cfg_path) if cfg_path.is_file() else {}).get("numerics")
        if stored is None:
            raise StoreError(f"run {run_id} in {self.root} records no numerical setting (made by an "
                             f"earlier version?); move it out of the store to recompute it")
        keys = [k for k in numerics if k not in MACHINE_KEYS]
        diff = {k: (stored.get(k), numerics[k]) for k in keys if stored.get(k) != numerics[k]}
        if diff:
            what = ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in diff.items())
            raise StoreError(f"run {run_id} in {self.root} was computed under another numerical "
                             f"setting ({what}): not the same run")

    def result(self, run_id: str) -> dict[str, Any] | None:
        p = self.run_dir(run_id) / "result.json"
        return read_json(p) if p.is_file() else None

    # ----- writing --------------------------------------------------------------------------
    def write_json(self, run_id: str, name: str, obj: Any) -> None:
        atomic_write_json(self.run_dir(run_id) / name, obj)

    def write_metrics(self, run_id: str, rows: list[dict[str, float]]) -> None:
        """Rewrite metrics.csv with every epoch so far (small: one row per epoch)."""
        cols: list[str] = []
        for r in rows:
            cols += [k for k in r if k not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, restval="")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        atomic_write_bytes(self.run_dir(run_id) / "metrics.csv", buf.getvalue().encode())

    def read_metrics(self, run_id: str) -> list[dict[str, float]]:
        p = self.run_dir(run_id) / "metrics.csv"
        if not p.is_file():
            return []
        with p.open() as f:
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]

    def save_checkpoint(self, run_id: str, state: dict[str, Any]) -> None:
        """Write checkpoint.pt atomically; the previous one is kept as checkpoint.prev.pt.

        Only tensors and plain containers go in (numpy scalars are converted), so the file loads
        with ``torch.load(weights_only=True)``: a checkpoint received from elsewhere cannot run
        code when it is read.
        """
        buf = io.BytesIO()
        torch.save(_plain(state), buf)
        d = self.run_dir(run_id)
        if (d / "checkpoint.pt").is_file():
            os.replace(d / "checkpoint.pt", d / "checkpoint.prev.pt")
        atomic_write_bytes(d / "checkpoint.pt", buf.getvalue())

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The newest checkpoint that loads, or None.

        Loaded with ``weights_only=True`` (no code can run). A file that does not load (truncated,
        corrupted, or holding anything but tensors and plain containers) is moved aside to
        ``<name>.bad`` with a warning, and the previous checkpoint is tried: a bad file never
        blocks a run, it only costs the epochs since the last good state.
        """
        d = self.run_dir(run_id)
        for name in CHECKPOINTS:
            p = d / name
            if not p.is_file():
                continue
            try:
                state = torch.load(p, map_location="cpu", weights_only=True)
                if not isinstance(state, dict) or "epoch" not in state:
                    raise ValueError("not a checkpoint of this suite")
                return state
            except Exception as e:  # noqa: BLE001 - any failure means: do not trust this file
                self.set_aside(run_id, name, f"{type(e).__name__}: {str(e)[:200]}")
        return None

    def set_aside(self, run_id: str, name: str, why: str) -> None:
        """Move a checkpoint that cannot be used to ``<name>.bad`` (kept for inspection)."""
        d = self.run_dir(run_id)
        os.replace(d / name, d / f"{name}.bad")
        warnings.warn(f"run {run_id}: {name} cannot be used ({why}); moved to {name}.bad, "
                      f"continuing from the previous good state", RuntimeWarning, stacklevel=3)

    def drop_checkpoints(self, run_id: str) -> None:
        d = self.run_dir(run_id)
        for name in CHECKPOINTS:
            (d / name).unlink(missing_ok=True)

    def clean_stale(self, run_id: str) -> list[str]:
        """Remove temporary files left by a process that died mid-write; call with the run's lock
        held (no live writer then). Returns the names removed."""
        d = self.run_dir(run_id)
        gone = []
        for p in d.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            gone.append(p.name)
        return gone

    def finish(self, run_id: str, result: dict[str, Any], meta: dict[str, Any]) -> None:
        """Write meta then result (result.json marks the run finished), then drop the checkpoint."""
        self.write_json(run_id, "meta.json", meta)
        (self.run_dir(run_id) / "failure.json").unlink(missing_ok=True)
        self.write_json(run_id, "result.json", result)
        self.drop_checkpoints(run_id)

    def fail(self, run_id: str, reason: str, epoch: int | None) -> None:
        self.write_json(run_id, "failure.json", {"reason": reason, "epoch": epoch})
        self.drop_checkpoints(run_id)

    # ----- reading --------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """Run folders: named by a run id, holding a config.json or the lock of a run."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and RUN_ID.fullmatch(p.name)
                      and ((p / "config.json").is_file() or (p / ".lock").is_file()))

    def status(self, run_id: str) -> str:
        return self.describe(run_id)["status"]

    def is_locked(self, run_id: str) -> bool:
        """Whether a live process holds the run's lock (it is training now)."""
        p = self.run_dir(run_id) / ".lock"
        if not p.is_file():
            return False
        with open(p, "a+") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False

    def describe(self, run_id: str) -> dict[str, Any]:
        """What a run folder is: {status, detail, config, result, epochs}.

        status: finished; failed (detail: the reason); running (a live process holds its lock);
        stopped (stopped early, e.g. a pruned tuning trial; resumable); resumable (a checkpoint,
        e.g. after a crash); abandoned (nothing to resume: no result, checkpoint or failure record,
        e.g. refused or killed before its first checkpoint; ``prune`` removes these).
        """
        d = self.run_dir(run_id)
        cfg = _read_or_empty(d / "config.json")
        out = {"config": cfg, "result": None, "detail": "",
               "epochs": len(self.read_metrics(run_id))}
        if (d / "result.json").is_file():
            out.update(status="finished", result=read_json(d / "result.json"))
        elif (d / "failure.json").is_file():
            f = _read_or_empty(d / "failure.json")
            out.update(status="failed", detail=str(f.get("reason", "")))
        elif self.is_locked(run_id):
            out.update(status="running")
        elif (d / "stopped.json").is_file() and self._has_checkpoint(d):
            st = _read_or_empty(d / "stopped.json")
            out.update(status="stopped", detail=f"after epoch {st.get('epoch')}: {st.get('reason', '')}; "
                                                f"resumable")
        elif self._has_checkpoint(d):
            out.update(status="resumable", detail="interrupted; the same command resumes it")
        else:
            out.update(status="abandoned", detail="nothing to resume")
        return out

    @staticmethod
    def _has_checkpoint(d: Path) -> bool:
        return any((d / name).is_file() for name in CHECKPOINTS)

    def prune(self) -> list[str]:
        """Remove abandoned run folders (see describe); returns their ids. A folder is removed
        only if it is a run folder of this store and holds only files the suite writes."""
        removed = []
        for rid in self.run_ids():
            if self.describe(rid)["status"] != "abandoned" or not RUN_ID.fullmatch(rid):
                continue
            d = self.run_dir(rid)
            names = {p.name for p in d.iterdir()}
            if not all(n in SUITE_FILES or n.endswith((".bad", ".tmp")) for n in names):
                continue
            shutil.rmtree(d)
            removed.append(rid)
        return removed

    def finished_runs(self) -> Iterator[tuple[str, dict, dict, dict]]:
        """(run_id, config, result, meta) of every finished run."""
        for rid in self.run_ids():
            d = self.run_dir(rid)
            if (d / "result.json").is_file():
                meta = read_json(d / "meta.json") if (d / "meta.json").is_file() else {}
                yield rid, read_json(d / "config.json"), read_json(d / "result.json"), meta
