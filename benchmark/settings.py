"""Every ``NLB_*`` environment variable the suite reads, documented and read in this one place.

Each variable is a :class:`Setting` in :data:`SETTINGS` (name, default, what it does); the
functions below read them, always at call time (a change of the environment after import is
seen, as it is by a child process). The README's environment table is generated from
:data:`SETTINGS` (``python -m benchmark.settings`` prints it; tests/benchmark/test_settings.py
checks that the README holds exactly that table), and a test checks that no other module of the
repository names an ``NLB_`` variable this module does not document.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import UsageError

__all__ = ["Setting", "SETTINGS", "DATA_DIR", "CACHE_DIR", "CIFAR_N_DIR", "ALLOW_UNVERIFIED",
           "MEMORY_BUDGET", "DECODE", "OFFLINE", "HEARTBEAT_S", "GRACE_S", "CHILD", "KILL_AT",
           "SHARED_DIR", "data_dir", "cache_dir", "cifar_n_dir", "allow_unverified",
           "memory_budget", "decode", "offline", "heartbeat_s", "grace_s", "is_child", "kill_at",
           "shared_dir", "data_memo_key", "markdown_table"]


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, its default (as the table shows it) and its effect."""

    name: str
    default: str
    doc: str
    audience: str = "user"
    """user (README table), internal (set by the suite for its own processes) or tests."""


DATA_DIR = "NLB_DATA_DIR"
CACHE_DIR = "NLB_CACHE_DIR"
CIFAR_N_DIR = "NLB_CIFAR_N_DIR"
ALLOW_UNVERIFIED = "NLB_ALLOW_UNVERIFIED_DATA"
MEMORY_BUDGET = "NLB_MEMORY_BUDGET_GB"
DECODE = "NLB_DECODE"
OFFLINE = "NLB_OFFLINE"
HEARTBEAT_S = "NLB_HEARTBEAT_S"
GRACE_S = "NLB_GRACE_S"
CHILD = "NLB_CHILD"
KILL_AT = "NLB_KILL_AT"
SHARED_DIR = "NLB_SHARED_DIR"

SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting(DATA_DIR, "unset",
            "Where datasets are looked for when `--data-dir` is not given (before the system "
            "folders and the cache dir)."),
    Setting(CACHE_DIR, "`~/.cache/noisy-label-bench`",
            "Where downloads, packs (`packs/`) and pack verification stamps go."),
    Setting(CIFAR_N_DIR, "unset",
            "A folder holding the CIFAR-N label files (looked in before `DATA_DIR/cifar-n` and "
            "the cache dir)."),
    Setting(ALLOW_UNVERIFIED, "unset",
            "`1` loads data whose checksums or counts are not the official ones (test copies, "
            "subsets); a CIFAR copy loaded so is marked unverified in the run's `meta.json`."),
    Setting(MEMORY_BUDGET, "a quarter of the machine's memory",
            "Decoded image datasets up to this many GB are held in memory; larger ones are "
            "streamed from their files or pack."),
    Setting(DECODE, "`cpu`",
            "`gpu` decodes streamed JPEGs with nvJPEG on a CUDA device (recorded in the run's "
            "numerics: its pixels differ slightly from Pillow's)."),
    Setting(OFFLINE, "unset",
            "`1` never downloads pretrained weights (the error says how to pre-fetch them)."),
    Setting(HEARTBEAT_S, "`10`",
            "Seconds between a study worker's heartbeats."),
    Setting(GRACE_S, "`60`",
            "Seconds without a heartbeat after which a worker's trial is re-queued."),
    Setting(CHILD, "unset",
            "Set by `runner.py` on the local worker processes it starts, so that an interruption "
            "is reported once, by the parent.", "internal"),
    Setting(KILL_AT, "unset",
            "Fault injection for the tests: `checkpoint:3` kills the process in the middle of its "
            "third checkpoint write (kinds: a run file's stem, or `any`).", "tests"),
    Setting(SHARED_DIR, "`<repo>/../shared`",
            "Where the tests find the shared CIFAR-N label files (`data/cifar-n`).", "tests"),
)}
"""Every NLB_* variable, in the order the README's table lists them."""


def _get(name: str) -> str | None:
    if name not in SETTINGS:  # a typo here would read a variable nobody documents
        raise KeyError(f"{name} is not a documented setting of benchmark/settings.py")
    return os.environ.get(name)


def data_dir() -> str | None:
    """NLB_DATA_DIR, or None when unset or empty."""
    return _get(DATA_DIR) or None


def cache_dir() -> Path:
    """Env NLB_CACHE_DIR, default ~/.cache/noisy-label-bench (not created here)."""
    return Path(_get(CACHE_DIR) or Path.home() / ".cache" / "noisy-label-bench").expanduser()


def cifar_n_dir() -> str | None:
    """NLB_CIFAR_N_DIR, or None when unset or empty."""
    return _get(CIFAR_N_DIR) or None


def allow_unverified() -> bool:
    """Whether NLB_ALLOW_UNVERIFIED_DATA=1: data that fails its checksums or official counts may
    load (marked unverified)."""
    return _get(ALLOW_UNVERIFIED) == "1"


def memory_budget() -> int:
    """Bytes a decoded dataset may take in memory: env NLB_MEMORY_BUDGET_GB, else 1/4 of RAM.
    A value that is not a number is a UsageError."""
    env = _get(MEMORY_BUDGET)
    if env:
        try:
            gb = float(env)
        except ValueError:
            raise UsageError(f"{MEMORY_BUDGET}={env!r} is not a number of GB") from None
        return int(max(gb, 0.0) * 1e9)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 4 * 10**9


def decode() -> str:
    """NLB_DECODE: ``cpu`` (default) or ``gpu``; anything else is a UsageError."""
    value = _get(DECODE)
    want = ("cpu" if value is None else value).lower()
    if want not in ("cpu", "gpu"):
        raise UsageError(f"{DECODE}={want!r}: valid values are cpu, gpu")
    return want


def offline() -> bool:
    """Whether NLB_OFFLINE=1: pretrained weights are never downloaded."""
    return _get(OFFLINE) == "1"


def heartbeat_s() -> int:
    """NLB_HEARTBEAT_S, default 10."""
    value = _get(HEARTBEAT_S)
    return int("10" if value is None else value)


def grace_s() -> int:
    """NLB_GRACE_S, default 60."""
    value = _get(GRACE_S)
    return int("60" if value is None else value)


def is_child() -> bool:
    """Whether this process is a local worker started by runner.py (NLB_CHILD set, non-empty)."""
    return bool(_get(CHILD))


def kill_at() -> str:
    """NLB_KILL_AT (``kind:n``), '' when unset: the store's fault hook for the tests."""
    return _get(KILL_AT) or ""


def shared_dir() -> str | None:
    """NLB_SHARED_DIR (tests only), or None when unset or empty."""
    return _get(SHARED_DIR) or None


def data_memo_key() -> tuple[str | None, ...]:
    """The environment a loaded dataset depends on (its memo key includes it)."""
    return tuple(_get(k) for k in (DATA_DIR, CACHE_DIR, CIFAR_N_DIR, MEMORY_BUDGET))


def markdown_table() -> str:
    """The README's environment table: every user setting, its default and its effect."""
    lines = ["| variable | default | effect |", "|---|---|---|"]
    lines += [f"| `{s.name}` | {s.default} | {s.doc} |" for s in SETTINGS.values() if s.audience == "user"]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m benchmark.settings: the README's table
    print(markdown_table())
