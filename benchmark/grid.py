"""Presets and grids: a TOML file expands into cells x seeds, each one RunConfig.

Preset format (benchmark/presets/*.toml)::

    description = "what it is for"
    seeds = [0, 1, 2]
    methods = ["*"]                 # "*" = every registered method; names or fnmatch patterns
    exclude_methods = ["*+obd"]     # optional: patterns removed from ``methods``
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
    extends = "fmnist"              # optional: start from another preset (its protocol, hp, ...)
    [[variant]]                     # optional: one extra cell per matching method, noise and seed
    methods = ["obd", "gce+obd"]    # names or patterns (default: every method of the preset)
    set = { "mask.sparsity" = 0.1 }

Methods: ``*`` or a pattern (``*+obd``) selects registered methods in registry order; a plain name
must be registered; ``exclude_methods`` patterns are then removed.

Variants (for sweeps over settings of one method, e.g. the mask's): each cell (method, noise,
seed) yields its plain cell, then one cell per ``[[variant]]`` whose ``methods`` match, built like
the plain cell (base, hp, overrides) with the variant's ``set`` applied after the overrides and
before the command line's ``--set``. A variant cell that resolves to the same run as a cell
already in the grid (same resolved hyperparameters and mask) is dropped, so a sweep may include
the defaults. A preset without variants expands exactly as before.
"""
from __future__ import annotations

import copy
import fnmatch
import json
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
    spec["name"] = spec.get("name", path.stem)
    parent = spec.pop("extends", None)
    if parent:
        # a grid that reuses another preset's protocol: its own top-level keys replace the
        # parent's (base is merged key by key, so a grid can change one field of the protocol)
        base = load_preset(parent)
        merged_base = {**base.get("base", {}), **spec.get("base", {})}
        spec = {**base, **spec, "base": merged_base, "extends": parent}
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


def select_methods(spec: dict[str, Any]) -> list[str]:
    """The preset's methods: ``methods`` names / patterns minus ``exclude_methods`` patterns."""
    from methods import list_methods
    registered = list_methods()
    out: list[str] = []
    for entry in spec.get("methods", ["*"]):
        if any(ch in entry for ch in "*?["):
            hits = fnmatch.filter(registered, entry)
            if not hits:
                raise UsageError(f"preset '{spec['name']}': pattern '{entry}' matches no method. "
                                 f"Valid: {', '.join(registered)}")
        elif entry in registered:
            hits = [entry]
        else:
            raise UsageError(f"preset '{spec['name']}' names unknown methods ['{entry}']. "
                             f"Valid: {', '.join(registered)}")
        out += [m for m in hits if m not in out]
    excluded = spec.get("exclude_methods", [])
    return [m for m in out if not any(fnmatch.fnmatchcase(m, pat) for pat in excluded)]


def _identity_key(cfg: RunConfig) -> str:
    """What makes two cells the same run (resolved hyperparameters and mask, not their spelling)."""
    from dataclasses import asdict

    from methods import resolve_hp
    try:
        hp = asdict(resolve_hp(cfg.method, cfg.hp, cfg.mask))
    except KeyError:  # a bad setting: prepare() reports it; compare the raw config meanwhile
        return json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return json.dumps(cfg.identity(hp=hp), sort_keys=True, default=str)


def expand(spec: dict[str, Any], seeds: list[int] | None = None,
           extra_sets: list[str] | None = None) -> list[RunConfig]:
    """All RunConfigs of a preset: methods x noise settings x seeds (x matching variants), with
    overrides applied."""
    methods = select_methods(spec)
    seeds = seeds if seeds is not None else spec.get("seeds", [0])
    noises = spec.get("noise", [{}])
    variants = spec.get("variant", [])
    for v in variants:
        if not isinstance(v.get("set"), dict):
            raise UsageError(f"preset '{spec['name']}': every [[variant]] needs a set = {{...}} table")
    out = []
    seen: set[str] = set()
    for method in methods:
        for noise in noises:
            for seed in seeds:
                plain = _cell(spec, method, noise, seed, {}, extra_sets)
                out.append(plain)
                if not variants:
                    continue
                seen.add(_identity_key(plain))
                for v in variants:
                    if not any(fnmatch.fnmatchcase(method, pat) for pat in v.get("methods", ["*"])):
                        continue
                    cfg = _cell(spec, method, noise, seed, v["set"], extra_sets)
                    key = _identity_key(cfg)
                    if key not in seen:
                        seen.add(key)
                        out.append(cfg)
    return out


def _cell(spec: dict[str, Any], method: str, noise: dict[str, Any], seed: int,
          variant_set: dict[str, Any], extra_sets: list[str] | None) -> RunConfig:
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
    for k, v in variant_set.items():
        apply_override(cfg, k, v)
    for item in extra_sets or []:
        k, _, v = item.partition("=")
        apply_override(cfg, k.strip(), v)
    return cfg
