"""Batched augmentation on the training device: the protocol's weak view (crop, flip, rotation,
normalisation: weak.py) and the strong views some methods ask for (AutoAugment, RandAugment,
Cutout on Kornia's operations: strong.py). What a method may ask for, ``StrongSpec``, belongs to
the method contract (methods/base.py); the engine that renders it is here.
"""
from benchmark.data.augment.strong import StrongAugmenter
from benchmark.data.augment.weak import Augmenter

__all__ = ["Augmenter", "StrongAugmenter"]
