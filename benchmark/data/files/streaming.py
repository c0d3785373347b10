"""Images that are read a batch at a time: for datasets that do not fit in memory.

A :class:`StreamedImages` stands where a dataset's ``(N, C, H, W)`` uint8 tensor stands in
:class:`benchmark.data.DatasetArrays`: ``x[idx]`` (a slice, or an index tensor / array of any
length) returns that batch as a uint8 tensor on the source's device, ``x.shape`` is the whole
set's shape, ``x.subset(idx)`` is a view over some positions and ``x.to(device)`` a view that
delivers its batches there. The training loop and the methods index it exactly as they index a
tensor, one whole batch per call, so no per-sample Python runs in the training loop.

Two readers sit behind it:

- :class:`FileReader`: the image files themselves. Each batch is decoded by a pool of worker
  threads (Pillow releases the GIL while it decodes and resizes, so the threads run in parallel)
  into one preallocated uint8 array: every image resized so that its short side is ``size``
  (bilinear) and centre-cropped to ``size x size``, torchvision's ``Resize(size)`` +
  ``CenterCrop(size)`` on PIL images. With ``NLB_DECODE=gpu`` and a CUDA device the JPEG files
  are decoded on the GPU instead (torchvision.io.decode_jpeg, nvJPEG) and resized there; those
  pixels differ slightly from Pillow's, so the setting is part of the run's numerics.
- :class:`PackedReader`: a pack written once by ``runner.py pack`` (:mod:`benchmark.data.files.pack`): the
  same decoded pixels in a memory-mapped ``.npy`` array, read by one fancy-index gather per batch
  (sorted positions, so the reads go forward through the file).

Which path a dataset takes is chosen by size (:func:`fits_in_memory`): a dataset whose decoded
images fit in the memory budget (env ``NLB_MEMORY_BUDGET_GB``, default a quarter of the
machine's memory) is decoded into memory once, as before; a larger one streams.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmark import settings
from benchmark.data.files.reading import open_image, read_bytes
from benchmark.errors import DataError

__all__ = ["StreamedImages", "FileReader", "PackedReader", "decode_resized", "fits_in_memory",
           "decode_mode"]


def fits_in_memory(n_images: int, channels: int, size: int) -> bool:
    """Whether n decoded (channels, size, size) uint8 images fit in the memory budget
    (env NLB_MEMORY_BUDGET_GB, see benchmark/settings.py)."""
    return n_images * channels * size * size <= settings.memory_budget()


def decode_mode(device: torch.device) -> str:
    """The decoder a streamed run on ``device`` uses: "pil" or "nvjpeg" (GPU, opt-in with
    NLB_DECODE=gpu, see benchmark/settings.py)."""
    return "nvjpeg" if settings.decode() == "gpu" and device.type == "cuda" else "pil"


def _square_offset(long: int, size: int, crop: int) -> int:
    """Where the stored ``size`` square starts along a side of ``long`` pixels, so that its centre
    ``crop`` window is torchvision's CenterCrop(crop) of the whole side: round((long - crop) / 2)
    minus the square's own centring offset round((size - crop) / 2), kept inside the image."""
    if not crop or crop >= size:
        return int(round((long - size) / 2.0))
    want = int(round((long - crop) / 2.0)) - int(round((size - crop) / 2.0))
    return min(max(want, 0), long - size)


def decode_resized(path: str | Path, size: int, channels: int = 3, crop: int = 0) -> np.ndarray:
    """One image file -> (size, size, channels) uint8: short side resized to ``size`` (bilinear,
    Pillow, as torchvision's Resize on a PIL image), then a ``size x size`` window of the long
    side: centred (torchvision's CenterCrop rounding) or, with ``crop`` (the network's input side),
    placed so that the centre ``crop`` window of the stored square equals
    ``CenterCrop(crop)(Resize(size)(image))`` pixel for pixel (see :func:`_square_offset`).
    Raises OSError / ValueError for a file that does not decode, DataError for one that is not a
    regular file or is too large to decode (benchmark/data/files/reading.py)."""
    from PIL import Image
    with open_image(path) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        w, h = im.size
        if (w, h) != (size, size):
            if w <= h:
                nw, nh = size, int(size * h / w)
            else:
                nw, nh = int(size * w / h), size
            if (nw, nh) != (w, h):
                im = im.resize((nw, nh), Image.BILINEAR)
            left, top = _square_offset(nw, size, crop), _square_offset(nh, size, crop)
            im = im.crop((left, top, left + size, top + size))
        a = np.asarray(im, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


def _image_bytes(path: str) -> bytes:
    """The bytes of an image file for nvJPEG, under the checks Pillow's path makes: a regular
    file (never a FIFO), and an image within Pillow's decompression-bomb limit (its header is
    read from the bytes, so the GPU path refuses what the CPU path refuses)."""
    try:
        raw = read_bytes(path)
    except OSError as e:
        raise DataError(f"{path}: not a readable image ({e})") from None
    try:
        with open_image(path, io.BytesIO(raw)):
            pass
    except (OSError, ValueError):
        pass  # not for Pillow to judge here: nvJPEG, or the Pillow fallback, reports it
    return raw


class FileReader:
    """Decodes images from their files, a batch at a time, in worker threads.

    paths: (N,) the image files in dataset order; size: the side every image is brought to;
    workers: decoding threads (default: the CPUs this process may use, at most 16); crop: the
    network's input side, for the placement of the stored square (see decode_resized).
    """

    def __init__(self, paths: Sequence[str | Path], size: int, channels: int = 3,
                 workers: int | None = None, crop: int = 0):
        self.paths = [str(p) for p in paths]
        self.size, self.channels, self.crop = int(size), int(channels), int(crop)
        self.workers = workers or max(1, min(16, len(os.sched_getaffinity(0))))
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self):  # the thread pool stays with its process
        return {**self.__dict__, "_pool": None}

    def _decode_into(self, out: np.ndarray, rows: np.ndarray, pos: np.ndarray) -> None:
        for r, p in zip(rows, pos):
            try:
                out[r] = decode_resized(self.paths[p], self.size, self.channels, self.crop)
            except (OSError, ValueError) as e:
                raise DataError(f"{self.paths[p]}: not a readable image ({e})") from None

    def read(self, pos: np.ndarray) -> torch.Tensor:
        """(B,) positions -> (B, C, S, S) uint8 CPU tensor."""
        b = len(pos)
        out = np.empty((b, self.size, self.size, self.channels), dtype=np.uint8)
        if b:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="nlb-decode")
            chunks = np.array_split(np.arange(b), min(self.workers, b))
            futs = [self._pool.submit(self._decode_into, out, c, pos[c]) for c in chunks if len(c)]
            for f in futs:
                f.result()
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()

    def read_gpu(self, pos: np.ndarray, device: torch.device) -> torch.Tensor:
        """(B,) positions -> (B, C, S, S) uint8 on ``device``, JPEGs decoded by nvJPEG (the file
        bytes are read by the worker threads); resized on the device (bilinear, antialiased)."""
        import torch.nn.functional as F
        from torchvision.io import ImageReadMode, decode_jpeg
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="nlb-decode")
        raw = list(self._pool.map(lambda p: torch.frombuffer(bytearray(_image_bytes(self.paths[p])),
                                                             dtype=torch.uint8), pos))
        mode = ImageReadMode.GRAY if self.channels == 1 else ImageReadMode.RGB
        try:
            imgs = decode_jpeg(raw, mode=mode, device=device)
        except RuntimeError:  # a PNG or CMYK file in the batch: this batch is decoded by Pillow
            return self.read(pos).to(device)
        s = self.size
        out = torch.empty((len(pos), self.channels, s, s), dtype=torch.uint8, device=device)
        for i, im in enumerate(imgs):  # images differ in size: one resize each, on the device
            _, h, w = im.shape
            nh, nw = (int(s * h / w), s) if w <= h else (s, int(s * w / h))
            im = F.interpolate(im[None].float(), size=(nh, nw), mode="bilinear", antialias=True,
                               align_corners=False)[0]
            top, left = _square_offset(nh, s, self.crop), _square_offset(nw, s, self.crop)
            out[i] = im[:, top:top + s, left:left + s].round().clamp(0, 255).to(torch.uint8)
        return out


class PackedReader:
    """Reads batches out of a packed ``.npy`` array (N, C, S, S) uint8, memory-mapped."""

    def __init__(self, file: str | Path):
        self.file = str(file)
        self._arr: np.ndarray | None = None

    def __getstate__(self):  # the memory map is reopened in another process
        return {**self.__dict__, "_arr": None}

    @property
    def array(self) -> np.ndarray:
        if self._arr is None:
            self._arr = np.load(self.file, mmap_mode="r", allow_pickle=False)
        return self._arr

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, pos: np.ndarray) -> torch.Tensor:
        """(B,) positions -> (B, C, S, S) uint8 CPU tensor: one gather in sorted order."""
        order = np.argsort(pos, kind="stable")
        out = np.empty((len(pos), *self.array.shape[1:]), dtype=np.uint8)
        out[order] = self.array[pos[order]]
        return torch.from_numpy(out)


class StreamedImages:
    """A dataset's images as a batch-indexable stand-in for an (N, C, H, W) uint8 tensor.

    reader: FileReader, PackedReader or TensorReader (anything with ``len`` and
    ``read(positions) -> (B, C, H, W) uint8``); positions: (N,) int64 reader positions of this
    view (default all); device: where batches are delivered.
    """

    dtype = torch.uint8

    def __init__(self, reader, shape: tuple[int, int, int],
                 positions: np.ndarray | None = None, device: torch.device | str = "cpu"):
        self.reader = reader
        self.item_shape = tuple(int(s) for s in shape)
        self.positions = (np.arange(len(reader), dtype=np.int64) if positions is None
                          else np.asarray(positions, dtype=np.int64))
        self.device = torch.device(device)

    # --- the tensor-like surface the runner and the methods use ------------------------------
    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.positions), *self.item_shape))

    def __len__(self) -> int:
        return len(self.positions)

    def __repr__(self) -> str:
        return (f"StreamedImages({type(self.reader).__name__}, shape={tuple(self.shape)}, "
                f"device={self.device})")

    def _positions(self, idx) -> np.ndarray:
        if isinstance(idx, slice):
            return self.positions[idx]
        if torch.is_tensor(idx):
            idx = idx.detach().cpu().numpy()
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        return self.positions[idx.astype(np.int64).reshape(-1)]

    def __getitem__(self, idx) -> torch.Tensor:
        """A batch: (B, C, H, W) uint8 on self.device, in the order of ``idx``."""
        pos = self._positions(idx)
        if (self.device.type == "cuda" and isinstance(self.reader, FileReader)
                and decode_mode(self.device) == "nvjpeg"):
            return self.reader.read_gpu(pos, self.device)
        x = self.reader.read(pos)
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device)

    def subset(self, idx) -> "StreamedImages":
        """A view over some of this view's images (nothing is read)."""
        return StreamedImages(self.reader, self.item_shape, self._positions(idx), self.device)

    def to(self, device: torch.device | str, **_kw) -> "StreamedImages":
        """The same view, delivering batches to ``device``."""
        return StreamedImages(self.reader, self.item_shape, self.positions, device)

    def materialise(self, batch: int = 1024) -> torch.Tensor:
        """All of this view's images as one CPU tensor (for small views and tests)."""
        out = torch.empty(tuple(self.shape), dtype=torch.uint8)
        for s in range(0, len(self), batch):
            out[s:s + batch] = self.reader.read(self.positions[s:s + batch])
        return out


class TensorReader:
    """Batches out of images already in host memory (a set that fits the host, not the GPU)."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def read(self, pos: np.ndarray) -> torch.Tensor:
        return self.x[torch.from_numpy(np.asarray(pos, dtype=np.int64))]


DEVICE_SHARE = 0.5
"""An in-memory image set goes to a CUDA device whole only if it takes at most this share of the
device's free memory; else it stays on the host and each batch is copied over."""


def take(x: torch.Tensor | StreamedImages, idx, device: torch.device) -> torch.Tensor | StreamedImages:
    """x[idx] on ``device``: a copy for an in-memory tensor (kept on the host and delivered a
    batch at a time when it would fill a CUDA device, see DEVICE_SHARE), a view for a streamed
    source."""
    if isinstance(x, StreamedImages):
        return x.subset(idx).to(device)
    if device.type == "cuda":
        nbytes = len(idx) * int(np.prod(x.shape[1:])) * x.element_size()
        free, _total = torch.cuda.mem_get_info(device)
        if nbytes > DEVICE_SHARE * free:
            pos = idx.cpu().numpy() if torch.is_tensor(idx) else np.asarray(idx)
            return StreamedImages(TensorReader(x), tuple(x.shape[1:]), pos, device)
    return x[idx].to(device)
