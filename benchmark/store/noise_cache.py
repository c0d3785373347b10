"""Noise artifacts for runs: built once per (dataset, spec, seed), cached in the store's ``_noise/``
folder, or imported from a file.

Noise is drawn on the dataset's *whole* training set (before subset and split), so a realisation is
shared by every method, subset and split of the same seed, and CIFAR-N indices line up.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from benchmark.config import RunConfig
from benchmark.data import DatasetArrays
from benchmark.errors import UsageError
from benchmark.store.layout import NOISE_DIR
from noise import (NoiseArtifact, NoiseArtifactError, NoiseSpec, NoiseSpecError, build_artifact,
                   load_artifact, save_artifact, validate_spec, verify_artifact)


def spec_of(cfg: RunConfig) -> NoiseSpec:
    n = cfg.noise
    return NoiseSpec(kind=n.kind, rate=float(n.rate), mode=n.mode, human_set=n.human_set,
                     allow_unlearnable=bool(n.allow_unlearnable))


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def cache_key(dataset: str) -> str:
    """The folder name of ``dataset``'s artifacts under ``_noise/``: one path component, never a
    separator or '..'. A registered name is its own key (the stores made so far keep their
    artifacts); any other name (list:FILE, folder:PATH, a crafted config.json) is reduced to
    letters, digits and '_' and made unique by a hash of the whole name. Built from the raw
    name, ``list:../../x/list.txt`` put the artifact outside the store."""
    if _PLAIN.fullmatch(dataset):
        return dataset
    slug = re.sub(r"[^A-Za-z0-9]+", "_", dataset).strip("_")[-40:].lstrip("_")
    digest = hashlib.sha256(dataset.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{slug or 'dataset'}-{digest}"


def cache_path(root: Path, dataset: str, spec: NoiseSpec, seed: int) -> Path:
    # every field that changes the labels is in the name: a cache that ignores the seed (or the
    # mode) would silently share one realisation between settings
    name = f"{spec.kind}-r{spec.rate:g}-{spec.mode}-{spec.human_set or 'na'}-seed{seed}.npz"
    return Path(root) / NOISE_DIR / cache_key(dataset) / name


def check_spec(cfg: RunConfig, data: DatasetArrays) -> NoiseSpec:
    """The run's NoiseSpec, validated against the dataset; a bad spec is a UsageError."""
    spec = spec_of(cfg)
    try:
        validate_spec(spec, dataset=cfg.dataset, num_classes=data.num_classes,
                      human_sets=tuple(data.human_labels or ()))
    except NoiseSpecError as e:
        raise UsageError(str(e)) from None
    return spec


def _features(data: DatasetArrays) -> np.ndarray:
    """Raw 0-255 pixels, flattened, as the official IDN code feeds them (see noise/idn.py)."""
    return data.train_x.reshape(len(data.train_y), -1).numpy().astype(np.float32)


def import_noise_file(cfg: RunConfig, data: DatasetArrays) -> NoiseArtifact:
    """Load ``cfg.noise.file`` and verify every claim it makes against ``data`` (noise/verify.py).

    A file that cannot be read, belongs to other data, or whose claims disagree with its labels
    is a UsageError saying which claim and by how much.
    """
    where = cfg.noise.file
    path = Path(where).expanduser()
    if path.is_dir():
        raise UsageError(f"--noise-file {where}: is a directory; give an exported .npz file")
    if not path.is_file():
        raise UsageError(f"--noise-file {where}: no such file")
    try:
        art = load_artifact(path, expect_dataset=cfg.dataset, expect_num=len(data.train_y))
    except (OSError, ValueError) as e:
        raise UsageError(f"--noise-file {where}: {e}") from None
    features = _features(data) if art.spec.kind == "idn" else None
    try:
        art.verification = verify_artifact(art, data.train_y, data.num_classes, source=str(where),
                                           human=data.human_labels, features=features)
    except NoiseArtifactError as e:
        raise UsageError(str(e)) from None
    return art


def noise_for(cfg: RunConfig, data: DatasetArrays, seed: int, runs_root: Path) -> NoiseArtifact:
    """The run's noise artifact: imported (cfg.noise.file, verified), cached, or built and cached."""
    n = len(data.train_y)
    if cfg.noise.file:
        art = import_noise_file(cfg, data)
        # the artifact defines the noise: the config records what it holds
        cfg.noise.kind, cfg.noise.rate = art.spec.kind, float(art.spec.rate)
        cfg.noise.mode, cfg.noise.human_set = art.spec.mode, art.spec.human_set
        return art
    spec = check_spec(cfg, data)
    path = cache_path(runs_root, cfg.dataset, spec, seed)
    with cache_lock(path):
        if path.is_file():
            try:
                art = load_artifact(path, expect_dataset=cfg.dataset, expect_num=n)
                if art.spec == spec and art.seed == seed:
                    verify_artifact(art, data.train_y, data.num_classes, source=str(path),
                                    human=data.human_labels, regenerate=False)
                    return art
            except ValueError:
                pass
            path.unlink()  # a corrupted or foreign cache entry: rebuild it (a pure function)
        features = _features(data) if spec.kind == "idn" else None
        try:
            art = build_artifact(spec, data.train_y, dataset=cfg.dataset, num_classes=data.num_classes,
                                 seed=seed, features=features, human=data.human_labels)
        except NoiseSpecError as e:
            raise UsageError(str(e)) from None
        save_artifact(art, path)
    return art


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """One builder per cache entry at a time (workers share the cache); temporary files of a
    builder that died are removed once the lock is held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            for tmp in path.parent.glob(f"{path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
