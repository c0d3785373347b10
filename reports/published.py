"""Published numbers that a report may show next to ours, with their sources.

A published number is only shown for the *same protocol*: the key is
(protocol_name, dataset, noise_label, method) and each entry says which accuracy it is
(test/acc_best = best epoch, test/acc_last = last epoch(s)). Only two protocols match published
tables (see ../shared/REFERENCE.md):

* ``cifar-n``: the CIFAR-N leaderboard (ResNet-34, best test accuracy over 100 epochs);
* ``cifar10-dividemix``: DivideMix, Table 1 (PreAct ResNet-18, 300 epochs). Its "sym" noise draws
  the new label from *all* classes, the true one included; in this suite that kind is
  ``sym_incl`` (measured rate about r * 9/10 on CIFAR-10), so those numbers are keyed by
  ``sym_incl-XX%``, never by our ``sym-XX%``.

Everything else shows no published number. Values are fractions (like every accuracy in the
reports); ``text`` keeps the digits exactly as published.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    value: float
    """The published accuracy as a fraction in [0, 1]."""
    text: str
    """The number exactly as printed in the source (percent)."""
    source: str
    """Key into SOURCES."""


SOURCES: dict[str, str] = {
    "cifar-n": ("CIFAR-N leaderboard (Wei et al., ICLR 2022, noisylabels.com / UCSC-REAL/cifar-10-100n): "
                "ResNet-34, best test accuracy over 100 epochs (best epoch = oracle selection)."),
    "dividemix": ("DivideMix (Li et al., ICLR 2020), Table 1: PreAct ResNet-18, 300 epochs; "
                  "'best' = best test epoch (oracle), 'last' = mean of the last 10 epochs; its "
                  "symmetric noise includes the true class (sym_incl here). Its asym-40% maps r*N "
                  "samples drawn from all classes (about half of r flips)."),
}

# (protocol, dataset, noise_label, method) -> {metric: Published}
PUBLISHED: dict[tuple[str, str, str, str], dict[str, Published]] = {}


def _add(protocol: str, dataset: str, label: str, method: str, metric: str, text: str,
         source: str) -> None:
    key = (protocol, dataset, label, method)
    PUBLISHED.setdefault(key, {})[metric] = Published(float(text) / 100.0, text, source)


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


_INDEX = {(p, _norm(d), _norm_label(lab), _norm(m)): v for (p, d, lab, m), v in PUBLISHED.items()}


def lookup(protocol: str, dataset: str, noise_label: str, method: str,
           metric: str) -> Published | None:
    """The published number for exactly this protocol/setting/method/accuracy, or None.

    Method and dataset names are compared ignoring case, '-' and '_' (``co-teaching`` ==
    ``coteaching``, ``cifar-10`` == ``cifar10``); the protocol name must match exactly.
    """
    entry = _INDEX.get((str(protocol), _norm(dataset), _norm_label(noise_label), _norm(method)))
    if entry is None:
        return None
    return entry.get(metric)
