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

* ``losses-cifar10`` / ``losses-cifar100``: the loss-family protocol of APL / ANL (8-layer CNN,
  120 epochs / ResNet-34, 200 epochs; last epoch), the values of the epsilon-softmax paper's
  Table 2 and (ANL-CE) of the JAL paper, keyed by ``sym-XX%-exact`` / ``asym-XX%-exact``: their
  code flips exact per-class counts among the other classes.

* ``sed-cifar100``: SED's Table 1 / Table 3 (SevenCNN, 100 epochs, last-10 mean; its
  "CIFAR100N" is synthetic noise on CIFAR-100);
* ``elr-plus-cifar10`` / ``elr-plus-cifar100``: ELR+'s Table 2 (selected and best epoch).
* ``clothing1m-dividemix``, ``webvision-dividemix``, ``webvision-elr-plus``: the real-world
  protocols of DivideMix and ELR+ (benchmark/config/presets/clothing1m.toml, webvision-*.toml).

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
            "milestones", "gamma", "batch_size", "augment", "subset", "test_subset", "grad_clip",
            "eta_min", "restart_every", "nesterov")
"""The protocol fields a run must share with a published number (as in config.json's protocol)."""

ABSENT_MEANS = {"grad_clip": 0.0, "eta_min": 0.0, "restart_every": 0, "gamma": 0.1, "nesterov": False}
"""Protocol fields a run records only when set: absent (on either side) means this value."""

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
    # HanxunH/Active-Passive-Losses configs/cifar10/sym/*.yaml, trainer.py:44, dataset.py:283-290:
    # the 8-layer ToyModel, SGD 0.01 momentum 0.9 wd 1e-4, cosine over 120 epochs, batch 128,
    # gradient clip 5, crop + flip, all 50,000 training images
    "losses-cifar10": {"model": "cnn8", "epochs": 120, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
                       "weight_decay": 1e-4, "schedule": "cosine", "milestones": [], "batch_size": 128,
                       "augment": "crop+flip", "subset": 0, "test_subset": 0, "grad_clip": 5.0},
    # shengliu66/ELR ELR/config_cifar10.json: ResNet-34, SGD 0.02 wd 1e-3, warm restarts every 10
    # epochs to 1e-3, 150 epochs, batch 128; config_cifar10_asym.json (120 epochs, x0.01 at 40, 80)
    # and config_cifar100.json (150 epochs, x0.01 at 80, 120)
    "elr-cifar10": {"model": "resnet34", "epochs": 150, "optimizer": "sgd", "lr": 0.02, "momentum": 0.9,
                    "weight_decay": 1e-3, "schedule": "cosine_restarts", "milestones": [],
                    "batch_size": 128, "augment": "crop+flip", "subset": 0, "test_subset": 0,
                    "restart_every": 10, "eta_min": 1e-3},
    "elr-cifar10-asym": {"model": "resnet34", "epochs": 120, "optimizer": "sgd", "lr": 0.02,
                         "momentum": 0.9, "weight_decay": 1e-3, "schedule": "step",
                         "milestones": [40, 80], "gamma": 0.01, "batch_size": 128,
                         "augment": "crop+flip", "subset": 0, "test_subset": 0},
    "elr-cifar100": {"model": "resnet34", "epochs": 150, "optimizer": "sgd", "lr": 0.02, "momentum": 0.9,
                     "weight_decay": 1e-3, "schedule": "step", "milestones": [80, 120], "gamma": 0.01,
                     "batch_size": 128, "augment": "crop+flip", "subset": 0, "test_subset": 0},
    # the same for CIFAR-100 (configs/cifar100/sym/*.yaml; dataset.py:255-263 adds RandomRotation(20)):
    # ResNet-34 (as the ANL repository and the epsilon-softmax paper), SGD 0.1, wd 1e-5, 200 epochs
    "losses-cifar100": {"model": "resnet34", "epochs": 200, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                        "weight_decay": 1e-5, "schedule": "cosine", "milestones": [], "batch_size": 128,
                        "augment": "crop+flip+rotate20", "subset": 0, "test_subset": 0,
                        "grad_clip": 5.0},
    # SED main.py / util.py / README full run: SevenCNN, SGD (nesterov) momentum 0.9 wd 5e-4, lr 0.05
    # with warm-up and cosine, 100 epochs, batch 128, crop + flip (the sed preset records it so)
    "sed-cifar100": {"model": "sevencnn", "epochs": 100, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
                     "weight_decay": 5e-4, "schedule": "cosine", "milestones": [], "batch_size": 128,
                     "augment": "crop+flip", "subset": 0, "test_subset": 0},
    # ELR_plus/config_cifar10.json / config_cifar100.json: 2x PreAct ResNet-18, SGD 0.02 momentum 0.9
    # wd 5e-4, x0.1 at 150 of 200 (CIFAR-100: at 200 of 250), batch 128, crop + flip
    "elr-plus-cifar10": {"model": "preact_resnet18", "epochs": 200, "optimizer": "sgd", "lr": 0.02,
                         "momentum": 0.9, "weight_decay": 5e-4, "schedule": "step", "milestones": [150],
                         "batch_size": 128, "augment": "crop+flip", "subset": 0, "test_subset": 0},
    "elr-plus-cifar100": {"model": "preact_resnet18", "epochs": 250, "optimizer": "sgd", "lr": 0.02,
                          "momentum": 0.9, "weight_decay": 5e-4, "schedule": "step", "milestones": [200],
                          "batch_size": 128, "augment": "crop+flip", "subset": 0, "test_subset": 0},
    # DivideMix Train_clothing1M.py: ImageNet ResNet-50, SGD 0.002 momentum 0.9 wd 1e-3, /10 from
    # 0-based epoch 40 of 0..80, batch 32, Resize 256 + RandomCrop 224 + flip
    "clothing1m-dividemix": {"model": "resnet50_imagenet", "epochs": 81, "optimizer": "sgd", "lr": 0.002,
                             "momentum": 0.9, "weight_decay": 1e-3, "schedule": "step", "milestones": [40],
                             "batch_size": 32, "augment": "crop+flip", "subset": 0, "test_subset": 0},
    # DivideMix Train_webvision.py: InceptionResNetV2 from scratch, SGD 0.01 momentum 0.9 wd 5e-4,
    # /10 from 0-based epoch 40 of 0..80, batch 32, 299 crops of the 320-pixel images
    "webvision-dividemix": {"model": "inception_resnet_v2", "epochs": 81, "optimizer": "sgd", "lr": 0.01,
                            "momentum": 0.9, "weight_decay": 5e-4, "schedule": "step", "milestones": [40],
                            "batch_size": 32, "augment": "crop+flip", "subset": 0, "test_subset": 0},
    # ELR_plus/config_webvision.json: 2x InceptionResNetV2, SGD 0.02 momentum 0.9 wd 5e-4, x0.1 at
    # 50 of 100, batch 32, RandomCrop 227 of the 256-pixel images + flip
    "webvision-elr-plus": {"model": "inception_resnet_v2", "epochs": 100, "optimizer": "sgd", "lr": 0.02,
                           "momentum": 0.9, "weight_decay": 5e-4, "schedule": "step", "milestones": [50],
                           "batch_size": 32, "augment": "crop+flip", "subset": 0, "test_subset": 0},
}


SOURCES: dict[str, str] = {
    "cifar-n": ("CIFAR-N leaderboard (Wei et al., ICLR 2022, noisylabels.com / UCSC-REAL/cifar-10-100n): "
                "ResNet-34, best test accuracy over 100 epochs (best epoch = oracle selection)."),
    "dividemix": ("DivideMix (Li et al., ICLR 2020), Table 1: PreAct ResNet-18, 300 epochs; "
                  "'best' = best test epoch (oracle), 'last' = mean of the last 10 epochs; its "
                  "symmetric noise includes the true class (sym_incl here). Its asym-40% maps r*N "
                  "samples drawn from all classes (about half of r flips)."),
    "eps-softmax": ("epsilon-softmax (Wang et al., NeurIPS 2024), Table 2: the APL / ANL loss-family "
                    "protocol (8-layer CNN 120 epochs / ResNet-34 200 epochs, SGD, cosine, gradient "
                    "clip 5), test accuracy of the last epoch, mean of 3 seeds; it reprints CE, GCE, "
                    "SCE and NCE+RCE under exactly this protocol."),
    "elr": ("ELR (Liu et al., NeurIPS 2020), shengliu66/ELR README.md:29-39, ResNet-34. The README "
            "does not say which row used which config nor which accuracy it reports: the 'ELR (cosine "
            "annealing)' row is attached to the warm-restart CIFAR-10 symmetric config and the 'ELR' "
            "row to the multi-step configs (an inference), as the accuracy at the best noisy-validation "
            "epoch (the checkpoint the official trainer keeps). Symmetric noise includes the true class."),
    "sed": ("SED (Sheng et al., ECCV 2024), Table1.png and Table3.png of NUST-Machine-Intelligence-"
            "Laboratory/SED: the 7-layer CNN, mean test accuracy of the last 10 epochs; 'CIFAR100N' "
            "there is synthetic closed-set noise on CIFAR-100 (sym among the other classes; asym = pair "
            "flip), not the human CIFAR-100N. The baseline rows of that table (CE as 'Standard') are "
            "attached to this protocol's CE; the table does not state their settings."),
    "elr-plus": ("ELR+ (Liu et al., NeurIPS 2020), Table 2: two PreAct ResNet-18s; 'ELR+' = test "
                 "accuracy of the checkpoint chosen on a 10% held-out noisy split (the selected "
                 "accuracy here), 'ELR+*' = best test epoch (oracle). Symmetric noise includes the true "
                 "class (sym_incl here)."),
    "cifar-n-selection": ("CIFAR-N leaderboard rows of Co-teaching+ and JoCoR (Wei et al., ICLR 2022), as "
                          "mirrored by PapersWithCode (the leaderboard site could not be read): best test "
                          "epoch; JoCoR's worst and CIFAR-100N values could not be read and are not shown."),
    "dividemix-real": ("DivideMix (Li et al., ICLR 2020), Tables 3 and 4, as reprinted by later "
                       "READMEs (the official README has no results): Clothing1M 74.76 = the sum of "
                       "the two networks' logits, each network's checkpoint chosen on the 14,313 "
                       "clean-val images (attached to the suite's selected accuracy, chosen on noisy "
                       "validation); mini-WebVision top-1 77.32 on the WebVision val (ILSVRC12 "
                       "75.20): the code tests every epoch without selection, attached to the best "
                       "epoch (oracle)."),
    "elr-plus-real": ("ELR+ (Liu et al., NeurIPS 2020), Table 3, via secondary tables: mini-WebVision "
                      "top-1 77.78 on the WebVision val (ILSVRC12 70.29); the official trainer "
                      "monitors that set, the suite's test set: attached to the best epoch (oracle)."),
    "jal": ("JAL (ICCV 2025) results table, the same loss-family protocol, last epoch: ANL-CE's "
            "row (its sym 80% value is about 1 point above the ANL paper's own 61.27)."),
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


# The loss-family protocol: clean, sym 20/40/60/80% and asym 10/20/30/40% (last epoch).
_LOSS_LABELS = ("none", "sym-20%-exact", "sym-40%-exact", "sym-60%-exact", "sym-80%-exact",
                "asym-10%-exact", "asym-20%-exact", "asym-30%-exact", "asym-40%-exact")
_LOSSES = {  # epsilon-softmax Table 2, in the order of _LOSS_LABELS; None: not reported
    "cifar10": {
        "ce": ("90.50", "75.47", "58.46", "39.16", "18.95", "86.98", "83.82", "79.35", "75.28"),
        "gce": ("89.42", "86.87", "82.24", "68.43", "25.82", "88.43", "86.17", "80.72", "74.01"),
        "sce": ("91.30", "87.58", "79.47", "59.14", "25.88", "89.87", "86.48", "81.30", "74.99"),
        "nce_rce": ("91.03", "88.41", "85.13", "79.20", "55.28", "90.25", "88.11", "85.35", "79.43"),
    },
    "cifar100": {
        "ce": ("70.79", "56.21", "39.31", "22.38", "7.33", None, None, None, None),
        "gce": ("70.57", "64.55", "56.60", "45.19", "19.85", "63.94", "60.89", "53.36", "40.82"),
        "sce": ("70.41", "55.23", "40.23", "21.44", "7.63", "64.54", "57.62", "50.17", "41.01"),
        "nce_rce": ("67.89", "64.60", "58.64", "45.25", "24.87", "66.20", "63.18", "55.05", "41.21"),
    },
}
for _d, _rows in _LOSSES.items():
    for _m, _vals in _rows.items():
        for _label, _text in zip(_LOSS_LABELS, _vals):
            if _text is not None:
                _add(f"losses-{_d}", _d, _label, _m, "test/acc_last", _text, "eps-softmax")
_ANL = {"cifar10": {"sym-40%-exact": "87.16", "sym-80%-exact": "62.28", "asym-20%-exact": "89.09",
                    "asym-40%-exact": "77.99"},
        "cifar100": {"sym-40%-exact": "61.58", "sym-60%-exact": "52.09", "asym-30%-exact": "60.57",
                     "asym-40%-exact": "45.73"}}
for _d, _rows in _ANL.items():
    for _label, _text in _rows.items():
        _add(f"losses-{_d}", _d, _label, "anl_ce", "test/acc_last", _text, "jal")


# ELR README: CIFAR-10 "ELR (cosine annealing)" (sym) and "ELR" (asym 40%); CIFAR-100 "ELR".
for _label, _text in (("sym_incl-20%", "91.12"), ("sym_incl-40%", "91.43"), ("sym_incl-60%", "88.87"),
                      ("sym_incl-80%", "80.69")):
    _add("elr-cifar10", "cifar10", _label, "elr", "test/acc_at_best_val", _text, "elr")
_add("elr-cifar10-asym", "cifar10", "asym-40%", "elr", "test/acc_at_best_val", "90.12", "elr")
for _label, _text in (("sym_incl-20%", "74.21"), ("sym_incl-40%", "68.28"), ("sym_incl-60%", "59.28"),
                      ("sym_incl-80%", "29.78"), ("asym-40%", "73.71")):
    _add("elr-cifar100", "cifar100", _label, "elr", "test/acc_at_best_val", _text, "elr")


# CIFAR-N leaderboard, Co-teaching+ (aggre, rand1, worst, CIFAR-100N) and JoCoR (aggre, rand1).
for _label, _text in (("human-aggre", "90.61"), ("human-rand1", "89.70"), ("human-worst", "83.26")):
    _add("cifar-n", "cifar10", _label, "coteaching_plus", "test/acc_best", _text, "cifar-n-selection")
_add("cifar-n", "cifar100", "human-noisy", "coteaching_plus", "test/acc_best", "57.88", "cifar-n-selection")
for _label, _text in (("human-aggre", "91.44"), ("human-rand1", "90.30")):
    _add("cifar-n", "cifar10", _label, "jocor", "test/acc_best", _text, "cifar-n-selection")

# SED Table 1 (sym 20/80%, asym = pair flip 40%) and Table 3 (sym 50%), CIFAR-100, last-10 mean.
for _label, _sed, _ce in (("sym-20%", "66.50", "35.14"), ("sym-80%", "38.15", "4.41"),
                          ("pairflip-40%", "58.29", "27.29"), ("sym-50%", "62.65", "34.10")):
    _add("sed-cifar100", "cifar100", _label, "sed", "test/acc_last10_mean", _sed, "sed")
    _add("sed-cifar100", "cifar100", _label, "ce", "test/acc_last10_mean", _ce, "sed")

# ELR+ Table 2: (ELR+ selected, ELR+* best) per setting.
_ELR_PLUS = {"cifar10": {"sym_incl-20%": ("94.6", "95.8"), "sym_incl-50%": ("93.8", "94.8"),
                         "sym_incl-80%": ("91.1", "93.3"), "sym_incl-90%": ("75.2", "78.7"),
                         "asym-40%": ("92.7", "93.0")},
             "cifar100": {"sym_incl-20%": ("77.5", "77.6"), "sym_incl-50%": ("72.4", "73.6"),
                          "sym_incl-80%": ("58.2", "60.8"), "sym_incl-90%": ("30.8", "33.4")}}
for _d, _rows in _ELR_PLUS.items():
    for _label, (_sel, _best) in _rows.items():
        _add(f"elr-plus-{_d}", _d, _label, "elr_plus", "test/acc_at_best_val", _sel, "elr-plus")
        _add(f"elr-plus-{_d}", _d, _label, "elr_plus", "test/acc_best", _best, "elr-plus")


_add("clothing1m-dividemix", "clothing1m", "none", "dividemix", "test/acc_at_best_val", "74.76", "dividemix-real")
_add("webvision-dividemix", "webvision_mini", "none", "dividemix", "test/acc_best", "77.32", "dividemix-real")
_add("webvision-elr-plus", "webvision_mini_227", "none", "elr_plus", "test/acc_best", "77.78", "elr-plus-real")


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
        a, b = ours.get(k, ABSENT_MEANS.get(k)), theirs.get(k, ABSENT_MEANS.get(k))
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

