"""The method contract, the context a method is handed, and the decorator registry.

The runner owns the data, the clean labels, evaluation and the store. A method owns its networks
and optimisers and trains them one epoch at a time, from the noisy labels only.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from methods.mask import MASK_REVISION
from methods.params import ConfigError, check_fields, param


POLICIES = ("autoaugment", "randaugment", "none")
POOLS = ("disc", "fixmatch")


@dataclass(frozen=True)
class StrongSpec:
    """The strong view a method asks for through ``RunContext.strong_view`` (the protocol's weak
    crop/flip first, then this). The engine that renders it lives in the harness
    (benchmark's strong augmentation), which imports this from here."""

    policy: str = param("autoaugment", choices=POLICIES)
    """autoaugment (CIFAR-10 policy), randaugment (FixMatch-form RandAugment) or none."""
    pool: str = param("disc", choices=POOLS)
    """randaugment: the operation pool, DISC's new_augment_pool or FixMatch's."""
    n: int = param(2, ge=1, le=16)
    """randaugment: operations per image, drawn with replacement."""
    m: int = param(10, ge=2, le=10)
    """randaugment: level bound; each operation's level is drawn from 1..m-1."""
    cutout_frac: float = param(-1.0, ge=0.0, le=1.0, also=(-1.0,))
    """Side of the final grey Cutout square as a fraction of the image side; -1: the pool's
    (disc 0.15, fixmatch 0.5; AutoAugment none), 0: no Cutout."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunContext:
    """What a method may see. There are no clean labels here, by construction."""

    train_x: Tensor
    """(N, C, H, W) uint8 training images on ``device`` (validation split excluded)."""
    noisy_labels: Tensor
    """(N,) int64 noisy training labels on ``device``."""
    num_classes: int
    """Number of classes C."""
    epochs: int
    """Total training epochs of the run (schedules scale to it)."""
    batch_size: int
    """Mini-batch size."""
    eval_batch_size: int
    """Batch size for passes without gradients (per-sample losses)."""
    device: torch.device
    """Where data and models live."""
    noise_rate: float
    """The nominal noise rate of the spec (oracle knowledge; methods that use it must record it)."""
    noise_kind: str
    """The noise kind (DivideMix adds a penalty for asymmetric noise, as published)."""
    build_model: Callable[[int], nn.Module]
    """build_model(k): a fresh backbone on ``device``, initialised from the init stream with key k."""
    make_optimizer: Callable[..., torch.optim.Optimizer]
    """make_optimizer(params, weight_decay=None): the protocol's optimiser (its gradient clipping
    included); a method that replaces the protocol's L2 weight decay by a regulariser of its own
    passes weight_decay (ANL-CE: 0) and records that it did."""
    set_epoch_lr: Callable[..., float]
    """set_epoch_lr(opt, epoch, epochs=None): apply the protocol's schedule for 1-based ``epoch``
    of ``epochs`` (default: the run's; a method with stages passes a stage's local epoch and
    length, so each stage runs the whole schedule); returns the lr."""
    augment: Callable[[Tensor, torch.Generator], Tensor]
    """augment(x_uint8 (B,C,H,W), gen) -> float (B,C,H,W): the protocol's augmentation + normalisation."""
    normalise: Callable[[Tensor], Tensor]
    """normalise(x_uint8 (B,C,H,W)) -> float (B,C,H,W), no augmentation."""
    generator: Callable[[int, int], torch.Generator]
    """generator(epoch, stream): a torch.Generator on ``device`` seeded from the order stream.

    Re-seeded per epoch so that a resumed run draws exactly what an uninterrupted one draws."""

    noise_transition: Tensor | None = None
    """(C, C) float32 realised transition matrix of the run's noise artifact, T[i, j] = fraction
    of true class i labelled j. Oracle knowledge (it is computed from the clean labels): only a
    method asked to use it may read it (forward_t with estimator = oracle), and it records so."""

    strong_view: Callable[[StrongSpec], Callable[[Tensor, torch.Generator], Tensor]] | None = None
    """strong_view(spec: StrongSpec) -> f(x_uint8 (B,C,H,W), gen) ->
    float (B,C,H,W): the protocol's crop/flip, then the spec's strong policy per image, then
    normalisation (DISC's and SED's second view)."""

    @property
    def num_train(self) -> int:
        return int(self.noisy_labels.shape[0])


class Method:
    """Base class of a training method (epoch granularity).

    Subclasses set ``name`` (by @register_method) and ``Config`` (a dataclass of hyperparameters,
    each documented), and implement setup/train_epoch/predict_logits/state_dict/load_state_dict.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    revision: ClassVar[int] = 1
    """The version of this method's numbers: bumped (with a line in the method card) whenever a
    change moves its pinned results (tests/fingerprints.json). Part of the run id from 2 on, so a
    run trained by an older revision is never mistaken for one of this code (1 is not hashed:
    runs made before revisions existed keep their ids)."""

    def setup(self, ctx: RunContext, cfg: Any) -> None:
        raise NotImplementedError

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch (1-based). Returns metrics such as train/loss, train/acc."""
        raise NotImplementedError

    def preparation_epochs(self) -> int:
        """Epochs of work the method does before its first training epoch (default 0): Confident
        Learning's cross-validation, K networks x the run's epochs. The runner calls
        ``prepare_epoch(1..P)`` first, checkpointing between them as between epochs; nothing is
        evaluated or recorded per preparation epoch (metrics.csv rows are training epochs)."""
        return 0

    def prepare_epoch(self, step: int) -> dict[str, float]:
        """Preparation epoch ``step`` (1-based) of ``preparation_epochs()``; returns progress figures
        (shown, not recorded)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict_logits(self, x: Tensor) -> Tensor:
        """(B, C, H, W) float normalised -> (B, num_classes) logits, eval mode, no side effects."""
        raise NotImplementedError

    def clean_scores(self) -> Tensor | None:
        """(N,) per-sample P(clean) of the last division, if the method has one."""
        return None

    def selected(self) -> Tensor | None:
        """(N,) bool: the samples the method treated as clean in the last epoch, if it selects."""
        return None

    def corrected_labels(self) -> Tensor | None:
        """(N,) int64: the label the method now trains a sample on where it relabelled it, -1
        where it kept the given label; None for a method that never relabels. The runner scores
        it against the clean labels (correct/*); the method never sees that score."""
        return None

    def extra_metrics(self) -> dict[str, float]:
        """Metrics the runner should add after evaluation (e.g. a second network's accuracy)."""
        return {}

    def networks(self) -> list[nn.Module]:
        """The trained networks (for evaluation of each one and for checkpoint sizes)."""
        return []

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    @classmethod
    def make_config(cls, overrides: dict[str, Any], mask: dict[str, Any]) -> Any:
        """The resolved hyperparameters: Config defaults <- ``overrides`` (the run's ``hp``).

        ``mask`` holds the run's mask.* settings; methods without an edge mask refuse them.
        Masked methods override this to return a config that also carries the mask settings.
        """
        if mask:
            raise ConfigError(f"mask.* settings apply only to obd and X+obd methods, not '{cls.name}'")
        return config_with(cls.Config, overrides, cls.name)

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        """Tunable hyperparameters: name -> (low, high[, "log"]) or a list of choices.

        Every value of a range or list must be valid for the setting (a test checks this against
        the Config's declared ranges)."""
        return {}


_REGISTRY: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: ``@register_method("gce")`` adds the class to the registry under ``name``."""

    def deco(cls: type[Method]) -> type[Method]:
        if name in _REGISTRY:
            raise ValueError(f"method '{name}' registered twice")
        if not dataclasses.is_dataclass(cls.Config):
            raise TypeError(f"{cls.__name__}.Config must be a dataclass")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(_REGISTRY)


def get_method(name: str) -> type[Method]:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method '{name}'. Valid: {', '.join(list_methods())}")
    return _REGISTRY[name]


def resolve_hp(method: str, overrides: dict[str, Any], mask: dict[str, Any] | None = None) -> Any:
    """The method's resolved hyperparameters (see Method.make_config).

    Raises ConfigError (a KeyError and a ValueError) on an unknown method, key or invalid value."""
    return get_method(method).make_config(dict(overrides), dict(mask or {}))


def config_with(cls: type, overrides: dict[str, Any], owner: str, prefix: str = "hp.") -> Any:
    """An instance of dataclass ``cls`` with ``overrides``, every field checked (methods/params.py).

    Unknown keys and invalid values are refused with a ConfigError naming the setting and what is
    valid, so a bad hyperparameter stops a grid before its first run trains.
    """
    valid = {f.name: f for f in dataclasses.fields(cls)}
    bad = sorted(set(overrides) - set(valid))
    if bad:
        raise ConfigError(f"'{owner}' has no setting {', '.join(prefix + b for b in bad)}. "
                          f"Valid: {', '.join(sorted(valid)) or '(none)'}")
    out = dataclasses.replace(cls(), **overrides)
    check_fields(out, prefix, owner)
    return out


def revisions_of(name: str) -> dict[str, int]:
    """The revisions that define a method's numbers: {method: revision}, and for a masked method
    {its base: revision, "mask": the mask's revision} (methods/mask.py MASK_REVISION)."""
    cls = get_method(name)
    base = getattr(cls, "base_method", None)
    if getattr(cls, "masked", False) and base is not None:
        return {base.name: base.revision, "mask": MASK_REVISION}
    return {cls.name: cls.revision}
