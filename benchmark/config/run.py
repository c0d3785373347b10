"""Run configuration: dataclasses, TOML and ``--set`` overrides, seed streams and the config hash.

A run is identified by the SHA-256 of its *resolved* config restricted to the fields that can change
its numbers (``identity()``); paths and the device are recorded but not hashed, so the same run on
another machine or data directory is recognised as the same run.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import textwrap
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import UsageError
from methods.params import ConfigError, check_fields, field_check, param
from noise.spec import KINDS, MODES


OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine", "cosine_restarts", "linear")
AUGMENTS = ("auto", "none", "crop", "flip", "crop+flip", "crop+flip+rotate20")
PRECISIONS = ("fp32", "bf16")
CLASSIFIERS = ("linear", "kan")


@dataclass
class NoiseConfig:
    kind: str = param("sym", choices=KINDS)
    """Noise kind (see noise/spec.py)."""
    rate: float = param(0.4, ge=0.0, lt=1.0)
    """Nominal noise rate r in [0, 1). Ignored (must be 0) for none, human and twin."""
    mode: str = param("bernoulli", choices=MODES)
    """bernoulli: every label flips independently; exact: exactly round(n_c * T[c, j]) per class."""
    human_set: str = param("")
    """For human/twin: the CIFAR-N label set (aggre, rand1, rand2, rand3, worst; noisy for CIFAR-100)."""
    allow_unlearnable: bool = param(False)
    """Allow pairflip/asym/idn rates >= 0.5, where the noisy class becomes the majority."""
    file: str = param("")
    """Import this exported noise artifact (.npz) instead of generating noise; its SHA-256 is hashed."""


@dataclass
class OptimConfig:
    name: str = param("sgd", choices=OPTIMIZERS)
    """sgd or adam."""
    lr: float = param(0.02, gt=0.0)
    """Initial learning rate."""
    momentum: float = param(0.9, ge=0.0, lt=1.0)
    """SGD momentum (Adam: beta1)."""
    weight_decay: float = param(5e-4, ge=0.0)
    """L2 weight decay (coupled, as torch.optim.SGD/Adam apply it)."""
    schedule: str = param("cosine", choices=SCHEDULES)
    """none, step (x gamma at each milestone), cosine (to eta_min at the last epoch),
    cosine_restarts (cosine to eta_min over restart_every epochs, then again from lr: SGDR, as
    torch's CosineAnnealingWarmRestarts stepped per epoch), linear (to 0 from decay_start)."""
    milestones: list[int] = param([], ge=1, item=int)
    """Epochs (1-based) after which the step schedule multiplies the lr by gamma."""
    gamma: float = param(0.1, gt=0.0)
    """Step schedule factor."""
    decay_start: int = param(0, ge=0)
    """Linear schedule: the epoch from which the lr decays linearly to 0 at the last epoch."""
    eta_min: float = param(0.0, ge=0.0)
    """Lowest lr of the cosine schedules (torch's eta_min; 0 = to zero). Must be below lr."""
    restart_every: int = param(0, ge=0)
    """cosine_restarts: epochs per cycle (torch's T_0; ELR's CIFAR-10 config uses 10). Required
    (>= 1) by that schedule, unused by the others."""
    grad_clip: float = param(0.0, ge=0.0)
    """Clip the global L2 norm of every network's gradient to this before each optimiser step
    (torch.nn.utils.clip_grad_norm_; APL and ANL use 5.0); 0 = no clipping."""
    nesterov: bool = param(False)
    """SGD with Nesterov momentum (torch.optim.SGD(nesterov=True); APL's and ANL's WebVision
    configs). Needs momentum > 0."""

    def check(self) -> None:
        """Rules across fields (run by check_fields after every field is valid)."""
        if self.schedule == "cosine_restarts" and self.restart_every < 1:
            raise ConfigError("optim.schedule = cosine_restarts needs optim.restart_every >= 1 "
                              "(epochs per cycle)")
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ConfigError("optim.nesterov needs optim.name = sgd and optim.momentum > 0")
        if self.eta_min and self.eta_min >= self.lr:
            raise ConfigError(f"optim.eta_min = {self.eta_min} must be below optim.lr = {self.lr}")


OPTIM_NEW_DEFAULTS = {"eta_min": 0.0, "restart_every": 0, "grad_clip": 0.0, "nesterov": False}
"""Optimiser fields added after runs were stored: left out of a run's identity at these values,
so the runs made before them keep their ids."""


@dataclass
class RunConfig:
    dataset: str = param("fashion_mnist")
    """Dataset: a registered name (``runner.py ls --datasets``; benchmark/data/), folder:PATH or list:FILE."""
    model: str = param("cnn")
    """Backbone: a registered name (``runner.py ls --models``; benchmark/models/)."""
    classifier: str = param("linear", choices=CLASSIFIERS)
    """The backbone's final classifier: linear (its nn.Linear) or kan (pykan's KANLayer with its
    default grid of 5 intervals and cubic splines, benchmark/models/heads.py; the OBD mask then masks
    its edges). Part of the run id when kan (left out at linear, so earlier runs keep their ids);
    not part of the protocol: a KAN row sits in its host's table, labelled [classifier=kan]."""
    method: str = param("ce")
    """Training method: a registered name (``runner.py ls --methods``; methods/), X+obd for every X."""
    hp: dict[str, Any] = field(default_factory=dict)
    """Method hyperparameters overriding the method's Config defaults (e.g. {"q": 0.7} for gce)."""
    mask: dict[str, Any] = field(default_factory=dict)
    """Edge-mask settings for obd and X+obd methods (e.g. {"sparsity": 0.5}); see methods/mask.py."""
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    """The label noise applied to the whole training set before the validation split."""
    seed: int = param(0, ge=0)
    """Base seed; the noise, split, init and order streams are derived from it (see streams())."""
    epochs: int = param(10, ge=1)
    """Training epochs."""
    batch_size: int = param(128, ge=2)
    """Mini-batch size of the training loop (at least 2: BatchNorm cannot train on one sample)."""
    eval_batch_size: int = param(1024, ge=1)
    """Batch size of evaluation passes (no effect on results)."""
    subset: int = param(0, ge=0)
    """Use a seeded subset of this many training samples (0 = all); noise is drawn on the full set first."""
    test_subset: int = param(0, ge=0)
    """Evaluate on a fixed seeded subset of this many test images (0 = the whole test set).

    Only for quick looks: it changes the protocol, and reports name it."""
    val_frac: float = param(0.1, ge=0.0, lt=1.0)
    """Fraction of the (noisy) training set held out as the noisy validation split (0 allowed)."""
    augment: str = param("auto", choices=AUGMENTS)
    """auto (the dataset's standard augmentation), none, crop, flip, crop+flip or
    crop+flip+rotate20 (then a random rotation within +-20 degrees: APL / ANL on CIFAR-100)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser and learning-rate schedule."""
    memo_samples: int = param(5000, ge=0)
    """Cap on the noisy-labelled training samples scored each epoch for memorisation figures."""
    protocol_name: str = param("")
    """Name of the protocol (presets set it); rows of a table are only compared within one protocol."""
    precision: str = param("fp32", choices=PRECISIONS)
    """fp32, or bf16: forward passes under bfloat16 autocast (GPUs with bf16 support, or CPU).

    Weights, optimiser state and every per-sample loss stay fp32. bf16 changes the numbers, so
    it is part of the run id and of the protocol; fp32 is left out of both, so runs recorded
    before this field existed keep their ids."""
    channels_last: bool = param(False)
    """Keep networks and their input batches in channels-last memory format (faster convolutions
    on tensor-core GPUs). Convolutions may then pick other algorithms, so the numbers can change:
    part of the run id when true (left out when false), not of the protocol."""
    test_every: int = param(1, ge=1)
    """Evaluate the test set (and memorisation, gradient probe) every this many epochs and at the
    last epoch; the noisy validation split is scored every epoch. The test accuracy at the epoch
    selected by noisy validation is exact whatever this is: the networks of the best-validation
    epoch are kept and tested at the end. Part of the protocol (the oracle best epoch is taken
    over the tested epochs only) and of the run id."""
    test_last: int = param(0, ge=0)
    """Also test each of the last this many epochs (0: only test_every's epochs and the last).
    With the last 10 epochs tested, results carry test/acc_last10_mean, the mean test accuracy
    over them (the published rule of SED, DISC and JoCoR); with test_every = 1 they always are.
    Part of the run id when nonzero (left out at 0, so earlier runs keep their ids)."""
    checkpoint_s: float = param(120.0, ge=0.0)
    """Seconds between checkpoints (0: after every epoch). A run also checkpoints when it stops
    early (stop_after, a pruned trial); a crash loses at most this much work. Not hashed."""
    threads: int = param(1, ge=1)
    """Intra-op CPU threads of torch for this run (torch.set_num_threads; GPU runs use it for
    their few CPU ops). CPU float reductions depend on the thread count, so it is pinned per run
    and part of the run id: a sequential grid and local workers compute the same runs. One
    thread per run and one run per core is also the fastest way through a grid on CPU
    (docs/BENCHMARKS.md)."""
    device: str = param("auto")
    """auto, cpu, cuda, cuda:N. Recorded, not hashed."""
    data_dir: str = param("")
    """Where datasets are looked for first. Recorded, not hashed."""

    # ----- identity and seeds -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self, noise_sha: str = "", hp: dict[str, Any] | None = None,
                 revisions: dict[str, int] | None = None) -> dict[str, Any]:
        """The fields that can change a run's numbers (paths and device excluded).

        An imported noise file is identified by its labels' SHA-256, not by its path. When the
        resolved hyperparameters ``hp`` are given (every default filled in, the mask included),
        they replace the user's overrides: changing a method's default then changes the run id.
        ``revisions`` (the harness's and the method's, see methods.base.Method.revision) enter
        only where they are above 1, so runs made before revisions existed keep their ids.
        """
        d = self.to_dict()
        for k in NOT_HASHED:
            d.pop(k, None)
        if d.get("precision") == "fp32":
            d.pop("precision")
        for k, v in OPTIM_NEW_DEFAULTS.items():
            if d["optim"].get(k) == v:
                d["optim"].pop(k)
        if not d.get("channels_last"):
            d.pop("channels_last", None)
        if not d.get("test_last"):
            d.pop("test_last", None)
        if d.get("classifier") == "linear":
            d.pop("classifier")
        if hp is not None:
            d["hp"] = hp
            d.pop("mask")
        if d["noise"]["file"]:
            d["noise"]["file"] = "sha256:" + noise_sha
        bumped = {k: int(v) for k, v in (revisions or {}).items() if int(v) != 1}
        if bumped:
            d["revisions"] = bumped
        return d

    def run_id(self, noise_sha: str = "", hp: dict[str, Any] | None = None,
               revisions: dict[str, int] | None = None) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON of identity()."""
        blob = json.dumps(self.identity(noise_sha, hp, revisions), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def streams(self) -> dict[str, int]:
        """Independent seeds per random stream, derived from ``seed``.

        noise and split depend on the base seed only, so every method trained with seed s sees
        the same noise realisation and split: differences between methods are paired.
        """
        return derive_streams(self.seed)


NOT_HASHED = ("device", "data_dir", "eval_batch_size", "checkpoint_s")
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


def _coerce(value: Any, f: dataclasses.Field | None, current: Any, path: str, source: str) -> Any:
    """``value`` (a string from --set, or a TOML / dict value) as the type of field ``path``.

    Checked fields (methods/params.py) are coerced and range-checked here, so a bad value is
    reported with where it came from. hp.* and mask.* entries are untyped until the method is
    known: a string is parsed as a TOML scalar (``0.5`` -> 0.5, ``true`` -> True), else kept.
    """
    chk = field_check(f) if f is not None else None
    if chk is not None:
        try:
            return chk.coerce(value)
        except ValueError as e:
            raise UsageError(f"{_where(source, path, value)}: {path} {e}") from None
    if not isinstance(value, str) or isinstance(current, str):
        return value
    try:
        return tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _where(source: str, path: str, value: Any) -> str:
    """Where a bad value came from, as the user wrote it: '--set epochs=two' or 'run.toml'."""
    return f"--set {path}={value}" if source == "--set" else source


def apply_override(cfg: RunConfig, path: str, value: Any, source: str = "--set") -> None:
    """Set a dotted field (``noise.rate``, ``optim.lr``, ``hp.q``) on cfg in place.

    ``source`` names where the value came from (``--set``, a TOML file, a grid file) for messages.
    """
    parts = path.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(obj, dict):
            if last:
                obj[part] = _coerce(value, None, obj.get(part), path, source)
            else:
                nxt = obj.setdefault(part, {})
                if not isinstance(nxt, dict):
                    raise UsageError(f"{_where(source, path, value)}: '{'.'.join(parts[:i + 1])}' is a "
                                     f"value, not a section")
                obj = nxt
            continue
        names = _field_types(type(obj))
        if part not in names:
            where = ".".join(parts[:i]) or "the run config"
            raise UsageError(f"{_where(source, path, value)}: unknown config key '{path}': {where} has "
                             f"no field '{part}'. Valid: {', '.join(sorted(names))}")
        current = getattr(obj, part)
        if last:
            if dataclasses.is_dataclass(current) or isinstance(current, dict):
                if not isinstance(value, dict):
                    raise UsageError(f"{_where(source, path, value)}: '{path}' is a section; set its "
                                     f"fields ({path}.NAME=VALUE)")
                for k, v in value.items():
                    apply_override(cfg, f"{path}.{k}", v, source)
            else:
                setattr(obj, part, _coerce(value, names[part], current, path, source))
        else:
            if not (dataclasses.is_dataclass(current) or isinstance(current, dict)):
                raise UsageError(f"{_where(source, path, value)}: '{'.'.join(parts[:i + 1])}' is a "
                                 f"value, not a section")
            obj = current


def check_config(cfg: RunConfig) -> None:
    """Every field of the run config within its declared range (UsageError naming the field)."""
    try:
        check_fields(cfg)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    if not isinstance(cfg.hp, dict) or not isinstance(cfg.mask, dict):
        raise UsageError("hp and mask must be sections of NAME = VALUE settings")


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
                 toml_file: str | None = None, source: str = "the command line") -> RunConfig:
    """Defaults <- TOML file <- base dict (CLI flags) <- ``--set key=value`` strings.

    ``source`` names where ``base`` came from, for messages (a grid file passes its name)."""
    cfg = RunConfig()
    layers: list[tuple[dict[str, Any], str]] = []
    if toml_file:
        path = Path(toml_file)
        if not path.is_file():
            raise UsageError(f"config file not found: {toml_file}")
        try:
            layers.append((tomllib.loads(path.read_text()), f"config file {toml_file}"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{toml_file}: invalid TOML: {e}") from None
    if base:
        layers.append((base, source))
    for layer, source in layers:
        for key, value in flatten(layer).items():
            apply_override(cfg, key, value, source)
    for item in sets or []:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got '{item}'")
        key, value = item.split("=", 1)
        apply_override(cfg, key.strip(), value, "--set")
    return cfg


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from its to_dict() form (e.g. a stored config.json)."""
    d = dict(d)
    noise = NoiseConfig(**d.pop("noise"))
    optim = OptimConfig(**d.pop("optim"))
    known = _field_types(RunConfig)
    return RunConfig(noise=noise, optim=optim, **{k: v for k, v in d.items() if k in known})


# ----- the fields' own documentation, for the command line's help ------------------------------

@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of a config dataclass: the string literal written under each field
    (read from the class's source, where the docstrings live)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    out: dict[str, str] = {}
    for st, nxt in zip(body, body[1:]):
        if (isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            out[st.target.id] = inspect.cleandoc(nxt.value.value)
    return out


def field_help(cls: type, name: str) -> str:
    """A field's help for the command line: the first paragraph of its docstring, one line, and
    its valid values (from its ``param`` declaration), e.g. "Training epochs. (an integer >= 1)"."""
    doc = " ".join(field_docs(cls).get(name, "").split("\n\n")[0].split()).replace("``", "")
    chk = field_check(next(f for f in fields(cls) if f.name == name))
    # a range or a list of choices says something; "a string" or "true or false" does not
    valid = f" ({chk.describe()})" if chk is not None and chk.describe() not in ("a string", "true or false") else ""
    return (doc + valid).replace("%", "%%")  # argparse formats help with %
