"""Verifying a copied run folder and comparing two copies of one run (runner.py merge).

``read_run(folder)`` reads a finished run folder and checks it, reading only and never
unpickling: the folder is named by a run id, is no symbolic link and holds only regular files
and folders (received.py reads every file without following a link, bounded in size and JSON
depth); config.json, metrics.csv, result.json and meta.json exist and parse; the run id recomputed from config.json equals the folder name; result.json holds
every final figure, agrees with metrics.csv (the figures ``summary.summarise`` derives from the
rows are recomputed and compared) and has as many epochs as metrics.csv has rows and the config
asks for; the noise SHA-256 in config.json and result.json agree, and the store's cached noise
artifact, if present, holds labels with that hash. Its figures are plausible (every accuracy and
rate, layout.FRACTIONS, finite and in [0, 1] where recorded) and its method, model and dataset
are names of the form the registries give (REGISTRY_NAME, or folder:PATH / list:FILE). A copy that fails raises :class:`Refused`,
whatever its files hold: a value of another type or shape than the suite writes refuses the copy,
never the merge.

``differences(a, b)`` lists what differs between two verified copies, leaving out meta.json,
the machine's measurements (layout.MEASURED) and the config fields that record where a run was
made (CONFIG_RECORDED); ``other_kernels(a, b)`` says how the machine kernels they were computed
on differ, which explains figures that differ in their last digits.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.config import NOT_HASHED, config_from_dict, flatten
from benchmark.data import prefixes
from benchmark.errors import Refused
from benchmark.store.atomic import json_safe
from benchmark.store.layout import (FINAL_METRICS, FRACTIONS, MACHINE_KEYS, MEASURED, NOISE_DIR, RUN_FILES,
                                    RUN_ID, in_noise_dir, machine_differences)
from benchmark.store.noise_cache import cache_path, spec_of
from benchmark.store.received import (MAX_ARTIFACT_BYTES, MAX_RUN_FILE_BYTES, check_folder, parse_json,
                                      read_file, shown)
from benchmark.store.summary import summarise
from noise import load_artifact

__all__ = ["RunCopy", "read_run", "differences", "other_kernels", "same", "show", "CONFIG_RECORDED"]

CONFIG_RECORDED = (*NOT_HASHED, "hp", "mask", "noise.file", *(f"numerics.{k}" for k in MACHINE_KEYS),
                   "noise_artifact.verification")
"""config.json fields that may differ between two copies of one run: where and how it was run
(the fields RunConfig does not hash, NOT_HASHED; the machine's kernels, layout.MACHINE_KEYS:
device type, torch version, CPU and GPU, which check_numerics also lets differ), the user's hp /
mask overrides (the run id hashes the resolved ones, hp_resolved, which is compared) and the path
of an imported noise file (hashed by content)."""

REGISTRY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.:-]{0,99}")
"""A method, model or dataset name as the registries hold them (``gce+obd``, ``resnet50_imagenet``,
``webvision_mini_224``; a plugin's name): letters, digits and ``_ + - . :``, starting with a
letter or digit, so that no name can be markup or a spreadsheet formula (``=HYPERLINK(...)``)."""

DATASET_PATH = re.compile(r"[\w+.:/@~ -]{1,4096}")
"""The PATH / FILE of a ``folder:PATH[@S]`` or ``list:FILE[@S]`` dataset (benchmark/data/folders.py):
a file system path of letters, digits, spaces and ``_ + - . : / @ ~``."""

MAX_LISTED = 8
"""Differences listed per file of a conflict; the rest are counted."""


@dataclass
class RunCopy:
    """One verified copy of a finished run, held in memory: the bytes checked are the bytes
    written, whatever happens to the source afterwards."""

    run_id: str
    store: Path
    """The store root the copy was read from."""
    files: dict[str, bytes]
    """RUN_FILES name -> the file's bytes."""
    config: dict[str, Any]
    result: dict[str, Any]
    rows: list[dict[str, float]]
    """metrics.csv, one dict per epoch (as Store.read_metrics reads it)."""
    noise_path: Path | None
    """The cached noise artifact's path relative to the store root; None for an imported file."""
    noise_sha: str
    has_artifact: bool
    """Whether this store holds the artifact (verified against noise_sha)."""
    numerics: dict[str, Any]
    """The numerical setting it was computed under, with the machine's kernels (config.json's
    ``numerics``, else meta.json's; {} when neither records one)."""

    @property
    def folder(self) -> Path:
        return self.store / self.run_id


# ----- verifying one run folder ---------------------------------------------------------------

def read_run(folder: Path) -> RunCopy:
    """Read and verify the finished run in ``folder`` (its parent is the store root); raises
    Refused naming the first check that fails. Reads only; never writes."""
    folder = Path(folder)
    if not RUN_ID.fullmatch(folder.name):
        raise Refused(f"folder name {folder.name!r} is not a run id (16 hex digits)")
    check_folder(folder)
    try:
        return _verified(folder)
    except Refused:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:
        # files that parse but hold another type or shape than the suite writes (a list where a
        # number belongs, a revision "x", a seed too large for a file name) trip some check
        # below in its own way: whichever it is, the copy is refused, the merge goes on
        raise Refused(f"its files do not hold what the suite writes ({type(e).__name__}: "
                      f"{str(e)[:200]})") from None


def _verified(folder: Path) -> RunCopy:
    files = _read_files(folder)
    config = _json_object(files, "config.json")
    result = _json_object(files, "result.json")
    meta = _json_object(files, "meta.json")  # must parse; its contents may differ between machines
    rows = _parse_metrics(files["metrics.csv"])
    _check_run_id(folder.name, config)
    _check_result(config, result, rows)
    _check_plausible(config, result, rows)
    rel, sha, present = _check_noise(folder.parent, config, result)
    numerics = next((n for n in (config.get("numerics"), meta.get("numerics")) if isinstance(n, dict)), {})
    return RunCopy(folder.name, folder.parent, files, config, result, rows, rel, sha, present, numerics)


def _read_files(folder: Path) -> dict[str, bytes]:
    """The bytes of every RUN_FILES file (never through a link, each bounded in size); Refused
    names the first one missing."""
    files = {}
    for name in RUN_FILES:
        data = read_file(folder.parent, f"{folder.name}/{name}", limit=MAX_RUN_FILE_BYTES)
        if data is None:
            raise Refused(f"{name} is missing")
        files[name] = data
    return files


def _json_object(files: dict[str, bytes], name: str) -> dict[str, Any]:
    obj = parse_json(files[name], name)
    if not isinstance(obj, dict):
        raise Refused(f"{name} does not hold a JSON object")
    return obj


def _parse_metrics(data: bytes) -> list[dict[str, float]]:
    """metrics.csv as Store.read_metrics reads it (empty cells left out, every value a float);
    Refused if it does not parse or its epochs are not 1, 2, ... in order."""
    try:
        reader = csv.DictReader(io.StringIO(data.decode()))
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in reader]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as e:
        # TypeError: a row with more cells than the header (DictReader puts them under None)
        raise Refused(f"metrics.csv does not parse ({type(e).__name__}: {e})") from None
    if not rows:
        raise Refused("metrics.csv holds no epoch")
    epochs = [r.get("epoch") for r in rows]
    if epochs != [float(i) for i in range(1, len(rows) + 1)]:
        raise Refused(f"metrics.csv epochs are not 1..{len(rows)} in order")
    return rows


def _check_run_id(name: str, config: dict[str, Any]) -> None:
    """The run id recomputed from config.json equals the folder name.

    benchmark.training.prepare names a run ``cfg.run_id(artifact.sha256, asdict(resolved hp), revisions)``;
    config.json holds ``cfg.to_dict()`` (after noise_for filled in an imported file's spec), the
    resolved hyperparameters as ``hp_resolved``, the revisions (absent in runs made before them:
    all 1) and the artifact's hash as ``noise_artifact.sha256``, so the same call on the rebuilt
    config gives the same id.
    """
    try:
        cfg = config_from_dict(config)
        sha = config["noise_artifact"]["sha256"]
        computed = cfg.run_id(sha, config.get("hp_resolved"), config.get("revisions"))
    except (KeyError, TypeError, AttributeError) as e:
        raise Refused(f"config.json does not describe a run config ({type(e).__name__}: {e})") from None
    if computed != name:
        raise Refused(f"config hash {computed} does not match the folder name {name}")
    if config.get("run_id") != name:
        raise Refused(f"config.json records run id {config.get('run_id')!r}, the folder is {name}")


def _check_result(config: dict[str, Any], result: dict[str, Any], rows: list[dict[str, float]]) -> None:
    """result.json is complete and is what its metrics.csv gives.

    Complete: every final figure (layout.FINAL_METRICS), epochs and the noise record. Its epochs
    equal metrics.csv's rows and the config's epochs. Every figure summary.summarise derives from
    the rows and result.json records equals the recomputed one (NaN as null, as stored): an
    edited number, or rows of another run, do not pass.
    """
    missing = [k for k in (*FINAL_METRICS, "epochs", "noise") if k not in result]
    if missing:
        raise Refused(f"result.json is incomplete: no {', '.join(missing)}")
    if result["epochs"] != len(rows) or result["epochs"] != config.get("epochs"):
        raise Refused(f"result.json records {result['epochs']} epochs, metrics.csv has "
                      f"{len(rows)} rows, the config asks for {config.get('epochs')}")
    try:
        derived = json_safe(summarise(rows))
    except (KeyError, ValueError) as e:
        raise Refused(f"metrics.csv lacks what the final figures need "
                      f"({type(e).__name__}: {e})") from None
    for key, value in derived.items():
        if key in result and not same(result[key], value):
            raise Refused(f"result.json {key} = {result[key]!r} does not match metrics.csv, "
                          f"which gives {value!r}")


def _check_plausible(config: dict[str, Any], result: dict[str, Any], rows: list[dict[str, float]]) -> None:
    """What the copy says is possible: its names are of the registries' form, and every fraction
    it recorded (layout.FRACTIONS) is a finite number in [0, 1].

    Consistent is not enough: an accuracy of -1e308 in metrics.csv and result.json alike, or a
    method named ``=HYPERLINK(...)`` hashed into its own run id, passes every check above. A
    figure the run never recorded is fine: null in result.json, an empty cell or nan in
    metrics.csv (what the suite writes for an undefined figure, e.g. no validation split).
    """
    for key in ("method", "model", "dataset"):
        name = config.get(key)
        if not _registry_shaped(name, paths=key == "dataset"):
            form = (" (or folder:PATH / list:FILE, a PATH of letters, digits, spaces and _ + - . : / @ ~)"
                    if key == "dataset" else "")
            raise Refused(f"config.json {key} {name!r:.80} is not a name of the registries' form: "
                          f"letters, digits and _ + - . :, starting with a letter or digit{form}")
    for key, value in flatten(result).items():
        if FRACTIONS.fullmatch(key) and value is not None and not _fraction(value):
            raise Refused(f"result.json {key} = {value!r:.40}: not a fraction in [0, 1]")
    for n, row in enumerate(rows, 1):
        for key, value in row.items():
            if FRACTIONS.fullmatch(key) and not math.isnan(value) and not _fraction(value):
                raise Refused(f"metrics.csv row {n} {key} = {value!r}: not a fraction in [0, 1]")


def _registry_shaped(name: Any, *, paths: bool) -> bool:
    """A REGISTRY_NAME, or (``paths``: a dataset) a registered prefix and a DATASET_PATH."""
    if not isinstance(name, str):
        return False
    if REGISTRY_NAME.fullmatch(name):
        return True
    prefix = next((p for p in prefixes() if name.startswith(p)), None) if paths else None
    return prefix is not None and DATASET_PATH.fullmatch(name[len(prefix):]) is not None


def _fraction(value: Any) -> bool:
    """A finite number in [0, 1] (a bool is no number here; NaN is not in [0, 1])."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= 1)


def _check_noise(root: Path, config: dict[str, Any],
                 result: dict[str, Any]) -> tuple[Path | None, str, bool]:
    """The noise hash recorded in config.json and result.json agree, and the store's cached
    artifact of this run, if present, holds labels with that hash (recomputed by load_artifact,
    which reads no pickle). Returns (artifact path relative to the store or None for an
    imported file, the hash, whether the store holds the artifact)."""
    sha = config.get("noise_artifact", {}).get("sha256")
    noise = result.get("noise")
    if not isinstance(noise, dict) or noise.get("sha256") != sha or not sha:
        got = noise.get("sha256") if isinstance(noise, dict) else None
        raise Refused(f"noise SHA-256 of config.json ({sha}) and result.json ({got}) disagree")
    cfg = config_from_dict(config)
    if cfg.noise.file:
        return None, sha, False
    try:
        seed = int(config["streams"]["noise"])
    except (KeyError, TypeError, ValueError):
        raise Refused("config.json records no noise stream seed (streams.noise)") from None
    rel = cache_path(root, cfg.dataset, spec_of(cfg), seed).relative_to(root)
    if not in_noise_dir(rel):  # merge would read, and write in the target, whatever it names
        raise Refused(f"its noise artifact path {shown(rel)} (made from the dataset name) leaves the "
                      f"store's {NOISE_DIR} folder: merge reads and writes noise artifacts only there")
    data = read_file(root, rel, limit=MAX_ARTIFACT_BYTES)  # no link followed on the way
    if data is None:
        return rel, sha, False
    try:
        art = load_artifact(io.BytesIO(data), expect_dataset=cfg.dataset, name=str(rel),
                            expect_num=config["noise_artifact"].get("num_samples"))
    except ValueError as e:
        raise Refused(f"noise artifact {rel}: {e}") from None
    if art.sha256 != sha:
        raise Refused(f"noise artifact {rel} holds labels with SHA-256 {art.sha256[:12]}..., "
                      f"the run records {sha[:12]}...")
    return rel, sha, True


# ----- comparing two copies -------------------------------------------------------------------

def differences(a: RunCopy, b: RunCopy) -> list[str]:
    """What differs between two verified copies of one run, one line per field, e.g.
    ``result.json test/acc_last 0.81 vs 0.79`` or ``metrics.csv row 3 test/acc 0.5 vs 0.4``.
    meta.json, the machine's measurements (MEASURED) and the config fields that record where a
    run was made (CONFIG_RECORDED) are left out. Empty: the copies are the same run."""
    if all(a.files[n] == b.files[n] for n in ("config.json", "result.json", "metrics.csv")):
        return []
    return (_dict_differences("config.json", a.config, b.config, _config_kept)
            + _dict_differences("result.json", a.result, b.result, _measured_not)
            + _metrics_differences(a.rows, b.rows))


def other_kernels(a: RunCopy, b: RunCopy) -> list[str]:
    """How the machine kernels two copies were computed on differ (layout.machine_differences):
    copies whose figures differ and whose kernels do are the same run with other rounding, not
    a damaged copy. Empty when they agree or a copy does not record them."""
    return machine_differences(a.numerics, b.numerics)


def _config_kept(key: str) -> bool:
    return not any(key == k or key.startswith(k + ".") for k in CONFIG_RECORDED)


def _measured_not(key: str) -> bool:
    return not key.startswith(MEASURED)


def _dict_differences(name: str, a: dict[str, Any], b: dict[str, Any], keep) -> list[str]:
    """Differing fields of two JSON objects, nested fields named with dots."""
    fa, fb = flatten(a), flatten(b)
    keys = sorted(k for k in fa.keys() | fb.keys() if keep(k))
    found = [f"{name} {k} {show(fa, k)} vs {show(fb, k)}" for k in keys
             if k not in fa or k not in fb or not same(fa[k], fb[k])]
    return _capped(name, found)


def _metrics_differences(a: list[dict[str, float]], b: list[dict[str, float]]) -> list[str]:
    """Differing cells of two metrics.csv files (rows numbered by epoch), measurements left out."""
    found = []
    if len(a) != len(b):
        found.append(f"metrics.csv {len(a)} rows vs {len(b)}")
    for n, (ra, rb) in enumerate(zip(a, b), 1):
        for k in sorted(k for k in ra.keys() | rb.keys() if _measured_not(k)):
            if k not in ra or k not in rb or not same(ra[k], rb[k]):
                found.append(f"metrics.csv row {n} {k} {show(ra, k)} vs {show(rb, k)}")
    return _capped("metrics.csv", found)


def _capped(name: str, found: list[str]) -> list[str]:
    if len(found) <= MAX_LISTED:
        return found
    return found[:MAX_LISTED] + [f"{name}: {len(found) - MAX_LISTED} more differences"]


def show(d: dict[str, Any], key: str) -> str:
    """A field of a flattened record as a difference line shows it: its repr, or (absent)."""
    return repr(d[key]) if key in d else "(absent)"


def same(a: Any, b: Any, tol: float = 0.0) -> bool:
    """Equal, counting NaN equal to NaN and to null (json_safe writes NaN as null), and a bool
    never equal to a number (Python has True == 1). ``tol`` > 0: two finite numbers within tol,
    absolute up to 1 and relative above (runner.py verify on other kernels)."""
    if _missing(a) and _missing(b):
        return True
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and not _missing(v) for v in (a, b))
    if tol and numbers:
        return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    return a == b


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
