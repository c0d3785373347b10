"""The numerical setting of a run, and the resources it used (per run, not per process).

Numerics. Float results depend on more than the config: the CPU thread count (reductions are
split differently), cuDNN's algorithm choice, TF32 matmuls. The suite fixes what it can and pins
the rest per run, so that everything sharing a run id computes the same numbers on the same
hardware and software:

- the intra-op thread count is the run config's ``threads`` (part of the run id), set with
  ``torch.set_num_threads`` for the run and restored afterwards;
- deterministic algorithms on (``torch.use_deterministic_algorithms(True, warn_only=True)``;
  cuBLAS gets the workspace setting it needs), cuDNN benchmark off, TF32 off: fixed, not options.

``numerics(cfg, dev)`` is the record of that setting, stored in config.json, meta.json and every
checkpoint, together with the machine's kernel set (CPU capability, model and ISA extensions;
the GPU's name on a GPU): the same run id gives the same numbers bit for bit on the same kernel
set, and may differ in the last digits on another. A checkpoint written under another setting
(another device type, thread count, torch version or kernel set) is not resumed: a run mixing
two settings would match neither.

Resources. ``ResourceMeter`` measures one run in one process: wall time, and peak memory (CUDA:
the device's peak allocation; CPU: the peak resident set size, VmHWM, reset at the run's start
through /proc/self/clear_refs, so in a sequential grid each run reports its own peak rather than
the process's lifetime maximum). A resumed run adds the wall time and takes the maximum peak of
every process that worked on it (the figures travel in the checkpoint).
"""
from __future__ import annotations

import contextlib
import os
import re
import resource
import time
from typing import Any, Iterator

import torch

from benchmark.config import RunConfig
# whether two numerics records name the same machine: one definition, with the store's layout
# (MACHINE_KEYS), which merge reads too; runtime.same_machine is the name loop.py calls
from benchmark.store.layout import same_machine  # noqa: F401

# cuBLAS needs this before its first use to be deterministic (documented by PyTorch's
# reproducibility notes); setdefault leaves a user's own choice alone
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

FIXED = {"deterministic_algorithms": True, "cudnn_benchmark": False, "tf32": False}
"""The settings the suite fixes for every run (recorded with each run)."""



_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
              "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def cpu_record() -> dict[str, Any]:
    """The CPU kernels torch dispatches to: its CPU capability (ATen's vectorised kernels), the
    CPU model, the ISA extensions oneDNN chooses its kernels from (it takes the best the CPU
    has, unless ONEDNN_MAX_CPU_ISA caps it; recorded too). Two machines with the same record run
    the same kernels; the same run id then gives the same numbers bit for bit."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model name") and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    if not model:
        import platform
        model = platform.processor() or platform.machine()
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    return {"capability": str(torch.backends.cpu.get_cpu_capability()), "model": model,
            "isa": [f for f in _ISA_FLAGS if f in flags], "onednn_max_isa": isa_cap}


def numerics(threads: int, precision: str, dev: torch.device) -> dict[str, Any]:
    """What decides a run's floating-point results besides its config and data: the settings the
    suite pins, and the machine's kernel set (``cpu``; on a GPU also ``gpu``: its name)."""
    out = {"device_type": dev.type, "threads": int(threads), "precision": precision,
           "torch": str(torch.__version__), **FIXED, "cpu": cpu_record()}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
    return out


@contextlib.contextmanager
def pinned(threads: int) -> Iterator[None]:
    """Apply the fixed numerical settings and ``threads`` for the duration of one run."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
                 torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
         torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) = old_cudnn


def _vm_hwm_mb() -> float | None:
    """Peak resident set size of this process since the last reset, in MiB (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            m = re.search(r"^VmHWM:\s+(\d+)\s+kB", f.read(), re.M)
        return int(m.group(1)) / 1024 if m else None
    except OSError:
        return None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class ResourceMeter:
    """Wall time and peak memory of one run in this process (start it when the run starts)."""

    def __init__(self, dev: torch.device, t0: float | None = None):
        self.dev = dev
        self.t0 = time.time() if t0 is None else t0
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            self.kind = "cuda_max_allocated"
        elif _reset_hwm():
            self.kind = "rss_peak"
        else:  # no per-run reset available: the process's peak so far, labelled as such
            self.kind = "rss_process_lifetime_peak"

    def wall_s(self) -> float:
        """Seconds since this process started working on the run."""
        return time.time() - self.t0

    def peak_mb(self) -> float:
        if self.dev.type == "cuda":
            return torch.cuda.max_memory_allocated(self.dev) / 2**20
        hwm = _vm_hwm_mb() if self.kind == "rss_peak" else None
        if hwm is not None:
            return hwm
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    def totals(self, before: dict[str, Any] | None) -> dict[str, Any]:
        """Figures of the whole run so far: this process's added to ``before`` (a checkpoint's)."""
        b = before or {}
        return {"wall_s": float(b.get("wall_s", 0.0)) + self.wall_s(),
                "peak_mb": max(float(b.get("peak_mb", 0.0)), self.peak_mb()),
                "processes": int(b.get("processes", 0)) + 1, "peak_kind": self.kind}


def autocast(cfg: RunConfig, dev: torch.device):
    """The forward-pass precision context of a run (``cfg.precision``): bf16 autocast, or a no-op
    at fp32.

    Losses are safe under it: the methods cast logits to fp32 before every softmax and
    per-sample loss (see methods/common.py), and optimiser steps run on fp32 weights.
    The weight-cast cache is off: the context spans a whole epoch, and a cached bf16 copy of a
    weight would go stale after the first optimiser step (training would then never move).
    """
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16",
                          cache_enabled=False)
