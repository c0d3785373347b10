"""Method card: a deliberately broken plugin method for the tests: it forgets its optimiser's
state across a checkpoint, so a resumed run differs from an uninterrupted one."""
from dataclasses import dataclass

from methods.base import register_method
from methods.per_sample import ce_per_sample
from methods.single import SingleNetwork


@dataclass
class ForgetfulConfig:
    pass


@register_method("broken_noresume")
class NoResume(SingleNetwork):
    Config = ForgetfulConfig

    def loss(self, logits, y):
        return ce_per_sample(logits, y)

    def state_dict(self):
        return {"net": self.net.state_dict()}  # the optimiser's momentum is lost

    def load_state_dict(self, state):
        self.net.load_state_dict(state["net"])
