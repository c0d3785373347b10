"""Weights & Biases mirror of the run store. The store is the source of truth; W&B is a copy.

Mode: ``--wandb offline|online|disabled``; without the flag, the WANDB_MODE environment variable,
else offline (no account, no network). One W&B run per benchmark run: group = the cell (the
config without the seed), job_type = the method, tags = dataset, noise, method; metrics are logged
once per epoch with the store's names, step = epoch; the summary holds the final figures.

A W&B failure is a warning, never a lost run: every call is guarded and a failing tracker turns
itself off. No secret reaches W&B: config values are scrubbed (see ``scrub``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from benchmark.errors import UsageError

MODES = ("offline", "online", "disabled")
PROJECT = os.environ.get("WANDB_PROJECT", "noisy-label-bench")
_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|credential)", re.I)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I)


def resolve_mode(flag: str | None) -> str:
    """--wandb flag, else WANDB_MODE, else offline. WANDB_MODE=dryrun counts as offline."""
    mode = flag or os.environ.get("WANDB_MODE", "offline")
    mode = {"dryrun": "offline", "run": "online", "disable": "disabled"}.get(mode, mode)
    if mode not in MODES:
        raise UsageError(f"unknown W&B mode '{mode}'. Valid: {', '.join(MODES)}")
    return mode


def scrub(obj: Any) -> Any:
    """Remove secrets: values under secret-looking keys, and passwords inside URLs."""
    if isinstance(obj, dict):
        return {k: ("<redacted>" if _SECRET_KEY.search(str(k)) else scrub(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    if isinstance(obj, str):
        return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:<redacted>@", obj)
    return obj


def scrub_argv() -> None:
    """Replace credentials in ``sys.argv`` (W&B records the program's arguments in every run's
    metadata; a password given in ``--storage`` must not end up there)."""
    sys.argv[:] = [scrub(a) for a in sys.argv]


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def cell_id(config: dict[str, Any]) -> str:
    """The W&B group: a hash of the resolved config without the seed and bookkeeping fields."""
    drop = {"seed", "streams", "run_id", "device", "data_dir", "eval_batch_size", "noise_artifact"}
    ident = {k: v for k, v in config.items() if k not in drop}
    blob = json.dumps(ident, sort_keys=True, default=str)
    label = f"{config.get('method')}|{config.get('dataset')}|{config.get('noise_label')}"
    return f"{label}|{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


class Tracker:
    """One W&B run mirroring one benchmark run. Every method is a no-op once disabled."""

    def __init__(self, mode: str, root: Path):
        self.mode, self.root, self.run = mode, Path(root), None

    def _guard(self, what: str, fn, *args, **kwargs):
        if self.run is None and what != "init":
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 — W&B must never take a run down with it
            warnings.warn(f"W&B {what} failed ({type(e).__name__}: {e}); the local store is unaffected "
                          f"and W&B logging is off for this run", RuntimeWarning, stacklevel=2)
            self.run = None
            return None

    def start(self, config: dict[str, Any], run_id: str, run_dir: Path | None = None) -> None:
        """Open the W&B run of ``run_id``. With ``run_dir`` (the store's run directory), the
        offline W&B runs of earlier attempts at this run (killed, stopped or resumed) are removed
        first: the new W&B run logs every epoch again, and ``wandb sync`` must not upload a
        truncated copy. The offline directory used is recorded in ``run_dir/wandb.json``."""
        if self.mode == "disabled":
            return
        record = Path(run_dir) / "wandb.json" if run_dir is not None else None
        if record is not None and self.mode == "offline":
            self._drop_earlier(record)

        def init():
            import wandb
            self.root.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(
                project=PROJECT, dir=str(self.root), mode=self.mode, name=run_id,
                group=cell_id(config), job_type=config["method"],
                tags=[config["dataset"], config.get("noise_label", ""), config["method"]],
                config=scrub(config), reinit="finish_previous", settings=wandb.Settings(silent=True,
                                                                                       console="off"))
        self._guard("init", init)
        if self.run is not None and record is not None and self.mode == "offline":
            offline = Path(self.run.dir).parent
            self._guard("record", lambda: _atomic_text(record, json.dumps({"offline_dir": str(offline)})))

    def _drop_earlier(self, record: Path) -> None:
        try:
            earlier = Path(json.loads(record.read_text())["offline_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        wandb_root = (self.root / "wandb").resolve()
        # only a directory this tracker made: an offline run directly under <root>/wandb
        if (earlier.is_dir() and earlier.resolve().parent == wandb_root
                and earlier.name.startswith("offline-run-")):
            shutil.rmtree(earlier, ignore_errors=True)
        record.unlink(missing_ok=True)

    def log_epoch(self, row: dict[str, float]) -> None:
        step = int(row["epoch"])
        self._guard("log", lambda: self.run.log(dict(row), step=step))

    def finish(self, result: dict[str, Any], exit_code: int = 0) -> None:
        def fin():
            finals = {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool)) or v is None}
            self.run.summary.update(finals)
            self.run.finish(exit_code=exit_code)
        self._guard("finish", fin)
        self.run = None


def offline_run_dirs(root: Path) -> list[Path]:
    """The offline W&B run directories under a runs root, oldest first (for tests and `wandb sync`)."""
    return sorted((Path(root) / "wandb").glob("offline-run-*"), key=lambda p: p.stat().st_mtime_ns)
