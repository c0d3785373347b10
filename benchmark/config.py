"""Run configuration: dataclasses, TOML and ``--set`` overrides, seed streams and the config hash.

A run is identified by the SHA-256 of its *resolved* config restricted to the fields that can change
its numbers (``identity()``); paths and the device are recorded but not hashed, so the same run on
another machine or data directory is recognised as the same run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np


class UsageError(ValueError):
    """Bad user input (unknown name, malformed value). The CLI exits with code 2."""


@dataclass
class NoiseConfig:
    kind: str = "sym"
    """Noise kind: none, sym, sym_incl, pairflip, asym, idn, human, twin (see noise/spec.py)."""
    rate: float = 0.4
    """Nominal noise rate r in [0, 1). Ignored (must be 0) for none, human and twin."""
    mode: str = "bernoulli"
    """bernoulli: every label flips independently; exact: exactly round(n_c * T[c, j]) per class."""
    human_set: str = ""
    """For human/twin: the CIFAR-N label set (aggre, rand1, rand2, rand3, worst; noisy for CIFAR-100)."""
    allow_unlearnable: bool = False
    """Allow pairflip/asym/idn rates >= 0.5, where the noisy class becomes the majority."""
    file: str = ""
    """Import this exported noise artifact (.npz) instead of generating noise; its SHA-256 is hashed."""


@dataclass
class OptimConfig:
    name: str = "sgd"
    """sgd or adam."""
    lr: float = 0.02
    """Initial learning rate."""
    momentum: float = 0.9
    """SGD momentum (Adam: beta1)."""
    weight_decay: float = 5e-4
    """L2 weight decay (coupled, as torch.optim.SGD/Adam apply it)."""
    schedule: str = "cosine"
    """none, step (x gamma at each milestone), cosine (to 0 at the last epoch), linear (to 0 from decay_start)."""
    milestones: list[int] = field(default_factory=list)
    """Epochs (1-based) after which the step schedule multiplies the lr by gamma."""
    gamma: float = 0.1
    """Step schedule factor."""
    decay_start: int = 0
    """Linear schedule: the epoch from which the lr decays linearly to 0 at the last epoch."""


@dataclass
class RunConfig:
    dataset: str = "fashion_mnist"
    """Dataset name: fashion_mnist, digits, cifar10, cifar100, synthetic_cifar10 (timing only)."""
    model: str = "cnn"
    """Backbone: mlp, cnn, cnn9, preact_resnet18, resnet34."""
    method: str = "ce"
    """Training method from the registry (ce, gce, ...)."""
    hp: dict[str, Any] = field(default_factory=dict)
    """Method hyperparameters overriding the method's Config defaults (e.g. {"q": 0.7} for gce)."""
    mask: dict[str, Any] = field(default_factory=dict)
    """Edge-mask settings for obd and X+obd methods (e.g. {"sparsity": 0.5}); see methods/mask.py."""
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    """The label noise applied to the whole training set before the validation split."""
    seed: int = 0
    """Base seed; the noise, split, init and order streams are derived from it (see streams())."""
    epochs: int = 10
    """Training epochs."""
    batch_size: int = 128
    """Mini-batch size of the training loop."""
    eval_batch_size: int = 1024
    """Batch size of evaluation passes (no effect on results)."""
    subset: int = 0
    """Use a seeded subset of this many training samples (0 = all); noise is drawn on the full set first."""
    test_subset: int = 0
    """Evaluate on a fixed seeded subset of this many test images (0 = the whole test set).

    Only for quick looks: it changes the protocol, and reports name it."""
    val_frac: float = 0.1
    """Fraction of the (noisy) training set held out as the noisy validation split (0 allowed)."""
    augment: str = "auto"
    """auto (the dataset's standard augmentation), none, crop, flip or crop+flip."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser and learning-rate schedule."""
    memo_samples: int = 5000
    """Cap on the noisy-labelled training samples scored each epoch for memorisation figures."""
    protocol_name: str = ""
    """Name of the protocol (presets set it); rows of a table are only compared within one protocol."""
    precision: str = "fp32"
    """fp32, or bf16: forward passes under bfloat16 autocast (GPUs with bf16 support, or CPU).

    Weights, optimiser state and every per-sample loss stay fp32. bf16 changes the numbers, so
    it is part of the run id and of the protocol; fp32 is left out of both, so runs recorded
    before this field existed keep their ids."""
    channels_last: bool = False
    """Keep networks and their input batches in channels-last memory format (faster convolutions
    on tensor-core GPUs). A speed setting like the device: recorded, not hashed."""
    device: str = "auto"
    """auto, cpu, cuda, cuda:N. Recorded, not hashed."""
    data_dir: str = ""
    """Where datasets are looked for first. Recorded, not hashed."""

    # ----- identity and seeds -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self, noise_sha: str = "", hp: dict[str, Any] | None = None) -> dict[str, Any]:
        """The fields that can change a run's numbers (paths and device excluded).

        An imported noise file is identified by its labels' SHA-256, not by its path. When the
        resolved hyperparameters ``hp`` are given (every default filled in, the mask included),
        they replace the user's overrides: changing a method's default then changes the run id.
        """
        d = self.to_dict()
        for k in NOT_HASHED:
            d.pop(k, None)
        if d.get("precision") == "fp32":
            d.pop("precision")
        if hp is not None:
            d["hp"] = hp
            d.pop("mask")
        if d["noise"]["file"]:
            d["noise"]["file"] = "sha256:" + noise_sha
        return d

    def run_id(self, noise_sha: str = "", hp: dict[str, Any] | None = None) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON of identity()."""
        blob = json.dumps(self.identity(noise_sha, hp), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def streams(self) -> dict[str, int]:
        """Independent seeds per random stream, derived from ``seed``.

        noise and split depend on the base seed only, so every method trained with seed s sees
        the same noise realisation and split: differences between methods are paired.
        """
        return derive_streams(self.seed)


NOT_HASHED = ("device", "data_dir", "eval_batch_size", "channels_last")
PRECISIONS = ("fp32", "bf16")
STREAMS = ("noise", "split", "init", "order")


def derive_streams(seed: int) -> dict[str, int]:
    """Map a base seed to one 32-bit seed per stream (noise, split, init, order) via SeedSequence."""
    out = {}
    for i, name in enumerate(STREAMS):
        out[name] = int(np.random.SeedSequence([int(seed), 1000 + i]).generate_state(1)[0])
    return out


def sub_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed derived from ``seed`` and integer keys (e.g. an epoch and a network index)."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


# ----- building configs from TOML / --set -------------------------------------------------

def _field_types(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in fields(cls)}


def _coerce(value: Any, current: Any, path: str) -> Any:
    """Coerce a string from ``--set`` (or a TOML value) to the type of the current value."""
    if not isinstance(value, str) or isinstance(current, str):
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    text = value.strip()
    try:
        if isinstance(current, bool):
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, list):
            return [int(x) if x.strip().lstrip("-").isdigit() else float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--set {path}={value}: expected a {type(current).__name__}") from None
    # untyped (hp.*): parse as TOML scalar if possible
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(cfg: RunConfig, path: str, value: Any) -> None:
    """Set a dotted field (``noise.rate``, ``optim.lr``, ``hp.q``) on cfg in place."""
    parts = path.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(obj, dict):
            if last:
                obj[part] = _coerce(value, obj.get(part), path)
            else:
                obj = obj.setdefault(part, {})
            continue
        names = _field_types(type(obj))
        if part not in names:
            where = ".".join(parts[:i]) or "the run config"
            raise UsageError(f"unknown config key '{path}': {where} has no field '{part}'. "
                             f"Valid: {', '.join(sorted(names))}")
        if last:
            current = getattr(obj, part)
            if dataclasses.is_dataclass(current) or isinstance(current, dict):
                if not isinstance(value, dict):
                    raise UsageError(f"'{path}' is a section; set its fields ({path}.NAME=VALUE)")
                for k, v in value.items():
                    apply_override(cfg, f"{path}.{k}", v)
            else:
                setattr(obj, part, _coerce(value, current, path))
        else:
            obj = getattr(obj, part)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"noise": {"rate": 0.4}} -> {"noise.rate": 0.4}; hp sub-dicts are flattened too."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def build_config(base: dict[str, Any] | None = None, sets: list[str] | None = None,
                 toml_file: str | None = None) -> RunConfig:
    """Defaults <- TOML file <- base dict (CLI flags) <- ``--set key=value`` strings."""
    cfg = RunConfig()
    layers: list[dict[str, Any]] = []
    if toml_file:
        path = Path(toml_file)
        if not path.is_file():
            raise UsageError(f"config file not found: {toml_file}")
        try:
            layers.append(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"{toml_file}: invalid TOML: {e}") from None
    if base:
        layers.append(base)
    for layer in layers:
        for key, value in flatten(layer).items():
            apply_override(cfg, key, value)
    for item in sets or []:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got '{item}'")
        key, value = item.split("=", 1)
        apply_override(cfg, key.strip(), value)
    return cfg


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from its to_dict() form (e.g. a stored config.json)."""
    d = dict(d)
    noise = NoiseConfig(**d.pop("noise"))
    optim = OptimConfig(**d.pop("optim"))
    known = _field_types(RunConfig)
    return RunConfig(noise=noise, optim=optim, **{k: v for k, v in d.items() if k in known})
