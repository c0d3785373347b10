"""The run store: one directory per run, named by its config hash; the source of truth.

    <root>/<run_id>/config.json    resolved config (+ derived seeds, protocol, noise summary)
                    metrics.csv    one row per epoch
                    result.json    final figures; present only for a finished run
                    meta.json      git SHA, package versions, device, wall time, peak memory
                    checkpoint.pt  while the run is alive (removed when it finishes)
                    failure.json   why a run stopped (NaN loss, exception); never a result

Every file is written atomically (temporary file in the same directory, then os.replace), so a
crash leaves either the old or the new file, never half of one.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch

from benchmark import runtime, settings
from benchmark.errors import StoreError

RUN_ID = re.compile(r"[0-9a-f]{16}")
SUITE_FILES = {"config.json", "metrics.csv", "result.json", "meta.json", "failure.json",
               "stopped.json", "wandb.json", "checkpoint.pt", "checkpoint.prev.pt", ".lock"}
"""Every file the suite writes in a run folder (plus *.bad checkpoints and *.tmp leftovers)."""


def _read_or_empty(path: Path) -> dict[str, Any]:
    try:
        obj = read_json(path)
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


FINAL_METRICS = ("test/acc_last", "test/acc_best", "test/acc_at_best_val", "noise/actual_rate",
                 "time/total_s", "time/samples_per_s", "mem/peak_mb")


_WRITES: dict[str, int] = {}


def _maybe_die(path: Path) -> None:
    """Fault injection for tests/test_faults.py: ``NLB_KILL_AT=checkpoint:3`` SIGKILLs this process
    in the middle of its 3rd checkpoint write (temporary file written, not yet renamed). Kinds: the
    file's stem (checkpoint, metrics, result, meta, config) or ``any``. Unset in normal use."""
    spec = settings.kill_at()
    if not spec:
        return
    kind, _, nth = spec.partition(":")
    stem = path.name.split(".")[0]
    if kind not in (stem, "any"):
        return
    _WRITES[kind] = _WRITES.get(kind, 0) + 1
    if _WRITES[kind] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _maybe_die(path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def json_safe(obj: Any) -> Any:
    """NaN/inf become null and numpy scalars plain numbers: strict JSON, readable by any tool."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def method_label(cfg: dict[str, Any]) -> str:
    """The method's name, plus the classifier and mask settings that differ from their defaults.

    "obd" for the default mask, "obd[sparsity=0.1]" for a sweep point, "ce[classifier=kan]" and
    "obd[classifier=kan,sparsity=0.3]" with the KAN head: cells of an ablation stay apart in
    reports instead of being averaged together.
    """
    from dataclasses import asdict

    from methods.mask import MaskConfig
    tags = [f"classifier={cfg['classifier']}"] if cfg.get("classifier", "linear") != "linear" else []
    mask = (cfg.get("hp_resolved") or {}).get("mask")
    if isinstance(mask, dict):
        defaults = asdict(MaskConfig())
        tags += [f"{k}={mask[k]}" for k in sorted(mask) if k in defaults and mask[k] != defaults[k]]
    return f"{cfg['method']}[{','.join(tags)}]" if tags else cfg["method"]


def hp_labels(runs: list[tuple[str, dict[str, Any], str]]) -> dict[str, str]:
    """A table label per run: runs that differ in resolved hyperparameters never share one.

    runs: (run_id, config, protocol label). Within one (protocol, dataset, noise setting,
    method_label) group, runs whose resolved hyperparameters differ get the settings that differ
    appended, e.g. ``gce (q=0.59)`` and ``gce (q=0.7)``; a group with one set of hyperparameters
    keeps the plain label. (After a tuning search the store holds one method under many settings;
    averaging them into one row would report a number no configuration produced.)
    """
    groups: dict[tuple, dict[str, dict[str, Any]]] = {}
    for rid, cfg, pname in runs:
        key = (pname, cfg.get("dataset"), cfg.get("noise_label"), method_label(cfg))
        groups.setdefault(key, {})[rid] = _flat_hp(cfg.get("hp_resolved") or {})
    out: dict[str, str] = {}
    for (_p, _d, _n, base), members in groups.items():
        sets = {json.dumps(h, sort_keys=True, default=str) for h in members.values()}
        if len(sets) == 1:
            out.update({rid: base for rid in members})
            continue
        keys = sorted({k for h in members.values() for k in h})
        differ = [k for k in keys if len({json.dumps(h.get(k), default=str) for h in members.values()}) > 1]
        names = {}
        for rid, h in members.items():
            names[rid] = f"{base} ({', '.join(f'{k}={_short(h.get(k))}' for k in differ)})"
        # two settings that print alike (0.59 vs 0.5900001) still get two labels
        by_label: dict[str, set[str]] = {}
        for rid, label in names.items():
            by_label.setdefault(label, set()).add(json.dumps(members[rid], sort_keys=True, default=str))
        for rid, label in names.items():
            if len(by_label[label]) > 1:
                tag = hashlib.sha256(json.dumps(members[rid], sort_keys=True, default=str).encode()).hexdigest()[:6]
                label = f"{label[:-1]}, hp#{tag})"
            out[rid] = label
    return out


def _flat_hp(hp: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Resolved hyperparameters as flat names: a masked method's {"base": {...}, "mask": {...}}
    becomes q=..., mask.sparsity=...."""
    out: dict[str, Any] = {}
    for k, v in hp.items():
        name = "" if (not prefix and k == "base") else f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_hp(v, f"{name}." if name else ""))
        else:
            out[name] = v
    return out


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


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
        keys = [k for k in numerics if k not in runtime.MACHINE_KEYS]
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
        for name in ("checkpoint.pt", "checkpoint.prev.pt"):
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
        for name in ("checkpoint.pt", "checkpoint.prev.pt"):
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
        return (d / "checkpoint.pt").is_file() or (d / "checkpoint.prev.pt").is_file()

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

    def load_frame(self, finished: list[tuple[str, dict, dict, dict]] | None = None) -> pd.DataFrame:
        """Every finished run as one long DataFrame.

        Columns: run_id, method, dataset, model, noise, rate, noise_label, seed, protocol, epoch
        (nullable Int64; <NA> on final-result rows), metric, value. Accuracies are fractions.
        finished: the list(finished_runs()) a caller already read, so files are read once.
        """
        rows: list[dict[str, Any]] = []
        finished = list(self.finished_runs()) if finished is None else finished
        # a protocol name shared by runs of different protocols (e.g. a preset run with another
        # --set epochs) gets its protocol id appended, so tables never mix them
        ids_per_name: dict[str, set] = {}
        for _rid, cfg, _res, _meta in finished:
            p = cfg.get("protocol", {})
            ids_per_name.setdefault(p.get("name", ""), set()).add(p.get("id", ""))
        def pname_of(cfg: dict) -> str:
            proto = cfg.get("protocol", {})
            pname = proto.get("name", "")
            return f"{pname}-{proto.get('id', '')}" if len(ids_per_name[pname]) > 1 else pname

        labels = hp_labels([(rid, cfg, pname_of(cfg)) for rid, cfg, _res, _meta in finished])
        for rid, cfg, res, _meta in finished:
            pname = pname_of(cfg)
            noise = cfg["noise"]
            rate = float(noise["rate"]) if noise["kind"] not in ("human", "twin") else math.nan
            key = {"run_id": rid, "method": labels[rid], "dataset": cfg["dataset"],
                   "model": cfg["model"], "noise": noise["kind"], "rate": rate,
                   "noise_label": cfg.get("noise_label", noise["kind"]), "seed": cfg["seed"],
                   "protocol": pname}
            for m in self.read_metrics(rid):
                ep = int(m.pop("epoch"))
                rows += [{**key, "epoch": ep, "metric": k, "value": v} for k, v in m.items()]
            for k, v in res.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    rows.append({**key, "epoch": pd.NA, "metric": k, "value": float(v)})
                elif v is None and k in FINAL_METRICS:
                    rows.append({**key, "epoch": pd.NA, "metric": k, "value": math.nan})
        cols = ["run_id", "method", "dataset", "model", "noise", "rate", "noise_label", "seed",
                "protocol", "epoch", "metric", "value"]
        df = pd.DataFrame(rows, columns=cols)
        df["epoch"] = df["epoch"].astype("Int64")
        df["value"] = df["value"].astype(float)
        return df
