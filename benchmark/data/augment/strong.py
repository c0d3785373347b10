"""Strong augmentation on the device: AutoAugment (CIFAR-10 policy), RandAugment and Cutout.

Every image of a batch draws its own operations and magnitudes, as the per-image PIL pipelines
of the official code do. The image operations are Kornia's (``kornia.enhance``,
``kornia.geometry.transform``), called with per-sample magnitude tensors on the images that drew
each operation: a batch costs one call per distinct operation, never one per image. The policy
logic (which operation, which magnitude, which probability) is the official code's, written here
as tables with their sources. Every random number comes from the explicit generator (the run's
order stream), so a resumed run draws exactly what an uninterrupted one draws.

Policies (``StrongSpec.policy``):
- ``autoaugment``: the AutoAugment CIFAR-10 policy as SED's strong view uses it (the
  ``randaugment`` PyPI package, DeepVoltaire/AutoAugment ``autoaugment.py``, ``CIFAR10Policy`` /
  ``SubPolicy``): each image draws one of 25 sub-policies (the table is Kornia's
  ``cifar10_policy``, the same 25 entries); each of its two operations fires with its own
  probability at level ``l`` in 0..9, magnitude ``linspace(lo, hi, 10)[l]``; enhance operations
  use the factor ``1 + m * s`` and geometric ones ``m * s`` with a random sign ``s``; geometric
  operations fill grey (128).
- ``randaugment``: RandAugment in the FixMatch form (``RandAugmentMC``), which the selection
  methods' code bases copy. ``n`` operations drawn with replacement from a pool, each applied
  with probability 0.5 at level ``v`` drawn from ``1..m-1``, magnitude ``v * max_v / 10 + bias``
  (``int(...)`` for integer operations), then a Cutout of ``cutout_frac`` of the image side
  filled grey (127). Pools: ``disc`` is DISC's ``new_augment_pool`` used by
  ``RandAugmentwogeo`` (JackYFL/DISC datasets/randaugment.py; Cutout 0.15 of the side);
  ``fixmatch`` is ``fixmatch_augment_pool`` (Cutout 0.5). PIL's defaults fill black here.
- ``none``: the weak view only.

What remains different from PIL (small, documented in the method cards): AutoAugment's shear is
bilinear where PIL's is bicubic, and Kornia's translations and shears resample with its own
grid sampling (nearest for RandAugment, as PIL's default); rotations are about the centre in
both. The signs of shears and translations are drawn at random, so their orientation convention
does not matter.
"""
from __future__ import annotations

import functools

import kornia.enhance as KE
import kornia.geometry.transform as KG
import torch
from kornia.augmentation.auto.autoaugment.autoaugment import cifar10_policy
from torch import Tensor

from methods.base import StrongSpec  # what a method asks for (the method contract)

GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")

# AutoAugment: level l in 0..9 reads linspace(lo, hi, 10)[l] (DeepVoltaire SubPolicy ``ranges``;
# translate is a fraction of the width: 150 / 331 of the 331-pixel ImageNet crop)
AA_RANGES = {"shear_x": (0.0, 0.3), "shear_y": (0.0, 0.3), "translate_x": (0.0, 150 / 331),
             "translate_y": (0.0, 150 / 331), "rotate": (0.0, 30.0), "color": (0.0, 0.9),
             "posterize": (8.0, 4.0), "solarize": (256.0, 0.0), "contrast": (0.0, 0.9),
             "sharpness": (0.0, 0.9), "brightness": (0.0, 0.9)}
AA_ENHANCE = ("color", "contrast", "sharpness", "brightness")

# RandAugment pools: (operation, max_v, bias, integer?); None: no magnitude
RA_POOLS = {
    "disc": (("auto_contrast", None, None, False), ("brightness", 1.8, 0.1, False),
             ("color", 1.8, 0.1, False), ("contrast", 1.8, 0.1, False), ("cutout", 0.1, 0, False),
             ("equalize", None, None, False), ("invert", None, None, False),
             ("posterize", 4, 4, True), ("rotate", 30, 0, True), ("sharpness", 1.8, 0.1, False),
             ("shear_x", 0.1, 0, False), ("shear_y", 0.1, 0, False), ("solarize", 256, 0, True),
             ("solarize_add", 110, 0, True), ("translate_x", 0.05, 0, False),
             ("translate_y", 0.05, 0, False)),
    "fixmatch": (("auto_contrast", None, None, False), ("brightness", 0.9, 0.05, False),
                 ("color", 0.9, 0.05, False), ("contrast", 0.9, 0.05, False),
                 ("equalize", None, None, False), ("identity", None, None, False),
                 ("posterize", 4, 4, True), ("rotate", 30, 0, True), ("sharpness", 0.9, 0.05, False),
                 ("shear_x", 0.3, 0, False), ("shear_y", 0.3, 0, False), ("solarize", 256, 0, True),
                 ("translate_x", 0.3, 0, False), ("translate_y", 0.3, 0, False)),
}
RA_SIGNED = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y", "solarize_add")
RA_CUTOUT = {"disc": 0.15, "fixmatch": 0.5}


def _warp(x: Tensor, fill: float, fn) -> Tensor:
    """A Kornia warp of the images and of a ones channel; pixels pulled from outside get ``fill``."""
    both = fn(torch.cat([x, torch.ones_like(x[:, :1])], 1))
    inside = both[:, -1:]
    return both[:, :-1] * inside + fill * (1.0 - inside)


def apply_op(name: str, x: Tensor, m: Tensor, fill: float = 0.0, mode: str = "nearest",
             centre: Tensor | None = None) -> Tensor:
    """One operation on float images in [0, 1], per-sample magnitude.

    x: (B, C, H, W) float in [0, 1]; m: (B,) magnitude in PIL units: an enhance factor
    (brightness, color, contrast, sharpness), degrees (rotate), a shear coefficient, pixels
    (translate, cutout side), bits (posterize), a 0..256 threshold (solarize) or a 0..255
    addition (solarize_add). Returns (B, C, H, W). Colour saturation of a 1-channel image is the
    identity (a grey image has none). centre: (B, 2) uniform draws for the in-pool Cutout.
    """
    b, c, h, w = x.shape
    dt, dev = x.dtype, x.device
    if name == "identity":
        return x
    if name == "auto_contrast":
        # per channel, as PIL ImageOps.autocontrast; a flat channel is left alone
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        return torch.where(hi - lo > 1e-6, (x - lo) / (hi - lo).clamp_min(1e-6), x)
    if name == "equalize":
        return KE.equalize(x)
    if name == "invert":
        return KE.invert(x)
    if name == "posterize":
        return KE.posterize(x, m.round().to(torch.int64).clamp(1, 8))
    if name in ("solarize", "solarize_add"):
        # PIL inverts every pixel >= threshold (on the 0..255 scale); SolarizeAdd adds first
        # and uses threshold 128. A threshold of 256 inverts nothing.
        if name == "solarize_add":
            x = (x + m.view(b, 1, 1, 1) / 255.0).clamp(0.0, 1.0)
            thr = torch.full((b,), 128.0, dtype=dt, device=dev)
        else:
            thr = m
        return torch.where(x * 255.0 >= thr.view(b, 1, 1, 1) - 1e-3, 1.0 - x, x)
    if name == "brightness":  # PIL Brightness blends with black: a multiplication
        return KE.adjust_contrast(x, m.clamp_min(0.0))
    if name == "contrast":  # PIL Contrast blends with the mean grey level
        return KE.adjust_contrast_with_mean_subtraction(x, m.clamp_min(0.0)).clamp(0.0, 1.0)
    if name == "color":
        if c != 3:
            return x
        return KE.adjust_saturation_with_gray_subtraction(x, m.clamp_min(0.0)).clamp(0.0, 1.0)
    if name == "sharpness":
        return KE.sharpness(x, m.clamp_min(0.0))
    if name == "rotate":
        return _warp(x, fill, lambda t: KG.rotate(t, m.to(dt), mode=mode))
    if name in ("shear_x", "shear_y"):
        sh = torch.zeros(b, 2, dtype=dt, device=dev)
        sh[:, 0 if name == "shear_x" else 1] = m
        return _warp(x, fill, lambda t: KG.shear(t, sh, mode=mode, align_corners=True))
    if name in ("translate_x", "translate_y"):
        tr = torch.zeros(b, 2, dtype=dt, device=dev)
        tr[:, 0 if name == "translate_x" else 1] = m
        return _warp(x, fill, lambda t: KG.translate(t, tr, mode=mode))
    if name == "cutout":  # RandAugment's in-pool Cutout: side in pixels, a random centre
        if centre is None:
            raise ValueError("cutout needs its (B, 2) centre draws")
        return cutout_squares(x, m, centre, 127.0 / 255.0)
    raise ValueError(f"unknown operation '{name}'")


def cutout_squares(x: Tensor, side: Tensor, centre: Tensor, fill: float) -> Tensor:
    """(B, C, H, W) with one square per image set to ``fill`` (FixMatch's ``CutoutAbs``).

    side: (B,) v pixels; centre: (B, 2) uniform [0, 1) draws for (x0, y0). As the official code:
    x0 = int(max(0, uniform(0, W) - v / 2)), x1 = int(min(W, x0 + v)), and PIL's rectangle fills
    columns x0..x1 inclusive (v + 1 pixels, fewer at the border; one pixel for v = 0)."""
    b, _c, h, w = x.shape
    x0 = (centre[:, 0] * w - side / 2).floor().clamp_min(0)
    y0 = (centre[:, 1] * h - side / 2).floor().clamp_min(0)
    cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, :]
    rows = torch.arange(h, device=x.device, dtype=x.dtype)[None, :]
    # PIL's ImageDraw.rectangle((x0, y0, x1, y1)) fills both corners: side + 1 pixels, clipped
    in_c = (cols >= x0[:, None]) & (cols <= (x0 + side.floor())[:, None])
    in_r = (rows >= y0[:, None]) & (rows <= (y0 + side.floor())[:, None])
    hole = (in_r[:, :, None] & in_c[:, None, :])[:, None]
    return torch.where(hole, torch.as_tensor(fill, dtype=x.dtype, device=x.device), x)


def _grouped(x: Tensor, op: Tensor, mag: Tensor, names: tuple[str, ...], fill: float,
             modes: dict[str, str], centre: Tensor | None = None) -> Tensor:
    """x (B, C, H, W); op (B,) int64 index into ``names`` (-1: nothing); mag (B,) -> (B, C, H, W).

    One call per distinct operation, on the images that drew it (batched, never per image)."""
    out = x.clone()
    for k in torch.unique(op[op >= 0]).tolist():
        rows = (op == k).nonzero().squeeze(1)
        out[rows] = apply_op(names[k], x[rows], mag[rows], fill, modes.get(names[k], "nearest"),
                             None if centre is None else centre[rows])
    return out


def autoaugment(x: Tensor, gen: torch.Generator) -> Tensor:
    """(B, C, H, W) float [0, 1] -> the same, the CIFAR-10 AutoAugment policy per image.

    Draws, in order: the sub-policy per image (B,), the two firing coins (B, 2), the two signs (B, 2)."""
    b, w, dev = x.shape[0], x.shape[-1], x.device
    sub = torch.randint(0, len(cifar10_policy), (b,), generator=gen, device=dev)
    fire = torch.rand(b, 2, generator=gen, device=dev)
    sign = torch.where(torch.rand(b, 2, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    table_op, table_p, table_m, signed, enhance = _aa_tables(dev, w)
    for j in range(2):
        op = table_op[sub, j]
        mag = torch.where(signed[op], table_m[sub, j] * sign[:, j], table_m[sub, j])
        mag = torch.where(enhance[op], 1.0 + mag, mag)
        op = torch.where(fire[:, j] < table_p[sub, j], op, torch.full_like(op, -1))
        x = _grouped(x, op, mag.to(x.dtype), AA_NAMES, 128.0 / 255.0, AA_MODES)
    return x


AA_NAMES = tuple(sorted({op for s in cifar10_policy for op, _p, _l in s}))
AA_MODES = {"shear_x": "bilinear", "shear_y": "bilinear"}  # PIL's AutoAugment shears are bicubic


@functools.lru_cache(maxsize=None)
def _aa_tables(dev: torch.device, width: int) -> tuple[Tensor, ...]:
    """The policy as tensors on ``dev``, built once per device and image width (not per batch):
    per (sub-policy, slot) the operation index, firing probability and unsigned magnitude, and
    per operation whether it is signed and whether it is an enhance factor."""
    pol = cifar10_policy
    return (torch.tensor([[AA_NAMES.index(s[j][0]) for j in range(2)] for s in pol], device=dev),
            torch.tensor([[s[j][1] for j in range(2)] for s in pol], device=dev),
            torch.tensor([[_aa_magnitude(s[j][0], s[j][2], width) for j in range(2)] for s in pol], device=dev),
            torch.tensor([n in AA_ENHANCE or n in GEOMETRIC for n in AA_NAMES], device=dev),
            torch.tensor([n in AA_ENHANCE for n in AA_NAMES], device=dev))


def _aa_magnitude(name: str, level: int | None, width: int) -> float:
    if name not in AA_RANGES or level is None:
        return 0.0
    lo, hi = AA_RANGES[name]
    v = lo + (hi - lo) * level / 9.0
    if name == "posterize":
        v = float(round(v))
    if name.startswith("translate"):
        v *= width
    return v


@functools.lru_cache(maxsize=None)
def _ra_tables(pool: str, dev: torch.device) -> tuple[Tensor, ...]:
    """A pool's per-operation constants as tensors on ``dev``, built once (not per batch)."""
    ops = RA_POOLS[pool]
    return (torch.tensor([o[1] or 0.0 for o in ops], device=dev),
            torch.tensor([o[2] or 0.0 for o in ops], device=dev),
            torch.tensor([o[3] for o in ops], device=dev),
            torch.tensor([o[0] in RA_SIGNED for o in ops], device=dev),
            torch.tensor([o[0] == "solarize" for o in ops], device=dev),
            torch.tensor([o[0] in ("translate_x", "translate_y", "cutout") for o in ops], device=dev))


def ra_magnitudes(pool: str, op: Tensor, level: Tensor, sign: Tensor, side: int) -> Tensor:
    """PIL-unit magnitudes of RandAugment operations (FixMatch form, DISC's or FixMatch's pool).

    op: (B,) int64 index into the pool; level: (B,) float levels v in 1..m-1; sign: (B,) +-1;
    side: the image side in pixels. v * max_v / 10 (int() for integer operations) + bias, signed
    for the geometric ones and SolarizeAdd; translations and the in-pool Cutout in pixels
    (int() of a fraction of the side); Solarize's threshold is 256 - v, as PIL.ImageOps.solarize
    is called with it."""
    max_v, bias, integer, signed, solarize, in_pixels = _ra_tables(pool, op.device)
    raw = level * max_v[op] / 10.0
    mag = torch.where(integer[op], raw.floor(), raw) + bias[op]
    mag = torch.where(solarize[op], 256.0 - mag, mag)
    mag = torch.where(signed[op], mag * sign, mag)
    return torch.where(in_pixels[op], (mag * side).trunc(), mag)


def randaugment(x: Tensor, gen: torch.Generator, pool: str, n: int, m: int, cutout_frac: float) -> Tensor:
    """(B, C, H, W) float [0, 1] -> the same, FixMatch-form RandAugment per image.

    Draws, in order: per layer j < n the operation (B,), the level (B,), the apply coin (B,), the
    sign (B,) and the centre of an in-pool Cutout (B, 2); then the final Cutout's centres (B, 2)."""
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    dev = x.device
    names = tuple(o[0] for o in RA_POOLS[pool])
    for _ in range(n):
        op = torch.randint(0, len(names), (b,), generator=gen, device=dev)
        v = torch.randint(1, m, (b,), generator=gen, device=dev).float()
        apply = torch.rand(b, generator=gen, device=dev) < 0.5
        sign = torch.where(torch.rand(b, generator=gen, device=dev) < 0.5, -1.0, 1.0)
        centre = torch.rand(b, 2, generator=gen, device=dev, dtype=x.dtype)
        mag = ra_magnitudes(pool, op, v, sign, min(h, w))
        op = torch.where(apply, op, torch.full_like(op, -1))
        x = _grouped(x, op, mag.to(x.dtype), names, 0.0, {}, centre)
    frac = RA_CUTOUT[pool] if cutout_frac < 0 else cutout_frac
    side = torch.full((b,), float(int(min(h, w) * frac)), device=dev, dtype=x.dtype)
    centre = torch.rand(b, 2, generator=gen, device=dev, dtype=x.dtype)
    if frac > 0:
        x = cutout_squares(x, side, centre, 127.0 / 255.0)
    return x


class StrongAugmenter:
    """The strong view: the protocol's weak crop/flip, the policy, then normalisation.

    ``weak`` is the run's :class:`benchmark.data.augment.weak.Augmenter`; calling the object maps a uint8
    (B, C, H, W) batch and a generator on its device to a float (B, C, H, W) normalised batch.
    """

    def __init__(self, weak, spec: StrongSpec):
        self.weak, self.spec = weak, spec

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        s = self.spec
        xf = self.weak.geometric(x, gen).float().div_(255.0)
        if s.policy == "autoaugment":
            xf = autoaugment(xf, gen)
            if s.cutout_frac > 0:
                b, h, w = xf.shape[0], xf.shape[-2], xf.shape[-1]
                side = torch.full((b,), float(int(min(h, w) * s.cutout_frac)), device=xf.device)
                xf = cutout_squares(xf, side, torch.rand(b, 2, generator=gen, device=xf.device), 127.0 / 255.0)
        elif s.policy == "randaugment":
            xf = randaugment(xf, gen, s.pool, s.n, s.m, s.cutout_frac)
        return self.weak.normalise_float(xf)


__all__ = ["StrongAugmenter", "apply_op", "autoaugment", "randaugment", "ra_magnitudes", "cutout_squares"]
