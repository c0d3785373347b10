"""What noise to inject: the `NoiseSpec` dataclass and the checks that refuse bad specs early.

A spec is validated before any training starts, so a typo or an unlearnable setting fails in
seconds with a message that says what is wrong and what the valid choices are.

Transition matrices referred to here are row-stochastic: T[i, j] = P(noisy = j | true = i).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

from noise.errors import NoiseSpecError
from noise.maps import ASYM_MAPS

KINDS: tuple[str, ...] = ("none", "sym", "sym_incl", "pairflip", "asym", "idn", "human", "twin")
"""Every noise kind the suite knows."""

MODES: tuple[str, ...] = ("bernoulli", "exact")
"""How class-conditional labels are sampled: independent draws, or exact rounded counts."""

# kinds whose labels come from a real (human) label set rather than from a rate
_HUMAN_KINDS = ("human", "twin")
# kinds sampled from a class-conditional matrix, where `mode` matters
_MATRIX_KINDS = ("sym", "sym_incl", "pairflip", "asym", "twin")


@dataclass(frozen=True)
class NoiseSpec:
    """A complete description of the label noise of one run (the seed is kept separately)."""

    kind: str = "none"
    """One of KINDS: none, sym, sym_incl, pairflip, asym, idn, human, twin."""

    rate: float = 0.0
    """Noise rate r in [0, 1). sym: measured flip rate r; sym_incl: r of the labels are redrawn
    from all C classes (measured rate ~ r(C-1)/C); pairflip/asym: each sample of a source class
    flips with probability r; idn: mean per-sample flip rate. Must be 0 for none/human/twin."""

    mode: str = "bernoulli"
    """One of MODES. bernoulli: each label is drawn independently from its row of T. exact:
    every class gets exactly the largest-remainder rounding of n_i * T[i, j] labels j."""

    human_set: str = ""
    """Name of the real label set for human/twin (e.g. "aggre", "worst"); empty otherwise."""

    allow_unlearnable: bool = False
    """Permit rates at which a wrong class becomes at least as likely as the true one."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NoiseSpec":
        """Build a spec from a dict; unknown keys are refused rather than silently dropped."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise NoiseSpecError(f"unknown noise spec field(s) {unknown}; valid fields: {valid}")
        kw = dict(d)
        if "rate" in kw:
            try:
                kw["rate"] = float(kw["rate"])
            except (TypeError, ValueError):
                raise NoiseSpecError(f"noise rate must be a number, got {kw['rate']!r}") from None
        if "allow_unlearnable" in kw:
            kw["allow_unlearnable"] = bool(kw["allow_unlearnable"])
        if "human_set" in kw and kw["human_set"] is None:
            kw["human_set"] = ""
        return cls(**kw)

    def label(self) -> str:
        """Short human-readable name: "sym-40%", "pairflip-45%", "human-worst", "twin-aggre",
        "none"; a suffix "-exact" marks exact-count sampling where it applies."""
        if self.kind == "none":
            return "none"
        if self.kind in _HUMAN_KINDS:
            base = f"{self.kind}-{self.human_set}"
        else:
            # round first so 0.45 * 100 = 45.00000000000001 prints as "45"
            base = f"{self.kind}-{round(self.rate * 100, 4):g}%"
        if self.mode == "exact" and self.kind in _MATRIX_KINDS:
            base += "-exact"
        return base


def validate_spec(spec: NoiseSpec, *, dataset: str, num_classes: int,
                  human_sets: Sequence[str] = ()) -> None:
    """Raise NoiseSpecError with the reason if `spec` cannot be used on `dataset`.

    `num_classes` is C; `human_sets` names the real label sets available for `dataset`
    (empty when it has none). Checks are ordered from the most basic to the most specific.
    """
    if not isinstance(spec, NoiseSpec):
        raise NoiseSpecError(f"expected a NoiseSpec, got {type(spec).__name__}")
    if spec.kind not in KINDS:
        raise NoiseSpecError(f"unknown noise kind {spec.kind!r}; valid kinds: {', '.join(KINDS)}")
    if spec.mode not in MODES:
        raise NoiseSpecError(f"unknown noise mode {spec.mode!r}; valid modes: {', '.join(MODES)}")
    if isinstance(spec.rate, bool) or not isinstance(spec.rate, (int, float)):
        raise NoiseSpecError(f"noise rate must be a number, got {spec.rate!r}")
    r = float(spec.rate)
    if not math.isfinite(r) or not 0.0 <= r < 1.0:
        raise NoiseSpecError(f"noise rate {spec.rate!r} is outside [0, 1)")
    if int(num_classes) < 2:
        raise NoiseSpecError(f"noise needs at least 2 classes, got num_classes={num_classes}")
    C = int(num_classes)
    hint = "; pass --allow-unlearnable (allow_unlearnable=True) to run it anyway"

    if spec.kind in ("none", "human", "twin") and r != 0.0:
        why = ("none means clean labels" if spec.kind == "none"
               else "the rate of a real label set is measured, not chosen")
        raise NoiseSpecError(f"noise kind {spec.kind!r} takes rate 0 ({why}), got {r}")
    if spec.kind not in _HUMAN_KINDS and spec.human_set:
        raise NoiseSpecError(
            f"human_set={spec.human_set!r} only applies to kinds human/twin, not {spec.kind!r}")

    if spec.kind == "asym":
        if dataset not in ASYM_MAPS:
            raise NoiseSpecError(
                f"asym noise has no class map for dataset {dataset!r}; "
                f"datasets with maps: {', '.join(sorted(ASYM_MAPS))}")
        bad = [k for kv in ASYM_MAPS[dataset].items() for k in kv if not 0 <= k < C]
        if bad:
            raise NoiseSpecError(
                f"asym map of {dataset!r} uses class ids {sorted(set(bad))} >= num_classes={C}")

    if spec.kind in ("pairflip", "asym") and r >= 0.5 and not spec.allow_unlearnable:
        raise NoiseSpecError(
            f"{spec.kind} noise at rate {r} >= 0.5: the noisy class would become the majority "
            f"label of its source class, so the true class cannot be learned{hint}")
    if spec.kind == "sym" and r >= (C - 1) / C and not spec.allow_unlearnable:
        raise NoiseSpecError(
            f"sym noise at rate {r} >= (C-1)/C = {(C - 1) / C:.4g}: each wrong class gets "
            f"r/(C-1) = {r / (C - 1):.4g}, which reaches the true-class probability "
            f"1-r = {1 - r:.4g}, so the noisy class would become the majority{hint}")
    # sym_incl: the true class keeps 1 - r + r/C > r/C for every r < 1, which the range check
    # above already guarantees, so no further refusal is needed.
    if spec.kind == "idn" and r >= 0.5 and not spec.allow_unlearnable:
        raise NoiseSpecError(
            f"idn noise at rate {r} >= 0.5: many samples would flip more often than not, so the "
            f"noisy class would become the majority (Xia et al. 2020 use rates up to 0.5){hint}")

    if spec.kind in _HUMAN_KINDS:
        if not human_sets:
            raise NoiseSpecError(
                f"{spec.kind} noise needs real label sets, and dataset {dataset!r} has none "
                f"(CIFAR-10N / CIFAR-100N provide them for cifar10 / cifar100)")
        if spec.human_set not in human_sets:
            raise NoiseSpecError(
                f"unknown human_set {spec.human_set!r} for dataset {dataset!r}; "
                f"valid sets: {', '.join(human_sets)}")
