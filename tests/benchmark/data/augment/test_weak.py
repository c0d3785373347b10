"""Properties of the batched augmentation: determinism, exact crop/flip semantics, rates."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data.augment import Augmenter


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b, c, h, w, seed=0, low=0):
    return torch.randint(low, 256, (b, c, h, w), dtype=torch.uint8, generator=_gen(seed))


def _raw(aug: Augmenter, x: torch.Tensor, seed: int) -> torch.Tensor:
    """Augment with mean 0 / std 1 and undo the /255, giving back the uint8 pixels."""
    return (aug.augment(x, _gen(seed)) * 255).round().to(torch.uint8)


def _match_offsets(x: torch.Tensor, y: torch.Tensor, p: int) -> torch.Tensor:
    """For each sample, a bool (B, 2p+1, 2p+1, 2) table: does y equal the (dy, dx, flip) window of
    the zero-padded x? Brute force over all offsets and both flips."""
    b, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (p, p, p, p))
    table = torch.zeros(b, 2 * p + 1, 2 * p + 1, 2, dtype=torch.bool)
    for dy in range(2 * p + 1):
        for dx in range(2 * p + 1):
            win = xp[:, :, dy:dy + h, dx:dx + w]
            table[:, dy, dx, 0] = (win == y).flatten(1).all(1)
            table[:, dy, dx, 1] = (win.flip(3) == y).flatten(1).all(1)
    return table


def test_output_dtype_shape():
    aug = Augmenter([0.5, 0.4, 0.3], [0.2, 0.25, 0.3], crop_pad=4, hflip=True)
    x = _images(4, 3, 32, 32)
    out = aug.augment(x, _gen(0))
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert aug.normalise(x).dtype == torch.float32


def test_same_seed_same_output_other_seed_differs():
    aug = Augmenter([0.5, 0.4, 0.3], [0.2, 0.25, 0.3], crop_pad=4, hflip=True)
    x = _images(64, 3, 32, 32)
    a, b, c = aug.augment(x, _gen(5)), aug.augment(x, _gen(5)), aug.augment(x, _gen(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("p,hflip", [(2, True), (2, False), (0, True), (3, True)])
def test_every_image_is_a_window_of_the_padded_original(p, hflip):
    aug = Augmenter([0.0], [1.0], crop_pad=p, hflip=hflip)
    x = _images(64, 1, 5, 6, low=1)  # no zero pixels: padding is recognisable, windows unique
    y = _raw(aug, x, seed=1)
    table = _match_offsets(x, y, p)
    if not hflip:
        table = table[..., :1]
    assert table.flatten(1).any(1).all(), "some image is not a window of its padded original"


def test_two_channels_share_one_window():
    aug = Augmenter([0.0, 0.0], [1.0, 1.0], crop_pad=2, hflip=True)
    x = _images(32, 2, 6, 6, low=1)
    y = _raw(aug, x, seed=3)
    assert _match_offsets(x, y, 2).flatten(1).any(1).all()


def test_offset_and_flip_rates():
    p, n = 2, 2000
    aug = Augmenter([0.0], [1.0], crop_pad=p, hflip=True)
    x = _images(n, 1, 5, 5, low=1)
    y = _raw(aug, x, seed=7)
    table = _match_offsets(x, y, p)
    assert (table.flatten(1).sum(1) == 1).all(), "each window should match exactly one (dy, dx, flip)"
    idx = table.flatten(1).float().argmax(1)
    dy, rest = idx // (2 * (2 * p + 1)), idx % (2 * (2 * p + 1))
    dx, flip = rest // 2, rest % 2
    assert abs(flip.float().mean().item() - 0.5) < 0.05  # sd ~0.011
    for d in (dy, dx):  # uniform over {0..2p}: each ~0.2, sd ~0.009
        freq = torch.bincount(d, minlength=2 * p + 1).float() / n
        assert (freq - 1 / (2 * p + 1)).abs().max() < 0.05
    # dy and dx are drawn independently
    assert not torch.equal(dy, dx)


def test_flip_rate_without_crop():
    aug = Augmenter([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], hflip=True)
    x = _images(2000, 3, 4, 4)
    y = _raw(aug, x, seed=11)
    same = (y == x).flatten(1).all(1)
    flipped = (y == x.flip(3)).flatten(1).all(1)
    assert (same ^ flipped).all()
    assert abs(flipped.float().mean().item() - 0.5) < 0.05


def test_no_augmentation_is_normalise_and_draws_nothing():
    aug = Augmenter([0.3, 0.4, 0.5], [0.2, 0.2, 0.3])
    x = _images(8, 3, 7, 7)
    g = _gen(0)
    state = g.get_state()
    assert torch.equal(aug.augment(x, g), aug.normalise(x))
    assert torch.equal(g.get_state(), state)


def test_normalise_constant_input():
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.25, 0.5]
    aug = Augmenter(mean, std)
    out = aug.normalise(torch.full((3, 3, 4, 4), 51, dtype=torch.uint8))  # 51 / 255 = 0.2
    for c in range(3):
        torch.testing.assert_close(out[:, c], torch.full((3, 4, 4), (0.2 - mean[c]) / std[c]))


def test_normalise_with_data_stats_gives_zero_mean_unit_std():
    x = _images(256, 3, 8, 8)
    xf = x.float() / 255
    mean = xf.mean(dim=(0, 2, 3)).tolist()
    std = xf.std(dim=(0, 2, 3), unbiased=False).tolist()
    out = Augmenter(mean, std).normalise(x)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)


def test_to_dict_round_trip_and_validation():
    aug = Augmenter((0.5,), (0.25,), crop_pad=4, hflip=True)
    d = aug.to_dict()
    assert d == {"mean": [0.5], "std": [0.25], "crop_pad": 4, "hflip": True}
    assert Augmenter(**d).to_dict() == d
    with pytest.raises(ValueError):
        aug.normalise(_images(1, 3, 4, 4))  # channel mismatch
    with pytest.raises(ValueError):
        Augmenter([0.5], [0.0])


def test_rotation_is_per_sample_zero_filled_and_matches_pil():
    from PIL import Image
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (64, 3, 16, 16), generator=g, dtype=torch.uint8)  # no zero pixels
    aug = Augmenter([0.0] * 3, [1.0] * 3, rotate=20.0)
    out = (aug.augment(x, _gen(1)) * 255).round().to(torch.uint8)
    zeros = (out == 0).all(1).flatten(1).sum(1)  # zero-filled corners per image
    assert (zeros > 0).float().mean() > 0.6 and len(set(zeros.tolist())) > 5  # one angle per image
    assert torch.equal(out, (aug.augment(x, _gen(1)) * 255).round().to(torch.uint8))
    # the same angle through PIL's rotate (nearest, zero fill): nearly every pixel agrees
    for i in range(4):
        ang = float((torch.rand(64, generator=_gen(1))[i] * 2 - 1) * 20.0)
        img = Image.fromarray(x[i].permute(1, 2, 0).numpy().copy())
        ref = torch.from_numpy(np.asarray(img.rotate(ang, resample=Image.NEAREST)).copy()).permute(2, 0, 1)
        assert (ref == out[i]).all(0).float().mean() > 0.98
    # rotation comes after crop and flip in the stream: with it off, crop+flip draws are unchanged
    cf = Augmenter([0.0] * 3, [1.0] * 3, crop_pad=2, hflip=True)
    cfr = Augmenter([0.0] * 3, [1.0] * 3, crop_pad=2, hflip=True, rotate=20.0)
    assert not torch.equal(cf.augment(x, _gen(3)), cfr.augment(x, _gen(3)))
    with pytest.raises(ValueError, match="rotate"):
        Augmenter([0.0], [1.0], rotate=-1.0)
