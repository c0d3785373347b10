"""Published numbers that a report may show next to ours, with their sources.

A published number is only attached to runs of the *same protocol*, checked field by field:
each entry belongs to a published protocol (``PROTOCOLS``: backbone, epochs, optimiser and
schedule, batch size, augmentation, training-set and test-set size) and is keyed by
(dataset, noise_label, method, accuracy). The noise label carries the noise convention
(``sym`` vs ``sym_incl``, ``-exact`` for exact per-class counts) and the accuracy the selection
rule (test/acc_best = best epoch, test/acc_last = last epoch(s)). A run whose resolved protocol
differs in any compared field gets the mismatch reported instead of the number
(:func:`match`). The name a preset gives its protocol plays no part. Published protocols
(see ../shared/REFERENCE.md):

* ``cifar-n``: the CIFAR-N leaderboard (ResNet-34, best test accuracy over 100 epochs);
* ``cifar10-dividemix``: DivideMix, Table 1 (PreAct ResNet-18, 300 epochs). Its "sym" noise draws
  the new label from *all* classes, the true one included; in this suite that kind is
  ``sym_incl`` (measured rate about r * 9/10 on CIFAR-10), so those numbers are keyed by
  ``sym_incl-XX%``, never by our ``sym-XX%``.

Everything else shows no published number. Values are fractions (like every accuracy in the
reports); ``text`` keeps the digits exactly as published.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Published:
    value: float
    """The published accuracy as a fraction in [0, 1]."""
    text: str
    """The number exactly as printed in the source (percent)."""
    source: str
    """Key into SOURCES."""
    protocol: str = ""
    """Key into PROTOCOLS: the protocol the number was produced under."""


COMPARED = ("model", "epochs", "optimizer", "lr", "momentum", "weight_decay", "schedule",
            "milestones", "batch_size", "augment", "subset", "test_subset")
"""The protocol fields a run must share with a published number (as in config.json's protocol)."""

PROTOCOLS: dict[str, dict[str, Any]] = {
    # UCSC-REAL/cifar-10-100n main.py: ResNet-34, SGD 0.1 momentum 0.9 wd 5e-4, /10 at epoch 60
    # of 100, batch 128, random crop + flip, the whole 50,000-image training set
    "cifar-n": {"model": "resnet34", "epochs": 100, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                "weight_decay": 5e-4, "schedule": "step", "milestones": [60], "batch_size": 128,
                "augment": "crop+flip", "subset": 0, "test_subset": 0},
    # LiJunnan1992/DivideMix Train_CIFAR.py: PreAct ResNet-18, SGD 0.02 momentum 0.9 wd 5e-4,
    # /10 at epoch 150 of 300, batch 64, random crop + flip
    "cifar10-dividemix": {"model": "preact_resnet18", "epochs": 300, "optimizer": "sgd", "lr": 0.02,
                          "momentum": 0.9, "weight_decay": 5e-4, "schedule": "step",
                          "milestones": [150], "batch_size": 64, "augment": "crop+flip",
                          "subset": 0, "test_subset": 0},
}


SOURCES: dict[str, str] = {
    "cifar-n": ("CIFAR-N leaderboard (Wei et al., ICLR 2022, noisylabels.com / UCSC-REAL/cifar-10-100n): "
                "ResNet-34, best test accuracy over 100 epochs (best epoch = oracle selection)."),
    "dividemix": ("DivideMix (Li et al., ICLR 2020), Table 1: PreAct ResNet-18, 300 epochs; "
                  "'best' = best test epoch (oracle), 'last' = mean of the last 10 epochs; its "
                  "symmetric noise includes the true class (sym_incl here). Its asym-40% maps r*N "
                  "samples drawn from all classes (about half of r flips)."),
}

# (dataset, noise_label, method) -> {metric: [Published, ...]} (one per published protocol)
PUBLISHED: dict[tuple[str, str, str], dict[str, list[Published]]] = {}


def _add(protocol: str, dataset: str, label: str, method: str, metric: str, text: str,
         source: str) -> None:
    key = (dataset, label, method)
    PUBLISHED.setdefault(key, {}).setdefault(metric, []).append(
        Published(float(text) / 100.0, text, source, protocol))


# CIFAR-N leaderboard: aggre / rand1 / worst (CIFAR-10N) and noisy (CIFAR-100N), best epoch.
_CIFAR_N = {
    "ce": ("87.77", "85.02", "77.69", "55.50"),
    "gce": ("87.85", "87.61", "80.66", "56.73"),
    "coteaching": ("91.20", "90.33", "83.83", "60.37"),
    "dividemix": ("95.01", "95.16", "92.56", "71.13"),
}
for _m, (_aggre, _rand1, _worst, _c100) in _CIFAR_N.items():
    _add("cifar-n", "cifar10", "human-aggre", _m, "test/acc_best", _aggre, "cifar-n")
    _add("cifar-n", "cifar10", "human-rand1", _m, "test/acc_best", _rand1, "cifar-n")
    _add("cifar-n", "cifar10", "human-worst", _m, "test/acc_best", _worst, "cifar-n")
    _add("cifar-n", "cifar100", "human-noisy", _m, "test/acc_best", _c100, "cifar-n")

# DivideMix Table 1, CIFAR-10: (best, last).
_DIVIDEMIX = {
    "sym_incl-20%": ("96.1", "95.7"),
    "sym_incl-50%": ("94.6", "94.4"),
    "sym_incl-80%": ("93.2", "92.9"),
    "sym_incl-90%": ("76.0", "75.4"),
    "asym-40%": ("93.4", "92.1"),
}
for _label, (_best, _last) in _DIVIDEMIX.items():
    _add("cifar10-dividemix", "cifar10", _label, "dividemix", "test/acc_best", _best, "dividemix")
    _add("cifar10-dividemix", "cifar10", _label, "dividemix", "test/acc_last", _last, "dividemix")


def _norm(s: str) -> str:
    return str(s).strip().lower().replace("_", "").replace("-", "").replace(" ", "")


def _norm_label(s: str) -> str:
    return str(s).strip().lower().replace(" ", "")


_INDEX: dict[tuple[str, str, str], dict[str, list[Published]]] = {}
for (_d, _lab, _m), _v in PUBLISHED.items():
    _INDEX[(_norm(_d), _norm_label(_lab), _norm(_m))] = _v


@dataclass(frozen=True)
class Match:
    """A published number for a setting and method, and how the runs' protocol differs from its."""

    published: Published
    mismatches: tuple[str, ...] = field(default=())
    """'field ours vs theirs' for every compared field that differs; empty: the same protocol."""

    @property
    def comparable(self) -> bool:
        return not self.mismatches


def compare(ours: dict[str, Any] | None, theirs: dict[str, Any]) -> tuple[str, ...]:
    """The compared protocol fields where ``ours`` (a run's resolved protocol) differs."""
    if not ours:
        return ("protocol of the runs not recorded",)
    out = []
    for k in COMPARED:
        a, b = ours.get(k), theirs.get(k)
        same = (a == b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                           and not isinstance(a, bool) and abs(float(a) - float(b)) <= 1e-12)
        if not same:
            out.append(f"{k} {a!r} vs {b!r}")
    return tuple(out)


def match(protocol: dict[str, Any] | None, dataset: str, noise_label: str, method: str,
          metric: str) -> Match | None:
    """The published number for this setting, method and accuracy, checked against ``protocol``
    (the runs' resolved protocol fields; a field whose runs disagree holds a 'MIXED: ...' string,
    which matches nothing). None when nothing is published for the setting at all; otherwise the
    closest published protocol's number with its mismatches (empty when the protocols agree).

    Method and dataset names are compared ignoring case, '-' and '_' (``co-teaching`` ==
    ``coteaching``, ``cifar-10`` == ``cifar10``).
    """
    entry = _INDEX.get((_norm(dataset), _norm_label(noise_label), _norm(method)))
    if not entry or metric not in entry:
        return None
    found = [Match(p, compare(protocol, PROTOCOLS[p.protocol])) for p in entry[metric]]
    return min(found, key=lambda m: len(m.mismatches))


def lookup(protocol: dict[str, Any] | None, dataset: str, noise_label: str, method: str,
           metric: str) -> Published | None:
    """The published number only when ``protocol`` matches its protocol field by field."""
    m = match(protocol, dataset, noise_label, method, metric)
    return m.published if m is not None and m.comparable else None
