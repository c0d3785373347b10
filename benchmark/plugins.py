"""Plugins: methods, datasets and backbones that live in a user's own package or file.

A plugin is a Python module that registers with the suite's own decorators when it is imported
(``methods.base.register_method``, ``benchmark.data.register_dataset`` / ``register_prefix``,
``benchmark.models.register_model``). It is loaded

- from the entry points of installed distributions, group ``noisy_label_bench.plugins`` (each
  names a module: ``taylor_ce = "nlb_taylor_ce"``), by the commands that train or read data (run,
  grid, tune, worker, check, bench, noise, pack);
- explicitly, by ``--plugin MODULE_OR_FILE`` on those commands and ``plugins = [...]`` in a grid
  file (loaded when that grid runs, never when it is only read or listed).

Nothing is imported because a store names a method: ``report``, ``ls`` and ``merge`` read stores
without importing any plugin. A plugin that registers a name the suite (or an earlier plugin)
already has is refused. Every plugin loaded in a process is recorded (:func:`loaded`: name, how
it was found, version, the SHA-256 of its source, what it registered): in each run's meta.json,
in a study's definition, so that ``--workers`` children, Slurm jobs and remote workers load the
same plugins (a file only while its SHA-256 is unchanged), and in a report's environment section.

The suite's packages (``benchmark``, ``methods``, ``noise``, ``reports``) are not installed into
site-packages: a plugin imports them from the suite's checkout, which ``runner.py`` puts first on
``sys.path``. So a plugin package declares no dependency on the suite, is installed into the
suite's environment (``pip install -e``), and runs through the suite's ``runner.py``.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from benchmark.data import list_datasets
from benchmark.data.registry import prefixes
from benchmark.errors import UsageError
from benchmark.models import list_models
from methods import list_methods
from methods.obd import register_masked_variants

__all__ = ["GROUP", "load", "load_all", "load_entry_points", "loaded", "restore", "specs"]

GROUP = "noisy_label_bench.plugins"
"""The entry-point group an installed plugin package declares."""

_LOADED: dict[str, dict[str, Any]] = {}
"""Plugins loaded in this process, by spec (module name, or resolved file path)."""


def loaded() -> list[dict[str, Any]]:
    """Records of the plugins loaded in this process, in load order (JSON-ready)."""
    return [dict(r) for r in _LOADED.values()]


def specs() -> list[dict[str, Any]]:
    """What a child process needs to load the same plugins: [{"spec", "kind", "sha256"}]."""
    return [{"spec": r["spec"], "kind": r["kind"], "sha256": r["sha256"]} for r in _LOADED.values()]


def _registries() -> dict[str, set[str]]:
    return {"methods": set(list_methods()), "datasets": set(list_datasets()) | set(prefixes()),
            "models": set(list_models())}


def _source_sha256(module) -> str:
    """SHA-256 over the module's source: the file, or every .py file of a package (sorted by path)."""
    path = Path(getattr(module, "__file__", "") or "")
    files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(str(f.relative_to(path.parent)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _version(module_name: str, module) -> str:
    top = module_name.split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return str(getattr(module, "__version__", "") or "")


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def load(spec: str, *, kind: str | None = None, sha256: str | None = None, base: Path | None = None) -> dict[str, Any]:
    """Import plugin ``spec`` (a module name, or a .py file, relative to ``base`` if given) once
    per process and return its record. ``sha256``: the source must still hash to this (a file
    plugin named by a study made elsewhere). UsageError for a plugin that is missing, fails to
    import, or registers a name that already exists."""
    file = _is_file(spec)
    if file:
        path = Path(spec).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        path = path.resolve()
        key = str(path)
        if not path.is_file():
            raise UsageError(f"plugin {spec}: no such file ({path})")
    else:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", spec):
            raise UsageError(f"plugin {spec!r}: not a module name (a.b.c) or a .py file")
        key = spec
    if key in _LOADED:
        return _LOADED[key]
    before = _registries()
    try:
        if file:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if sha256 and digest != sha256:
                raise UsageError(f"plugin {path}: its SHA-256 is {digest[:12]}..., the study was made with "
                                 f"{sha256[:12]}...: the file changed since; load it again where the study was made")
            name = "nlb_plugin_" + re.sub(r"\W", "_", path.stem) + "_" + digest[:8]
            mod_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module  # dataclasses and pickling look classes up by module
            mod_spec.loader.exec_module(module)
        else:
            name = spec
            module = importlib.import_module(spec)
            digest = _source_sha256(module)
            if sha256 and digest != sha256:
                raise UsageError(f"plugin {spec}: its source hashes to {digest[:12]}..., the study was made "
                                 f"with {sha256[:12]}...: another version is installed here")
    except UsageError:
        raise
    except ModuleNotFoundError as e:
        raise UsageError(f"plugin {spec}: cannot import it ({e}); install it into this environment "
                         f"(pip install -e PATH) or give a .py file") from None
    except ValueError as e:  # a registry refusing a name it already holds
        if "registered" in str(e):
            raise UsageError(f"plugin {spec}: {e}: the name of a built-in or of another plugin; "
                             f"choose another name") from None
        raise UsageError(f"plugin {spec}: failed to import: {type(e).__name__}: {e}") from None
    except Exception as e:  # noqa: BLE001 - the plugin's own code failed; name it, no traceback
        raise UsageError(f"plugin {spec}: failed to import: {type(e).__name__}: {e}") from None
    masked = register_masked_variants()  # X+obd for the plugin's methods too
    after = _registries()
    added = {k: sorted(after[k] - before[k]) for k in after}
    if not any(added.values()):
        raise UsageError(f"plugin {spec}: importing it registered no method, dataset or model")
    record = {"spec": key, "kind": kind or ("file" if file else "module"), "module": name,
              "version": "" if file else _version(name, module), "sha256": digest,
              "registered": {**added, "methods": sorted(set(added["methods"]) - set(masked)),
                             "masked_variants": sorted(masked)}}
    _LOADED[key] = record
    return record


def load_entry_points() -> list[dict[str, Any]]:
    """Load every plugin installed for group ``noisy_label_bench.plugins``."""
    out = []
    for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        out.append(load(ep.value.split(":")[0].strip(), kind=f"entry point {ep.name}"))
    return out


def load_all(explicit: Iterable[str] = (), *, entry_points: bool = True, base: Path | None = None) -> list[dict[str, Any]]:
    """The installed plugins (unless ``entry_points`` is false), then ``explicit`` ones."""
    out = load_entry_points() if entry_points else []
    return out + [load(s, base=base) for s in explicit]


def restore(records: Iterable[dict[str, Any]]) -> None:
    """Load the plugins a study or parent process recorded (:func:`specs`), checking each source's
    SHA-256: a worker runs exactly the code the study was made with."""
    for r in records:
        load(r["spec"], kind=r.get("kind"), sha256=r.get("sha256"))
