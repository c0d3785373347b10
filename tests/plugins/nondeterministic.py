"""Method card: a deliberately broken plugin method for the tests: its loss draws from Python's
unseeded global generator, so the same seed does not give the same numbers."""
import random
from dataclasses import dataclass

from methods.base import register_method
from methods.per_sample import ce_per_sample
from methods.single import SingleNetwork


@dataclass
class NoisyConfig:
    pass


@register_method("broken_nondeterministic")
class Nondeterministic(SingleNetwork):
    Config = NoisyConfig

    def loss(self, logits, y):
        return ce_per_sample(logits, y) * (1.0 + random.SystemRandom().random())
