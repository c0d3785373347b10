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
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch

FINAL_METRICS = ("test/acc_last", "test/acc_best", "test/acc_at_best_val", "noise/actual_rate",
                 "time/total_s", "time/samples_per_s", "mem/peak_mb")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    """The method's name, plus the mask settings that differ from the mask's defaults.

    "obd" for the default mask, "obd[sparsity=0.1]" for a sweep point: cells of an ablation stay
    apart in reports instead of being averaged together.
    """
    from dataclasses import asdict

    from methods.mask import MaskConfig
    mask = (cfg.get("hp_resolved") or {}).get("mask")
    if not isinstance(mask, dict):
        return cfg["method"]
    defaults = asdict(MaskConfig())
    diff = [f"{k}={mask[k]}" for k in sorted(mask) if k in defaults and mask[k] != defaults[k]]
    return f"{cfg['method']}[{','.join(diff)}]" if diff else cfg["method"]


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
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.run_dir(run_id) / "checkpoint.pt", buf.getvalue())

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        p = self.run_dir(run_id) / "checkpoint.pt"
        if not p.is_file():
            return None
        # our own file, written by save_checkpoint; it holds optimizer states and RNG tensors
        return torch.load(p, map_location="cpu", weights_only=False)

    def finish(self, run_id: str, result: dict[str, Any], meta: dict[str, Any]) -> None:
        """Write meta then result (result.json marks the run finished), then drop the checkpoint."""
        self.write_json(run_id, "meta.json", meta)
        (self.run_dir(run_id) / "failure.json").unlink(missing_ok=True)
        self.write_json(run_id, "result.json", result)
        (self.run_dir(run_id) / "checkpoint.pt").unlink(missing_ok=True)

    def fail(self, run_id: str, reason: str, epoch: int | None) -> None:
        self.write_json(run_id, "failure.json", {"reason": reason, "epoch": epoch})
        (self.run_dir(run_id) / "checkpoint.pt").unlink(missing_ok=True)

    # ----- reading --------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and (p / "config.json").is_file())

    def status(self, run_id: str) -> str:
        d = self.run_dir(run_id)
        if (d / "result.json").is_file():
            return "finished"
        if (d / "failure.json").is_file():
            return "failed"
        return "incomplete"

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
        for rid, cfg, res, _meta in finished:
            proto = cfg.get("protocol", {})
            pname = proto.get("name", "")
            if len(ids_per_name[pname]) > 1:
                pname = f"{pname}-{proto.get('id', '')}"
            noise = cfg["noise"]
            rate = float(noise["rate"]) if noise["kind"] not in ("human", "twin") else math.nan
            key = {"run_id": rid, "method": method_label(cfg), "dataset": cfg["dataset"],
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
