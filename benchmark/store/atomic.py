"""Atomic files: how every file of the store is written and read.

Every file is written atomically (temporary file in the same directory, then os.replace), so a
crash leaves either the old or the new file, never half of one. JSON is strict (NaN and inf
become null), so any tool reads it. ``NLB_KILL_AT`` (tests only) kills the process between
writing a temporary file and renaming it.
"""
from __future__ import annotations

import json
import math
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import settings

__all__ = ["atomic_write_bytes", "atomic_write_json", "json_safe", "read_json"]

_WRITES: dict[str, int] = {}


def _maybe_die(path: Path) -> None:
    """Fault injection for tests/benchmark/store/test_faults.py: ``NLB_KILL_AT=checkpoint:3``
    SIGKILLs this process in the middle of its 3rd checkpoint write (temporary file written, not
    yet renamed). Kinds: the file's stem (checkpoint, metrics, result, meta, config) or ``any``.
    Unset in normal use."""
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
    """Write ``data`` to ``path`` through a temporary file in the same folder (fsync, then
    os.replace): a crash leaves the old file or the new one, never half of one."""
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


def json_safe(obj: Any) -> Any:
    """NaN/inf become null and numpy scalars plain numbers: strict JSON, readable by any tool.

    reports/site.py has its own copy (``_json_safe``; reports/ imports nothing of benchmark/),
    which also turns tuples into lists, keys into strings and other objects into text. The two
    agree on everything a run record holds: tests/benchmark/store/test_atomic.py checks them
    together, so a change to one that the other does not follow fails there.
    """
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
