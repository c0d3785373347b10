"""The strong views: per image, seeded, resumable, and the Kornia operations in PIL's units."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from benchmark.data.augment import Augmenter, StrongAugmenter
from benchmark.data.augment.strong import RA_POOLS, apply_op, autoaugment, ra_magnitudes, randaugment
from methods.base import StrongSpec

SPECS = [StrongSpec("autoaugment"), StrongSpec("randaugment", "disc", 2, 5),
         StrongSpec("randaugment", "fixmatch", 2, 10)]


def _batch(b=64, c=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, size, size), generator=g, dtype=torch.uint8)


def _weak():
    return Augmenter([0.5, 0.5, 0.5], [0.25, 0.25, 0.25], crop_pad=4, hflip=True)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.policy}-{s.pool}")
def test_same_generator_state_same_views_and_resume(spec):
    strong = StrongAugmenter(_weak(), spec)
    x = _batch()
    a = strong(x, torch.Generator().manual_seed(3))
    b = strong(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    # a resumed run re-seeds its epoch generator: the second batch of an epoch is the same
    # whether or not the first one ran in this process
    g1 = torch.Generator().manual_seed(5)
    strong(x, g1)
    second = strong(x, g1)
    g2 = torch.Generator().manual_seed(5)
    strong(x, g2)
    state_after_first = g2.get_state()
    g3 = torch.Generator()
    g3.set_state(state_after_first)
    assert torch.equal(second, strong(x, g3))
    assert not torch.equal(a, strong(x, torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.policy}-{s.pool}")
def test_each_image_draws_its_own_operations(spec):
    """A batch of 64 copies of one image: per-image randomness gives many different results."""
    one = _batch(1)
    x = one.expand(64, -1, -1, -1).contiguous()
    # no crop / flip, so every difference between the copies comes from the policy
    strong = StrongAugmenter(Augmenter([0.5] * 3, [0.25] * 3), spec)
    out = strong(x, torch.Generator().manual_seed(0))
    distinct = {tuple(o.flatten()[:: 97].tolist()) for o in out}
    assert len(distinct) >= 16


def test_randaugment_draws_no_global_random_numbers():
    x = _batch().float() / 255
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    randaugment(x, torch.Generator().manual_seed(1), "disc", 2, 10, -1.0)
    autoaugment(x, torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(1), before)


def _pil(x):
    return Image.fromarray(x.permute(1, 2, 0).numpy())


def _back(img):
    return torch.from_numpy(np.asarray(img)).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("name,m,pil", [
    ("invert", 0.0, ImageOps.invert),
    ("solarize", 128.0, lambda im: ImageOps.solarize(im, 128)),
    ("posterize", 4.0, lambda im: ImageOps.posterize(im, 4)),
    ("brightness", 1.5, lambda im: ImageEnhance.Brightness(im).enhance(1.5)),
    ("color", 0.3, lambda im: ImageEnhance.Color(im).enhance(0.3)),
    ("contrast", 1.6, lambda im: ImageEnhance.Contrast(im).enhance(1.6)),
    ("auto_contrast", 0.0, ImageOps.autocontrast),
    ("equalize", 0.0, ImageOps.equalize),
])
def test_intensity_operations_match_pil(name, m, pil):
    """The Kornia operations in PIL's units agree with the PIL operations the official code calls
    (within rounding: PIL works on 8-bit integers, equalize's histogram binning differs slightly)."""
    x = _batch(4, seed=7)
    ours = apply_op(name, x.float() / 255, torch.full((4,), m))
    theirs = torch.stack([_back(pil(_pil(img))) for img in x])
    tol = 0.08 if name in ("equalize", "contrast", "color") else 2.5 / 255
    assert (ours - theirs).abs().mean() < tol / 4
    assert (ours - theirs).abs().quantile(0.95) <= tol


def test_cutout_fraction_and_grey_fill():
    strong = StrongAugmenter(Augmenter([0.0] * 3, [1.0] * 3), StrongSpec("randaugment", "disc", 1, 2))
    x = torch.zeros(32, 3, 32, 32, dtype=torch.uint8)
    out = strong(x, torch.Generator().manual_seed(0))
    grey = (out - 127 / 255).abs() < 1e-6
    per_image = grey.all(1).flatten(1).sum(1)
    # the final Cutout is int(32 * 0.15) = 4, and PIL's rectangle fills both corners: 5 x 5 px
    # (fewer at the border); the in-pool Cutout at level 1 is int(0.01 * 32) = 0: one grey pixel
    assert int(per_image.max()) <= 26 and int((per_image == 25).sum()) >= 24
    assert int((per_image > 0).sum()) == 32


def test_spec_ranges_are_checked():
    from methods.params import check_fields, ConfigError
    with pytest.raises(ConfigError):
        check_fields(StrongSpec(policy="trivial"), "strong.", "test")
    with pytest.raises(ConfigError):
        check_fields(StrongSpec(m=11), "strong.", "test")


@pytest.mark.parametrize("pool,name,level,sign,expect", [
    ("disc", "solarize", 1, 1, 256 - 25),      # PIL solarize(img, 256 - int(1 * 256 / 10))
    ("disc", "solarize", 4, -1, 256 - 102),    # unsigned
    ("disc", "posterize", 4, 1, 5),            # int(4 * 4 / 10) + 4 bits
    ("disc", "rotate", 5, -1, -15),            # -int(5 * 30 / 10) degrees
    ("disc", "brightness", 3, -1, 0.64),       # 3 * 1.8 / 10 + 0.1, unsigned
    ("disc", "solarize_add", 5, -1, -55),      # -int(5 * 110 / 10)
    ("disc", "cutout", 9, 1, 2),               # int(0.09 * 32) pixels
    ("fixmatch", "translate_x", 5, -1, -4),    # int(-0.15 * 32) pixels
    ("fixmatch", "shear_y", 9, 1, 0.27),
])
def test_randaugment_magnitudes_in_pil_units(pool, name, level, sign, expect):
    names = [o[0] for o in RA_POOLS[pool]]
    op = torch.tensor([names.index(name)])
    mag = ra_magnitudes(pool, op, torch.tensor([float(level)]), torch.tensor([float(sign)]), 32)
    assert float(mag) == pytest.approx(expect, abs=1e-6)
