"""What produced a run: software versions, hardware, git commit (for meta.json and reports)."""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "pandas", "optuna", "wandb", "kornia", "timm",
            "pykan", "cleanlab")
_REPO = Path(__file__).resolve().parents[1]


def git_sha() -> str:
    """The project's commit, with '+dirty' when the work tree has changes; '' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return sha + ("+dirty" if sha and dirty else "")


def versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = ""
    return out


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def describe(dev: torch.device) -> dict:
    return {"git_sha": git_sha(), "versions": versions(), "device": device_name(dev),
            "device_type": dev.type, "python": platform.python_version(),
            "platform": platform.platform()}
