"""Noise artifacts for runs: built once per (dataset, spec, seed), cached, or imported from a file.

Noise is drawn on the dataset's *whole* training set (before subset and split), so a realisation is
shared by every method, subset and split of the same seed, and CIFAR-N indices line up.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.config import RunConfig, UsageError
from benchmark.data import DatasetArrays
from noise import NoiseArtifact, NoiseSpec, NoiseSpecError, build_artifact, load_artifact, save_artifact, validate_spec


def spec_of(cfg: RunConfig) -> NoiseSpec:
    n = cfg.noise
    return NoiseSpec(kind=n.kind, rate=float(n.rate), mode=n.mode, human_set=n.human_set,
                     allow_unlearnable=bool(n.allow_unlearnable))


def cache_path(root: Path, dataset: str, spec: NoiseSpec, seed: int) -> Path:
    # every field that changes the labels is in the name: a cache that ignores the seed (or the
    # mode) would silently share one realisation between settings
    name = f"{spec.kind}-r{spec.rate:g}-{spec.mode}-{spec.human_set or 'na'}-seed{seed}.npz"
    return Path(root) / "_noise" / dataset / name


def check_spec(cfg: RunConfig, data: DatasetArrays) -> NoiseSpec:
    """The run's NoiseSpec, validated against the dataset; a bad spec is a UsageError."""
    spec = spec_of(cfg)
    try:
        validate_spec(spec, dataset=cfg.dataset, num_classes=data.num_classes,
                      human_sets=tuple(data.human_labels or ()))
    except NoiseSpecError as e:
        raise UsageError(str(e)) from None
    return spec


def noise_for(cfg: RunConfig, data: DatasetArrays, seed: int, runs_root: Path) -> NoiseArtifact:
    """The run's noise artifact: imported (cfg.noise.file), cached, or built and cached."""
    n = len(data.train_y)
    if cfg.noise.file:
        try:
            art = load_artifact(cfg.noise.file, expect_dataset=cfg.dataset, expect_num=n)
        except (OSError, ValueError) as e:
            raise UsageError(f"--noise-file {cfg.noise.file}: {e}") from None
        # the artifact defines the noise: the config records what it holds
        cfg.noise.kind, cfg.noise.rate = art.spec.kind, float(art.spec.rate)
        cfg.noise.mode, cfg.noise.human_set = art.spec.mode, art.spec.human_set
        return art
    spec = check_spec(cfg, data)
    path = cache_path(runs_root, cfg.dataset, spec, seed)
    if path.is_file():
        try:
            return load_artifact(path, expect_dataset=cfg.dataset, expect_num=n)
        except ValueError:
            path.unlink()  # corrupted cache entry: rebuild it (the labels are a pure function)
    features = None
    if spec.kind == "idn":
        # raw 0-255 pixels, as the official IDN code feeds them (see noise/idn.py)
        features = data.train_x.reshape(n, -1).numpy().astype(np.float32)
    try:
        art = build_artifact(spec, data.train_y, dataset=cfg.dataset, num_classes=data.num_classes,
                             seed=seed, features=features, human=data.human_labels)
    except NoiseSpecError as e:
        raise UsageError(str(e)) from None
    save_artifact(art, path)
    return art
