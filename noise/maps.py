"""Class maps for `asym` noise, keyed by dataset name.

A map {source: target} says that each sample of class `source` gets label `target` with
probability r; classes that are not keys keep their label. The nominal transition matrix built
from a map (noise.matrices.asym_matrix) is row-stochastic: T[i, j] = P(noisy = j | true = i).
"""
from __future__ import annotations

from noise.errors import NoiseSpecError

# CIFAR-10 (Patrini et al. 2017, used by Co-teaching, DivideMix and most later work):
# truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog.
_CIFAR10 = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}

# CIFAR-100: the next class within each block of 5 consecutive fine-label ids, circularly
# (4 -> 0, 9 -> 5, ...). The ids are alphabetical, so these blocks are not the real superclasses;
# this is the common convention all the same.
_CIFAR100 = {i: (i // 5) * 5 + (i + 1) % 5 for i in range(100)}

# MNIST (Patrini et al. 2017): 7 -> 1, 2 -> 7, 5 <-> 6, 3 -> 8. scikit-learn's digits has the
# same ten digit classes, so the MNIST map applies unchanged.
_DIGITS = {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}

# Fashion-MNIST: there is NO community-standard asym map; this one is our own design and is
# stored in every run's config through the dataset name. Each pair is chosen because the two
# classes look alike at 28x28 and are the most common confusions of trained classifiers:
#   0 T-shirt/top -> 6 Shirt     (both upper-body garments; shirts differ mainly by collar/buttons)
#   2 Pullover    -> 4 Coat      (long-sleeved upper-body garments of similar outline)
#   4 Coat        -> 2 Pullover  (the reverse confusion, so the pair is symmetric like cat<->dog)
#   5 Sandal      -> 7 Sneaker   (both low shoes)
#   9 Ankle boot  -> 7 Sneaker   (footwear; the boot's shaft is the only strong cue)
# Trouser (1), Shirt (6), Sneaker (7) and Bag (8) are not sources.
_FASHION_MNIST = {0: 6, 2: 4, 4: 2, 5: 7, 9: 7}

ASYM_MAPS: dict[str, dict[int, int]] = {
    "cifar10": _CIFAR10,
    "cifar100": _CIFAR100,
    "digits": _DIGITS,
    "fashion_mnist": _FASHION_MNIST,
}
"""dataset name -> {source class: target class} for asym noise."""


def asym_map(dataset: str) -> dict[int, int]:
    """The asym class map {source: target} of `dataset` (a copy, so callers cannot alter it).

    Raises NoiseSpecError listing the datasets that have a map when `dataset` has none.
    """
    if dataset not in ASYM_MAPS:
        raise NoiseSpecError(f"asym noise has no class map for dataset {dataset!r}; "
                             f"datasets with maps: {', '.join(sorted(ASYM_MAPS))}")
    return dict(ASYM_MAPS[dataset])
