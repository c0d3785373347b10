"""A plugin that tries to take a built-in's name: refused."""
from dataclasses import dataclass

from methods.base import register_method
from methods.single import SingleNetwork


@dataclass
class ClashConfig:
    pass


@register_method("gce")
class Clash(SingleNetwork):
    Config = ClashConfig
