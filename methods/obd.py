"""OBD-mask: selective edge masking of the final classifier, alone (``obd``) and on every method.

Method card
- Paper: Zhang, Liu, Zhang, Cheng & Zheng, arXiv 2508.09697: v3 "Towards Label-Noise Resistant
  Learning via Optimal Brain Damage Masking"; v2 "Combating Noisy Labels via Dynamic Connection
  Masking". Claim: noisy labels hurt through the gradients they send back; masking the final
  classifier's least important edges keeps its fitting capacity and intercepts noisy gradients.
- Official code: none found (the paper says it will be released); every unknown is an option of
  methods/mask.py's MaskConfig, measured by benchmark/config/presets/obd-ablation.toml.
- Defaults and their source: score obd (v3), scope row, refresh every step, no warm-up, training
  only (the paper: masking at test time too was worse), sparsity 0.5 (not published; see
  MaskConfig.sparsity). The base method's hyperparameters are its own defaults.
- Measured here (docs/RESULTS.md, "The OBD mask's verdict"; presets obd-verdict, obd-verdict-kan,
  obd-verdict-ablation): with the sparsity tuned per host and 10 paired seeds on Fashion-MNIST in
  the memorisation regime, no host's noisy-validation-selected accuracy moves by more than the
  0.7-1.9 points (sym 50%) the pairs resolve; CE's last epoch gains about 2 points, and the
  random-score control at the same sparsity gains 13 more: the saliency is not what slows
  memorisation there.
- Names: ``obd`` is CE with the mask. ``X+obd`` is method X with the mask, generated for every
  registered method X by register_masked_variants() (called at the end of methods/__init__.py),
  with no per-method code: every network X builds through ctx.build_model gets its ``classifier``
  replaced (both networks of Co-teaching and DivideMix). There is no ``ce+obd``: it would be
  ``obd`` again, and a duplicate name would run every CE cell twice in "*" presets.
- Settings: ``--set mask.NAME=VALUE`` (the run's top-level mask.* dict); the method's own stay
  ``hp.NAME``. The resolved config is MaskedConfig(base=<X's Config>, mask=MaskConfig).
- Decisions for the unknowns (numbered):
  1. obd's p is the softmax of the *unmasked* layer output (OBD's question: what does removing
     this edge from the full layer cost; masked edges are scored on the same footing, so they can
     return). ``mask.obd_probs=masked`` uses the masked network's prediction instead.
  2. Exact sparsity: k = min(n - 1, round-half-up(s * n)) edges masked per row (scope row, n = D)
     or per layer (scope layer, n = C * D); ties broken by index.
  3. The bias is never masked (it is not an edge).
  4. Masked weights get exactly zero gradient (forward uses W * M); the optimiser still applies
     momentum and weight decay to them, as a forward-masking implementation would, so a masked
     weight drifts slowly and can return when the mask is refreshed.
  5. A training step = a train-mode forward with autograd enabled while the mask is active; the
     mask is refreshed at steps 0, k, 2k, ... from that step's batch, before its output is formed.
     Warm-up epochs leave the mask at all ones and do not count steps. Train-mode passes without
     gradients (Co-teaching's ranking) use the mask; eval-mode passes inside a method (DivideMix's
     division losses, its partner's label guessing) follow ``at_eval`` like the runner's evaluation,
     so they are unmasked by default. Several forwards inside one optimiser step (DISC's weak,
     strong and mixup passes, SED's two views; methods.mask.one_step) are one step: the mask is
     refreshed on the first of them. Weight-EMA copies (SED's teacher, ELR+'s averaged networks)
     run unmasked: they average the trained network's full weights and take no gradients.
  6. mask/churn = fraction of mask entries (pooled over masked networks) that differ between the
     start and the end of the epoch; mask/sparsity = realised fraction of masked entries at the
     end of the epoch (0 during warm-up); mask/refreshes = refreshes in the epoch per network.
  7. The random score is seeded per layer from the run's order stream (ctx.generator(0, 9000 + k),
     epoch 0 is never a training epoch) and per refresh from the refresh count: reproducible and
     exactly resumable with no generator state to save.
  8. With the KAN classifier head (``--set classifier=kan``, benchmark/models/heads.py: pykan's
     KANLayer, as in the paper's v1/v2 KAN experiments) the mask masks the KAN's edges j -> i
     (methods.mask.MaskedEdges). Scores: ``actstd`` is the batch std of the edge's activation
     phi_ij(x_j), pykan's edge scale and the function the v2 score |w| std(x) is the linear
     case of; ``obd`` is 1/2 E_b[p_i (1 - p_i) phi_ij(x_j)^2], the Gauss-Newton saliency of
     removing the edge's activation, equal to the linear obd score for phi = w x. ``magnitude``
     is refused (a KAN edge has no single weight). The paper does not say which score its KAN
     runs used; the suite's default stays ``obd``.
  9. Preparation epochs (Confident Learning's cross-validation networks) are masked from their
     first step unless ``mask.warmup_epochs`` > 0, which then keeps them unmasked throughout
     (the warm-up counts training epochs).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from methods.base import Method, RunContext, config_with, get_method, list_methods, register_method
from methods.ce import CE
from methods.mask import EdgeMask, MaskConfig, MaskedEdges, MaskedLinear
from methods.params import ConfigError

SEED_STREAM = 9000
"""ctx.generator(0, SEED_STREAM + k) seeds network k's random score."""

MASK_SPACE: dict[str, Any] = {
    "mask.sparsity": (0.0, 0.95),
    "mask.score": ["obd", "actstd", "magnitude", "random"],
    "mask.scope": ["row", "layer"],
    "mask.refresh": [1, 10, 100],
}
"""The mask's search space (defaults: 0.5, obd, row, 1), merged into every X+obd's."""


@dataclass
class MaskedConfig:
    base: Any = None
    """The wrapped method's resolved Config (e.g. GCEConfig for gce+obd, CEConfig for obd)."""
    mask: MaskConfig = field(default_factory=MaskConfig)
    """The edge-mask settings (methods/mask.py), set with --set mask.NAME=VALUE."""


def mask_head(head: nn.Module, cfg: MaskConfig, seed: int) -> EdgeMask:
    """The masked version of a network's classifier: an ``nn.Linear`` (MaskedLinear) or a head with
    one function per edge, recognised by its ``edge_outputs`` (the KAN head: MaskedEdges)."""
    if isinstance(head, nn.Linear):
        return MaskedLinear.from_linear(head, cfg, seed)
    if callable(getattr(head, "edge_outputs", None)):
        return MaskedEdges(head, cfg, seed)
    raise TypeError(f"the OBD mask needs a linear classifier or one with edge_outputs(x), got "
                    f"{type(head).__name__}")


class MaskedMethod(Method):
    """Mixin placed before a base method in the MRO: masks the classifier of every network it builds."""

    base_method: ClassVar[type[Method]] = Method
    Config = MaskedConfig
    masked: ClassVar[bool] = True

    def setup(self, ctx: RunContext, cfg: MaskedConfig) -> None:
        self.mask_cfg = cfg.mask
        build = ctx.build_model

        def masked_build(k: int):
            net = build(k)
            seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator(0, SEED_STREAM + k),
                                     device=ctx.device))
            net.classifier = mask_head(net.classifier, cfg.mask, seed)
            # a network built during an epoch (forward_t's second stage) follows that epoch's warm-up
            net.classifier.active = self._mask_active
            return net

        self._mask_active = cfg.mask.warmup_epochs == 0  # epoch 1's setting

        super().setup(dataclasses.replace(ctx, build_model=masked_build), cfg.base)
        # a method with preparation epochs (Confident Learning) builds its networks later
        if not self.mask_layers and not self.preparation_epochs():
            raise RuntimeError(f"{self.name}: the base method built no network to mask")

    def prepare_epoch(self, step: int) -> dict[str, float]:
        # preparation epochs (Confident Learning's fold networks) train masked unless there is a
        # mask warm-up, which counts training epochs only
        self._mask_active = self.mask_cfg.warmup_epochs == 0
        for layer in self.mask_layers:
            layer.active = self._mask_active
        return super().prepare_epoch(step)

    @property
    def mask_layers(self) -> list[EdgeMask]:
        """The masked classifiers of the networks the method trains now (a method that replaces
        a network, such as forward_t's second stage, masks the new one)."""
        return [n.classifier for n in self.networks() if isinstance(getattr(n, "classifier", None),
                                                                     EdgeMask)]

    def train_epoch(self, epoch: int) -> dict[str, float]:
        active = self._mask_active = epoch > self.mask_cfg.warmup_epochs
        layers = self.mask_layers
        for layer in layers:
            layer.active = active
        start = {id(layer): (layer.mask.clone(), layer.refreshes) for layer in layers}
        out = super().train_epoch(epoch)
        layers = self.mask_layers  # a network built in this epoch starts from all ones, 0 refreshes
        first = [start.get(id(layer), (torch.ones_like(layer.mask), 0)) for layer in layers]
        total = sum(layer.mask.numel() for layer in layers)
        masked = sum(int((layer.mask == 0).sum()) for layer in layers)
        changed = sum(int((layer.mask != m0).sum()) for layer, (m0, _) in zip(layers, first))
        out["mask/sparsity"] = masked / total
        out["mask/churn"] = changed / total
        out["mask/refreshes"] = sum(layer.refreshes - r for layer, (_, r) in zip(layers, first)) / len(layers)
        out["mask/active"] = 1.0 if active else 0.0
        return out

    def state_dict(self) -> dict[str, Any]:
        # the networks' state dicts already hold the mask buffers; saved here too so resume is
        # exact even for a base method that checkpoints its networks some other way
        return {"base": super().state_dict(),
                "mask_layers": [{"mask": l.mask.detach().cpu().clone(), "extra": l.get_extra_state()}
                                for l in self.mask_layers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state["base"])
        for layer, s in zip(self.mask_layers, state["mask_layers"], strict=True):
            layer.mask.copy_(s["mask"])
            layer.set_extra_state(s["extra"])

    @classmethod
    def make_config(cls, overrides: dict[str, Any], mask: dict[str, Any]) -> MaskedConfig:
        try:
            base = cls.base_method.make_config(overrides, {})
        except ConfigError as e:  # name the method the user asked for, not its base
            raise ConfigError(f"{cls.name} (hp.* of {cls.base_method.name}): {e}") from None
        return MaskedConfig(base=base, mask=config_with(MaskConfig, mask, cls.name, prefix="mask."))

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {**cls.base_method.search_space(), **MASK_SPACE}


def masked_variant(base: type[Method]) -> type[Method]:
    """A new (unregistered) class: ``base`` with its classifiers masked."""
    return type(f"{base.__name__}OBD", (MaskedMethod, base),
                {"base_method": base, "__module__": __name__,
                 "__doc__": f"{base.__name__} with the OBD edge mask on every network's classifier."})


OBD = register_method("obd")(masked_variant(CE))


def register_masked_variants() -> list[str]:
    """Register ``X+obd`` for every registered unmasked method X except ce (that is ``obd``).

    Idempotent: call it again after registering more methods and only the missing variants are
    added. Returns the names added.
    """
    added = []
    for name in list_methods():
        cls = get_method(name)
        if getattr(cls, "masked", False) or cls is CE or f"{name}+obd" in list_methods():
            continue
        register_method(f"{name}+obd")(masked_variant(cls))
        added.append(f"{name}+obd")
    return added
