"""Preparing a run: every check that needs no training, the data, the noise, the split and the
run's identity (its run id, protocol and numerical setting).

``validate(cfg)`` checks what needs no data (a grid runs it on every cell before reading any);
``prepare(cfg, store)`` then loads the dataset, builds or loads the noise artifact on the whole
training set, splits a seeded subset into train and noisy validation, resolves the method's
hyperparameters and computes the run id.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from benchmark.config import (AUGMENTS, HARNESS_REVISION, OPTIM_NEW_DEFAULTS, RunConfig, check_config,
                              run_revisions)
from benchmark.data import DatasetArrays, list_datasets, load_dataset, prefix_forms, prefixes
from benchmark.data.augment import Augmenter
from benchmark.data.files import FileReader, decode_mode
from benchmark.errors import UsageError
from benchmark.models import build_model, list_models
from benchmark.store import Store, noise_for
from benchmark.training import runtime
from methods import list_methods, resolve_hp
from methods.params import ConfigError
from noise import NoiseArtifact

__all__ = ["HARNESS_REVISION", "Prepared", "prepare", "validate", "check_names", "check_model_fits",
           "resolve_device", "split_indices", "protocol_of", "resolve_augment", "make_augmenter",
           "run_revisions"]



@dataclass
class Prepared:
    """A resolved run: config, ids and the data it trains on (clean labels included: runner only)."""

    cfg: RunConfig
    run_id: str
    data: DatasetArrays
    artifact: NoiseArtifact
    train_idx: np.ndarray
    """(N_train,) indices into the dataset's training set."""
    val_idx: np.ndarray
    """(N_val,) indices of the noisy validation split."""
    hp: Any
    protocol: dict[str, Any]
    device: torch.device
    numerics: dict[str, Any]
    """The numerical setting the run is computed under (benchmark/training/runtime.py)."""


def split_indices(n: int, subset: int, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded subset and train / noisy-validation split of range(n); both returned sorted.

    Returns (train (n_train,), val (n_val,)) int64 with n_val = round(val_frac * m), m = subset or n.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if subset:
        perm = perm[:subset]
    n_val = int(round(val_frac * len(perm)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def protocol_of(cfg: RunConfig, augment: str) -> dict[str, Any]:
    """The fields that define a protocol: rows of a table are compared only within one."""
    o = cfg.optim
    proto = {"dataset": cfg.dataset, "model": cfg.model, "epochs": cfg.epochs, "optimizer": o.name,
             "lr": o.lr, "momentum": o.momentum, "weight_decay": o.weight_decay,
             "schedule": o.schedule, "milestones": list(o.milestones), "decay_start": o.decay_start,
             "batch_size": cfg.batch_size, "val_frac": cfg.val_frac, "subset": cfg.subset,
             "test_subset": cfg.test_subset,
             "augment": augment}
    if cfg.precision != "fp32":  # left out at fp32 so that earlier protocols keep their ids
        proto["precision"] = cfg.precision
    if cfg.test_every != 1:  # likewise: the test set scored every epoch is the default
        proto["test_every"] = cfg.test_every
    for k, default in OPTIM_NEW_DEFAULTS.items():  # likewise, at their defaults
        if getattr(o, k) != default:
            proto[k] = getattr(o, k)
    if o.schedule == "step" and o.gamma != 0.1:  # likewise: x0.1 at each milestone is the default
        proto["gamma"] = o.gamma
    pid = hashlib.sha256(json.dumps(proto, sort_keys=True).encode()).hexdigest()[:8]
    proto["id"] = pid
    proto["name"] = cfg.protocol_name or f"{cfg.dataset}-{cfg.model}"
    proto["selection"] = "test accuracy at the epoch of best noisy-validation accuracy"
    return proto


def resolve_augment(cfg: RunConfig, data: DatasetArrays) -> str:
    if cfg.augment not in AUGMENTS:
        raise UsageError(f"unknown augment '{cfg.augment}'. Valid: {', '.join(AUGMENTS)}")
    if cfg.augment != "auto":
        return cfg.augment
    parts = (["crop"] if data.crop_pad else []) + (["flip"] if data.hflip else [])
    return "+".join(parts) or "none"


def make_augmenter(aug: str, data: DatasetArrays, channels_last: bool = False) -> Augmenter:
    rotate = float(aug.split("rotate")[1]) if "rotate" in aug else 0.0
    if data.crop_size:  # stored larger than the network's input: a random window, not padding
        return Augmenter(data.mean, data.std, crop_size=data.crop_size, random_window="crop" in aug,
                         hflip="flip" in aug, channels_last=channels_last, rotate=rotate)
    pad = data.crop_pad or max(2, data.image_shape[-1] // 8)
    return Augmenter(data.mean, data.std, crop_pad=pad if "crop" in aug else 0, hflip="flip" in aug,
                     channels_last=channels_last, rotate=rotate)


def prepare(cfg: RunConfig, store: Store) -> Prepared:
    """Validate everything and build the noise artifact; no training. Raises UsageError early.

    Every field of the config and every hyperparameter of the method is checked against its
    declared range here, so a grid refuses a bad cell before its first run trains.
    """
    dev, hp = validate(cfg)
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir or None)
    check_model_fits(cfg.model, data)
    if data.verified is not None and cfg.noise.kind != "none":
        raise UsageError(f"dataset {cfg.dataset} carries real noisy labels: run it with noise kind none "
                         f"(synthetic noise on top would be judged against the verification of the "
                         f"original labels), got '{cfg.noise.kind}'")
    streams = cfg.streams()
    artifact = noise_for(cfg, data, streams["noise"], store.root)
    if cfg.subset > len(data.train_y):
        raise UsageError(f"subset {cfg.subset} exceeds the {len(data.train_y)} training samples")
    train_idx, val_idx = split_indices(len(data.train_y), cfg.subset, cfg.val_frac, streams["split"])
    if len(train_idx) < 2:
        raise UsageError("fewer than 2 training samples after the split")
    revisions = run_revisions(cfg.method)
    run_id = cfg.run_id(artifact.sha256, asdict(hp), revisions)
    numerics = runtime.numerics(cfg.threads, cfg.precision, dev)
    if (data.streamed and isinstance(data.train_x.reader, FileReader)
            and decode_mode(dev) != "pil"):  # nvJPEG's pixels are not Pillow's (a pack is not decoded)
        numerics["decode"] = decode_mode(dev)
    return Prepared(cfg, run_id, data, artifact, train_idx, val_idx, hp,
                    protocol_of(cfg, resolve_augment(cfg, data)), dev, numerics)


_FITS: dict[tuple, None] = {}


def check_model_fits(model: str, data: DatasetArrays) -> None:
    """Build the backbone once on the meta device (no memory, no compute) for this dataset's
    image shape: a model that cannot take the images (cnn9 on 8x8 digits, a 3-channel ResNet on
    grey images) is a usage error here, before a noise artifact or a run folder is written. A
    pretrained backbone also reads and verifies its weights here, so missing weights stop a grid
    before its first run."""
    c, h, _w = data.input_shape
    key = (model, c, h, data.num_classes)
    if key in _FITS:
        return
    try:
        with torch.device("meta"):
            build_model(model, num_classes=data.num_classes, in_channels=c, image_size=h)
    except ValueError as e:
        raise UsageError(f"model '{model}' cannot take {data.name}'s {c}x{h}x{_w} images: {e}") from None
    _FITS[key] = None


def validate(cfg: RunConfig) -> tuple[torch.device, Any]:
    """Every check that needs no data: field ranges, names, device, the method's hyperparameters.

    Returns (device, resolved hyperparameters). A grid runs this on every cell before it loads
    any data or writes any noise artifact, so a bad cell leaves nothing behind.
    """
    check_config(cfg)
    check_names(cfg)
    dev = resolve_device(cfg.device)
    try:
        hp = resolve_hp(cfg.method, cfg.hp, cfg.mask)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    mask = getattr(hp, "mask", None)
    if cfg.classifier == "kan" and mask is not None and mask.score == "magnitude":
        raise UsageError("mask.score = magnitude needs a linear classifier (a KAN edge is a function, "
                         "not one weight). Valid with classifier = kan: obd, actstd, random")
    return dev, hp


def check_names(cfg: RunConfig) -> None:
    """Unknown dataset/model/method names are usage errors that list the valid ones."""
    for what, value, valid in (("dataset", cfg.dataset, list_datasets()),
                               ("model", cfg.model, list_models()),
                               ("method", cfg.method, list_methods())):
        if what == "dataset" and value.startswith(prefixes()):
            continue  # a path: checked when the data are read (DatasetNotFound, exit code 2)
        if value not in valid:
            extra = "".join(f", {form}" for form in prefix_forms()) if what == "dataset" else ""
            raise UsageError(f"unknown {what} '{value}'. Valid: {', '.join(valid)}{extra}")


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``device`` setting (auto: cuda when available); UsageError if unusable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device '{name}'. Valid: auto, cpu, cuda, cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("device cuda requested but no CUDA device is available")
    return dev
