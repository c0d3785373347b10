"""How a :class:`~benchmark.data.files.listing.Listing` becomes the images a run trains on.

:func:`materialise` turns a listing into a :class:`benchmark.data.DatasetArrays`:

1. a verified pack of exactly this listing (``runner.py pack``, :mod:`benchmark.data.files.pack`)
   when one is found: its memory-mapped array, streamed (or read into memory when it fits the
   budget);
2. otherwise the image files: decoded into memory when the decoded images fit the memory budget
   (:func:`benchmark.data.files.streaming.fits_in_memory`), else streamed from the files a batch
   at a time.

All three give the same pixels (one decoding function), so a run's numbers do not depend on
which path it took (GPU decoding, opt-in, is recorded in the run's numerics). This module sits
above both the listing and the pack (the pack is made from a listing; a listing is materialised
from a pack), which is what keeps those two free of each other.
"""
from __future__ import annotations

import torch

from benchmark.data.files.listing import Listing, check_files, decode_into
from benchmark.data.files.pack import find_pack
from benchmark.data.files.streaming import FileReader, StreamedImages, fits_in_memory
from benchmark.data.registry import DatasetArrays

__all__ = ["materialise", "decode_all"]


def decode_all(reader: FileReader) -> torch.Tensor:
    """Every image of ``reader`` as one (N, C, S, S) uint8 CPU tensor."""
    out = torch.empty((len(reader), reader.channels, reader.size, reader.size), dtype=torch.uint8)
    decode_into(reader, out.numpy())
    return out


def materialise(listing: Listing, data_dir: str | None = None) -> DatasetArrays:
    """The listing's images: from a pack, in memory or streamed (see the module docstring)."""
    total = sum(len(sp.paths) for sp in listing.splits().values())
    in_memory = fits_in_memory(total, 3, listing.size)
    pack = find_pack(listing, data_dir)
    images: dict[str, torch.Tensor | StreamedImages] = {}
    if pack is not None:
        for key in listing.splits():
            images[key] = pack.images(key, in_memory)
        source = f"{listing.source} (pack {pack.root})"
    else:
        check_files(listing)
        for key, sp in listing.splits().items():
            reader = listing.reader(sp)
            images[key] = (decode_all(reader) if in_memory
                           else StreamedImages(reader, (3, listing.size, listing.size)))
        source = listing.source + ("" if in_memory else " (streamed from the image files)")
    extra = {k: (images[f"extra_{k}"], sp.labels) for k, sp in listing.extra.items()}
    return DatasetArrays(name=listing.name, train_x=images["train"], train_y=listing.train.labels.copy(),
                         test_x=images["test"], test_y=listing.test.labels.copy(),
                         classes=list(listing.classes), mean=listing.mean, std=listing.std,
                         crop_pad=0, hflip=True, source=source, crop_size=listing.crop_size,
                         verified=listing.verified, extra_tests=extra or None)
