"""Method card: a plugin that leaves a mark when imported (the tests check that report, ls and
merge never import it): it writes the file named by $SENTINEL_PLUGIN_MARK."""
import os
from dataclasses import dataclass
from pathlib import Path

from methods.base import register_method
from methods.per_sample import ce_per_sample
from methods.single import SingleNetwork

if os.environ.get("SENTINEL_PLUGIN_MARK"):
    Path(os.environ["SENTINEL_PLUGIN_MARK"]).write_text("imported")


@dataclass
class MarkConfig:
    pass


@register_method("marked_ce")
class Marked(SingleNetwork):
    Config = MarkConfig

    def loss(self, logits, y):
        return ce_per_sample(logits, y)
