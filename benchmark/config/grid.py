"""Presets and grids: a TOML file expands into cells x seeds, each one RunConfig.

Preset format (benchmark/config/presets/*.toml)::

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

A masked variant ``X+obd`` takes X's hyperparameters, so ``[hp.X]`` applies to it as well (then
``[hp."X+obd"]``, if any), and an ``[[override]]`` matching ``method = "X"`` also matches ``X+obd``
(match ``method = "X+obd"`` for the masked one alone).

Variants (for sweeps over settings of one method, e.g. the mask's): each cell (method, noise,
seed) yields its plain cell, then one cell per ``[[variant]]`` whose ``methods`` match, built like
the plain cell (base, hp, overrides) with the variant's ``set`` applied after the overrides and
before the command line's ``--set``. A variant cell that resolves to the same run as a cell
already in the grid (same resolved hyperparameters and mask) is dropped, so a sweep may include
the defaults. A preset without variants expands exactly as before.
"""
from __future__ import annotations

import copy
import dataclasses
import fnmatch
import json
import re
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmark.config.run import NoiseConfig, RunConfig, apply_override, build_config, flatten
from benchmark.errors import UsageError
from methods import list_methods, resolve_hp

PRESET_DIR = Path(__file__).resolve().parent / "presets"


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


TOP_KEYS = ("name", "description", "seeds", "methods", "exclude_methods", "plugins", "base", "noise", "hp",
            "override", "extends", "variant")
"""Every top-level key a grid file may have; anything else is refused (a typo would do nothing)."""


def load_preset(name_or_file: str) -> dict[str, Any]:
    """A preset or grid file as a dict, its ``extends`` chain merged and its layout checked.

    ``spec["_own"]`` lists the top-level keys the file itself sets (the rest came from the
    parent): settings a file sets that apply to no cell of its grid are refused, inherited ones
    are allowed to apply to none.
    """
    path = Path(name_or_file)
    if not path.suffix == ".toml":
        path = PRESET_DIR / f"{name_or_file}.toml"
    if not path.is_file():
        raise UsageError(f"unknown preset '{name_or_file}'. Valid: {', '.join(list_presets())} "
                         f"(or a path to a .toml grid file)")
    try:
        spec = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: invalid TOML: {e}") from None
    _check_layout(spec, path)
    spec["name"] = spec.get("name", path.stem)
    if "plugins" in spec:  # a plugin file's path is relative to the grid file (kept so when extended)
        spec["plugins"] = [str((path.resolve().parent / p).resolve()) if p.endswith(".py") or "/" in p else p
                           for p in spec["plugins"]]
    check_name(spec["name"], "grid name")
    own = sorted(set(spec) - {"name"})
    parent = spec.pop("extends", None)
    if parent:
        # a grid that reuses another preset's protocol: its own top-level keys replace the
        # parent's (base is merged key by key, so a grid can change one field of the protocol)
        base = load_preset(parent)
        merged_base = {**base.get("base", {}), **spec.get("base", {})}
        spec = {**base, **spec, "base": merged_base, "extends": parent}
    spec["_own"] = own
    return spec


def check_name(name: Any, what: str) -> str:
    """A name that becomes part of a path (grid, study, report): letters, digits, '.', '_', '+', '-',
    starting with a letter or digit, at most 100 characters. Anything else is refused, so no name
    can point outside the store."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(f"invalid {what} {name!r}: use letters, digits and . _ + - "
                         f"(starting with a letter or digit, at most 100 characters)")
    return name


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def _check_layout(spec: dict[str, Any], path: Path) -> None:
    """Refuse unknown keys and wrong shapes, naming the file and what is valid."""
    where = str(path)
    unknown = sorted(set(spec) - set(TOP_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}. Valid: {', '.join(TOP_KEYS)}")

    def want(key: str, ok: bool, shape: str) -> None:
        if key in spec and not ok:
            raise UsageError(f"{where}: '{key}' must be {shape}, got {type(spec[key]).__name__} "
                             f"{spec[key]!r:.80}")

    want("seeds", isinstance(spec.get("seeds"), list) and all(
        isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in spec.get("seeds", [])),
        "a list of non-negative integers, e.g. seeds = [0, 1, 2]")
    for key in ("methods", "exclude_methods"):
        want(key, isinstance(spec.get(key), list) and all(isinstance(x, str) for x in spec.get(key, [])),
             'a list of method names or patterns, e.g. ["ce", "*+obd"]')
    want("plugins", isinstance(spec.get("plugins"), list) and all(isinstance(x, str) for x in spec.get("plugins", [])),
         'a list of plugin modules or .py files (relative to the grid file), e.g. ["my_loss", "plugins/mine.py"]')
    for key in ("name", "description", "extends"):
        want(key, isinstance(spec.get(key), str), "a string")
    want("base", isinstance(spec.get("base"), dict), "a table ([base])")
    want("hp", isinstance(spec.get("hp"), dict) and all(isinstance(v, dict) for v in spec.get("hp", {}).values()),
         "tables of settings per method ([hp.gce] q = 0.7)")
    for key, keys in (("noise", None), ("override", {"match", "set"}), ("variant", {"methods", "set"})):
        if key not in spec:
            continue
        v = spec[key]
        if isinstance(v, dict):
            raise UsageError(f"{where}: '{key}' must be an array of tables: write [[{key}]], not [{key}]")
        want(key, isinstance(v, list) and all(isinstance(x, dict) for x in v), f"an array of tables ([[{key}]])")
        for i, entry in enumerate(v, 1):
            if keys is not None:
                bad = sorted(set(entry) - keys)
                if bad:
                    raise UsageError(f"{where}: [[{key}]] number {i} has unknown key(s) {', '.join(bad)}. "
                                     f"Valid: {', '.join(sorted(keys))}")
            for sub in ("match", "set"):
                if sub in entry and not isinstance(entry[sub], dict):
                    raise UsageError(f"{where}: [[{key}]] number {i}: '{sub}' must be a table, "
                                     f'e.g. {sub} = {{ method = "gce" }}')
            if key == "noise":
                valid = {f.name for f in dataclasses.fields(NoiseConfig)} | {"dataset"}
                bad = sorted(set(entry) - valid)
                if bad:
                    raise UsageError(f"{where}: [[noise]] number {i} has unknown key(s) {', '.join(bad)}. "
                                     f"Valid: {', '.join(sorted(valid))}")


def host_of(method: str) -> str:
    """The method whose hyperparameters ``method`` takes: X for X+obd, else itself."""
    return method[: -len("+obd")] if method.endswith("+obd") else method


def _matches(cfg: RunConfig, match: dict[str, Any]) -> bool:
    flat = flatten(cfg.to_dict())
    for k, v in match.items():
        cur = flat.get(k, None)
        if k == "method" and cur is not None and v in (cur, host_of(cur)):
            continue
        if isinstance(v, float) or isinstance(cur, float):
            if cur is None or abs(float(cur) - float(v)) > 1e-9:
                return False
        elif cur != v:
            return False
    return True


def select_methods(spec: dict[str, Any]) -> list[str]:
    """The preset's methods: ``methods`` names / patterns minus ``exclude_methods`` patterns."""
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
    try:
        hp = asdict(resolve_hp(cfg.method, cfg.hp, cfg.mask))
    except KeyError:  # a bad setting: prepare() reports it; compare the raw config meanwhile
        return json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return json.dumps(cfg.identity(hp=hp), sort_keys=True, default=str)


def expand(spec: dict[str, Any], seeds: list[int] | None = None,
           extra_sets: list[str] | None = None) -> list[RunConfig]:
    """All RunConfigs of a preset: methods x noise settings x seeds (x matching variants), with
    overrides applied.

    Settings that would silently do nothing are refused: ``[hp.X]`` for a method that is not
    registered (or, in the file itself, not in the grid), an ``[[override]]`` whose match names an
    unknown key or (in the file itself) matches no cell, a ``[[variant]]`` whose methods match none
    of the grid's methods.
    """
    name = spec["name"]
    own = set(spec.get("_own", TOP_KEYS))
    methods = select_methods(spec)
    seeds = seeds if seeds is not None else spec.get("seeds", [0])
    noises = spec.get("noise", [{}])
    variants = spec.get("variant", [])
    for i, v in enumerate(variants, 1):
        if not isinstance(v.get("set"), dict):
            raise UsageError(f"preset '{name}': every [[variant]] needs a set = {{...}} table")
        pats = v.get("methods", ["*"])
        if not any(fnmatch.fnmatchcase(m, pat) for pat in pats for m in methods):
            raise UsageError(f"preset '{name}': [[variant]] number {i} names methods {pats}, which "
                             f"match none of the grid's methods ({', '.join(methods)})")
    for m in spec.get("hp", {}):
        if m not in list_methods():
            raise UsageError(f"preset '{name}': [hp.{m}]: no method '{m}'. Valid: {', '.join(list_methods())}")
        if "hp" in own and m not in methods and m not in {host_of(x) for x in methods}:
            raise UsageError(f"preset '{name}': [hp.{m}] sets hyperparameters of '{m}', which the grid "
                             f"does not run (its methods: {', '.join(methods)})")
    valid_keys = set(flatten(RunConfig().to_dict()))
    for i, ov in enumerate(spec.get("override", []), 1):
        bad = [k for k in ov.get("match", {}) if k not in valid_keys and not k.startswith(("hp.", "mask."))]
        if bad:
            raise UsageError(f"preset '{name}': [[override]] number {i} matches on unknown key(s) "
                             f"{', '.join(bad)}. Valid: {', '.join(sorted(valid_keys))}, hp.NAME, mask.NAME")
    used = [False] * len(spec.get("override", []))
    out = []
    seen: set[str] = set()
    for method in methods:
        for noise in noises:
            for seed in seeds:
                plain = _cell(spec, method, noise, seed, {}, extra_sets, used)
                out.append(plain)
                if not variants:
                    continue
                seen.add(_identity_key(plain))
                for v in variants:
                    if not any(fnmatch.fnmatchcase(method, pat) for pat in v.get("methods", ["*"])):
                        continue
                    cfg = _cell(spec, method, noise, seed, v["set"], extra_sets, used)
                    key = _identity_key(cfg)
                    if key not in seen:
                        seen.add(key)
                        out.append(cfg)
    if "override" in own:
        for i, (ov, hit) in enumerate(zip(spec.get("override", []), used), 1):
            if not hit:
                raise UsageError(f"preset '{name}': [[override]] number {i} (match = {ov.get('match', {})}) "
                                 f"matches no cell of the grid: a typo in a name or value?")
    return out


def cell(spec: dict[str, Any], method: str, noise: dict[str, Any], seed: int,
         extra_sets: list[str] | None = None) -> RunConfig:
    """The preset's cell of ``method`` at ``noise`` and ``seed``: its base, [hp.X] and matching
    [[override]]s, then ``extra_sets`` (``key=value``), as ``expand`` builds a plain cell (the
    method need not be in the preset's list: ``tune --preset`` tunes any method on its protocol)."""
    return _cell(spec, method, noise, seed, {}, extra_sets)


def _cell(spec: dict[str, Any], method: str, noise: dict[str, Any], seed: int,
          variant_set: dict[str, Any], extra_sets: list[str] | None,
          used: list[bool] | None = None) -> RunConfig:
    src = f"grid '{spec['name']}'"
    base = copy.deepcopy(spec.get("base", {}))
    setting = dict(noise)
    if "dataset" in setting:  # a setting may name its own dataset (CIFAR-100N)
        base["dataset"] = setting.pop("dataset")
    base.update(method=method, seed=seed, noise={**base.get("noise", {}), **setting})
    cfg = build_config(base, source=f"{src}, [base] or [[noise]]")
    for owner in dict.fromkeys((host_of(method), method)):  # X's settings, then X+obd's own
        for k, v in spec.get("hp", {}).get(owner, {}).items():
            apply_override(cfg, f"hp.{k}", v, f"{src}, [hp.{owner}]")
    for i, ov in enumerate(spec.get("override", [])):
        if _matches(cfg, ov.get("match", {})):
            if used is not None:
                used[i] = True
            for k, v in ov.get("set", {}).items():
                apply_override(cfg, k, v, f"{src}, [[override]] number {i + 1}")
    for k, v in variant_set.items():
        apply_override(cfg, k, v, f"{src}, [[variant]]")
    for item in extra_sets or []:
        k, _, v = item.partition("=")
        apply_override(cfg, k.strip(), v)
    return cfg
