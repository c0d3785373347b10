"""Presets and grids: a TOML file expands into cells x seeds, each one RunConfig.

Preset format (benchmark/presets/*.toml)::

    description = "what it is for"
    seeds = [0, 1, 2]
    methods = ["*"]                 # "*" = every registered method
    [base]                          # RunConfig fields shared by every cell
    dataset = "fashion_mnist"
    [base.optim]
    lr = 0.05
    [[noise]]                       # one entry per noise setting (NoiseConfig fields, + dataset)
    kind = "sym"
    rate = 0.2
    [hp.gce]                        # per-method hyperparameters
    q = 0.7
    [[override]]                    # per-setting values, applied when every match key agrees
    match = { method = "dividemix", "noise.kind" = "sym", "noise.rate" = 0.2 }
    set = { "hp.lambda_u" = 0.0 }
"""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from benchmark.config import RunConfig, UsageError, apply_override, build_config, flatten

PRESET_DIR = Path(__file__).resolve().parent / "presets"


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_file: str) -> dict[str, Any]:
    path = Path(name_or_file)
    if not path.suffix == ".toml":
        path = PRESET_DIR / f"{name_or_file}.toml"
    if not path.is_file():
        raise UsageError(f"unknown preset '{name_or_file}'. Valid: {', '.join(list_presets())} "
                         f"(or a path to a .toml grid file)")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: invalid TOML: {e}") from None
    spec.setdefault("name", path.stem)
    return spec


def _matches(cfg: RunConfig, match: dict[str, Any]) -> bool:
    flat = flatten(cfg.to_dict())
    for k, v in match.items():
        cur = flat.get(k, None)
        if isinstance(v, float) or isinstance(cur, float):
            if cur is None or abs(float(cur) - float(v)) > 1e-9:
                return False
        elif cur != v:
            return False
    return True


def expand(spec: dict[str, Any], seeds: list[int] | None = None,
           extra_sets: list[str] | None = None) -> list[RunConfig]:
    """All RunConfigs of a preset: methods x noise settings x seeds, with overrides applied."""
    from methods import list_methods
    methods = spec.get("methods", ["*"])
    if "*" in methods:
        methods = list_methods()
    unknown = [m for m in methods if m not in list_methods()]
    if unknown:
        raise UsageError(f"preset '{spec['name']}' names unknown methods {unknown}. "
                         f"Valid: {', '.join(list_methods())}")
    seeds = seeds if seeds is not None else spec.get("seeds", [0])
    noises = spec.get("noise", [{}])
    out = []
    for method in methods:
        for noise in noises:
            for seed in seeds:
                base = copy.deepcopy(spec.get("base", {}))
                setting = dict(noise)
                if "dataset" in setting:  # a setting may name its own dataset (CIFAR-100N)
                    base["dataset"] = setting.pop("dataset")
                base.update(method=method, seed=seed, noise={**base.get("noise", {}), **setting})
                cfg = build_config(base)
                for k, v in spec.get("hp", {}).get(method, {}).items():
                    apply_override(cfg, f"hp.{k}", v)
                for ov in spec.get("override", []):
                    if _matches(cfg, ov.get("match", {})):
                        for k, v in ov.get("set", {}).items():
                            apply_override(cfg, k, v)
                for item in extra_sets or []:
                    k, _, v = item.partition("=")
                    apply_override(cfg, k.strip(), v)
                out.append(cfg)
    return out
