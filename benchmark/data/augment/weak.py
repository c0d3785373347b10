"""Batched, on-device image augmentation and normalisation (no per-sample Python).

Images arrive as uint8 tensors ``(B, C, H, W)`` on the training device. :meth:`Augmenter.augment`
draws all its randomness from an explicit ``torch.Generator`` that lives on that same device, so a
run's data augmentation is its own reproducible random stream.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


class Augmenter:
    """Random crop with zero padding and horizontal flip, then per-channel normalisation.

    Args:
        mean, std: per-channel statistics in [0, 1] units (after dividing pixels by 255).
        crop_pad: zero padding ``p`` of the random crop; 0 disables cropping. Semantics of
            torchvision's ``RandomCrop(size, padding=p)`` with zero fill: pad every side by ``p``,
            then take the ``H x W`` window at a top-left offset drawn uniformly from
            ``{0..2p} x {0..2p}``, independently per sample.
        hflip: flip each image left-right with probability 0.5, independently per sample.
        channels_last: return batches in channels-last memory format (same values and shape;
            for networks kept channels-last, see ``RunConfig.channels_last``).
        rotate: after crop and flip, rotate each image by an angle drawn uniformly from
            ``[-rotate, rotate]`` degrees about its centre, nearest pixel, zero fill (torchvision's
            ``RandomRotation(rotate)`` on PIL images, as APL / ANL use for CIFAR-100, up to PIL's
            rounding of the sampling grid); 0 disables it.
        crop_size: 0, or the side ``S`` of the network's input when the stored images are larger
            (the ImageNet-style protocols: images stored at 256, networks fed 224): ``augment``
            takes a random ``S x S`` window (torchvision's ``RandomCrop(S)``, offsets uniform in
            ``{0..H-S} x {0..W-S}``, drawn where the padding offsets are drawn) and ``normalise``
            the centre window (torchvision's ``CenterCrop(S)``). Exclusive with ``crop_pad``.
        random_window: with crop_size, whether ``augment`` takes a random window (the protocol's
            random crop) or the centre one (a protocol without cropping).

    Random numbers, drawn from the generator in this order when ``augment`` is called:
    ``dy`` then ``dx`` (``randint(0, 2p+1, (B,))`` each when ``crop_pad > 0``; with a random
    ``crop_size`` window instead ``randint(0, H-S+1, (B,))`` and ``randint(0, W-S+1, (B,))``), then the flip
    coins (``rand(B) < 0.5``, only when ``hflip``), then the angles (``rand(B)``, only when
    ``rotate``). With ``crop_pad == 0``, ``hflip`` off and ``rotate == 0``, ``augment`` draws
    nothing and returns exactly ``normalise(x)``.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], crop_pad: int = 0,
                 hflip: bool = False, channels_last: bool = False, rotate: float = 0.0,
                 crop_size: int = 0, random_window: bool = True):
        if len(mean) != len(std):
            raise ValueError(f"mean and std lengths differ: {len(mean)} vs {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {list(std)}")
        if crop_pad < 0:
            raise ValueError(f"crop_pad must be >= 0, got {crop_pad}")
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.crop_pad = int(crop_pad)
        self.hflip = bool(hflip)
        self.channels_last = bool(channels_last)
        if not 0.0 <= rotate <= 180.0:
            raise ValueError(f"rotate must be in [0, 180] degrees, got {rotate}")
        self.rotate = float(rotate)
        if crop_size < 0 or (crop_size and crop_pad):
            raise ValueError(f"crop_size must be >= 0 and exclusive with crop_pad, got {crop_size}")
        self.crop_size = int(crop_size)
        self.random_window = bool(random_window) and self.crop_size > 0
        self._stats: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def __repr__(self) -> str:
        return (f"Augmenter(mean={self.mean}, std={self.std}, crop_pad={self.crop_pad}, "
                f"hflip={self.hflip}, rotate={self.rotate})")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description for run configs."""
        out = {"mean": list(self.mean), "std": list(self.std), "crop_pad": self.crop_pad,
               "hflip": self.hflip}
        if self.rotate:
            out["rotate"] = self.rotate
        if self.crop_size:
            out["crop_size"] = self.crop_size
            out["random_window"] = self.random_window
        return out

    @property
    def is_identity(self) -> bool:
        """True when ``augment`` is plain normalisation."""
        return self.crop_pad == 0 and not self.hflip and not self.rotate and not self.random_window

    def _mean_std(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._stats:
            m = torch.tensor(self.mean, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)
            s = torch.tensor(self.std, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)
            self._stats[device] = (m, s)
        return self._stats[device]

    def normalise(self, x: Tensor) -> Tensor:
        """uint8 ``(B, C, H, W)`` -> float32 ``(B, C, H, W)``: ``(x / 255 - mean) / std``. No randomness."""
        if x.dim() != 4:
            raise ValueError(f"expected (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != len(self.mean):
            raise ValueError(f"input has {x.shape[1]} channels, mean/std have {len(self.mean)}")
        x = self.centre(x)
        m, s = self._mean_std(x.device)
        if self.channels_last:  # reorder the uint8 batch (a quarter of the bytes); the float
            x = x.contiguous(memory_format=torch.channels_last)  # ops below keep its layout
        return (x.float().div_(255.0).sub_(m)).div_(s)

    def centre(self, x: Tensor) -> Tensor:
        """The centre crop_size window of images larger than it (torchvision's CenterCrop); other
        batches unchanged."""
        s = self.crop_size
        h, w = x.shape[-2:]
        if not s or (h == s and w == s):
            return x
        if h < s or w < s:
            raise ValueError(f"images of {h}x{w} are smaller than crop_size {s}")
        top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
        return x[..., top:top + s, left:left + s]

    def normalise_float(self, x: Tensor) -> Tensor:
        """float ``(B, C, H, W)`` in [0, 1] -> ``(x - mean) / std`` (after a strong-view policy)."""
        m, s = self._mean_std(x.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return (x - m) / s

    def augment(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """uint8 ``(B, C, H, W)`` -> float32 ``(B, C, H, W)``: random crop / flip, then normalise."""
        return self.normalise(self.geometric(x, gen))

    def geometric(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """uint8 ``(B, C, H, W)`` -> uint8 ``(B, C, H, W)``: the random crop / flip / rotation only.

        ``gen`` must live on ``x.device``. Fully vectorised: the batch is zero-padded once, then one
        ``gather`` over the flattened pixels with per-sample row and column index vectors picks
        every sample's (possibly mirrored) window.
        """
        if self.is_identity:
            return self.centre(x)
        if x.dim() != 4:
            raise ValueError(f"expected (B, C, H, W), got shape {tuple(x.shape)}")
        b, c, h, w = x.shape
        dev = x.device
        p = self.crop_pad
        hp, wp = h + 2 * p, w + 2 * p
        if not self.random_window:
            x = self.centre(x)
            b, c, h, w = x.shape
            hp, wp = h + 2 * p, w + 2 * p
        else:  # a random window of the network's input size (no padding)
            s = self.crop_size
            if h < s or w < s:
                raise ValueError(f"images of {h}x{w} are smaller than crop_size {s}")
            dy = torch.randint(0, h - s + 1, (b,), generator=gen, device=dev)
            dx = torch.randint(0, w - s + 1, (b,), generator=gen, device=dev)
            h = w = s
        rows = torch.arange(h, device=dev).expand(b, h)
        cols = torch.arange(w, device=dev).expand(b, w)
        if self.random_window:
            rows, cols = rows + dy[:, None], cols + dx[:, None]
        if p > 0:
            dy = torch.randint(0, 2 * p + 1, (b,), generator=gen, device=dev)
            dx = torch.randint(0, 2 * p + 1, (b,), generator=gen, device=dev)
            rows = rows + dy[:, None]  # window row i = padded row i + dy
            cols = cols + dx[:, None]
            x = F.pad(x, (p, p, p, p))  # zero fill
        if self.hflip:
            flip = torch.rand(b, generator=gen, device=dev) < 0.5
            cols = torch.where(flip[:, None], cols.flip(1), cols)
        pix = (rows[:, :, None] * wp + cols[:, None, :]).reshape(b, h * w)  # flat index into the padded image
        inside = None
        if self.rotate:  # compose the rotation's source pixels with the crop/flip indices: one gather
            src, inside = self._rotation_source(b, h, w, gen)
            pix = torch.gather(pix, 1, src)
        flat = x.reshape(b, c, hp * wp)
        out = torch.gather(flat, 2, pix.reshape(b, 1, h * w).expand(b, c, h * w))
        if inside is not None:
            out = out * inside
        return out.reshape(b, c, h, w)

    def _rotation_source(self, b: int, h: int, w: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """Per-sample rotation by an angle in [-rotate, rotate] degrees (nearest, zero fill).

        Returns (B, H*W) int64, for each output pixel the index of its source pixel in the
        (cropped, flipped) H x W image, and (B, 1, H*W) bool, whether that source is inside it.
        Inverse mapping, as PIL: output pixel centre (x, y), relative to the image centre, reads
        the source pixel at R(angle) (x, y); pixels whose source falls outside are 0.
        """
        dev = gen.device
        ang = (torch.rand(b, generator=gen, device=dev) * 2.0 - 1.0) * math.radians(self.rotate)
        cos, sin = ang.cos()[:, None, None], ang.sin()[:, None, None]
        yy = torch.arange(h, device=dev, dtype=torch.float32)[None, :, None] + 0.5 - h / 2
        xx = torch.arange(w, device=dev, dtype=torch.float32)[None, None, :] + 0.5 - w / 2
        # a positive angle turns the image counter-clockwise, as PIL's rotate
        xs = (cos * xx - sin * yy + w / 2).floor().long()  # (B, H, W) source column
        ys = (sin * xx + cos * yy + h / 2).floor().long()  # (B, H, W) source row
        inside = ((xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)).reshape(b, 1, h * w)
        src = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).reshape(b, h * w)
        return src, inside


__all__ = ["Augmenter"]
