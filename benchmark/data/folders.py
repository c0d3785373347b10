"""Your own image datasets, decoded into memory; and the helpers every image-folder loader uses.

- ``folder:PATH``: one folder per class, torchvision's ImageFolder layout, under ``PATH/train``
  and ``PATH/test`` (the same class folders in both; class index = sorted folder name).
- ``list:FILE``: lines ``path,label[,split]`` (``split`` train or test, default train; ``path``
  relative to FILE's folder or absolute; ``label`` a class index 0..C-1 or a class name, names
  numbered in sorted order; ``#`` starts a comment).

``folder:`` and ``list:`` take an optional ``@S`` suffix (``folder:/data/mine@64``): every image is
resized to S x S (bilinear). Without it every image must already share one size. Images are
decoded with Pillow into (N, C, H, W) uint8 tensors (RGB, or grey when every image is grey).
A missing dataset raises :class:`DatasetNotFound` (a usage error, exit code 2) naming the layout
expected and the files missing; a file that does not decode, a label outside the classes, a
wrong count or a wrong image size raises :class:`benchmark.data.DataError` naming the file. So
does an entry named as an image that is not a regular file (a FIFO, a folder: refused, never
opened) and an image too large for Pillow to decode (benchmark/data/files/reading.py).

The helpers :func:`decode_images`, :func:`image_arrays`, :func:`find_folder` and
:func:`need_files` serve the named datasets too (animal10n.py, real_world.py).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from benchmark.data.files.reading import IMAGE_SUFFIXES, open_image, scan_images
from benchmark.data.registry import DatasetArrays, channel_stats, register_prefix, search_roots
from benchmark.errors import DataError, DatasetNotFound

__all__ = ["IMAGE_SUFFIXES", "FOLDER_LAYOUT", "LIST_LAYOUT", "decode_images", "image_arrays", "split_size",
           "load_folder", "load_list", "parse_list", "find_folder", "need_files"]

def decode_images(paths: list[Path], size: int | None) -> torch.Tensor:
    """Decode image files into (N, C, H, W) uint8 (C = 3, or 1 when every image is grey).

    size: resize every image to size x size (bilinear); None: all images must share one size.
    Raises DataError naming the first file that does not decode or has another size, is not a
    regular file or is too large to decode (benchmark/data/files/reading.py).
    """
    from PIL import Image, UnidentifiedImageError
    if not paths:
        raise DataError("no images to decode")
    arrays, grey = [], True
    shape = None
    for p in paths:
        try:
            with open_image(p) as im:
                mode = "L" if im.mode in ("L", "1", "I;16") else "RGB"
                im = im.convert(mode)
                if size:
                    im = im.resize((size, size), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise DataError(f"{p}: not a readable image ({e})") from None
        if a.ndim == 2:
            a = a[:, :, None]
        else:
            grey = False
        if shape is None:
            shape = a.shape[:2]
        elif a.shape[:2] != shape:
            raise DataError(f"{p}: {a.shape[1]}x{a.shape[0]} pixels, the others are {shape[1]}x{shape[0]}; "
                            "add @S to the dataset name to resize every image to S x S")
        arrays.append(a)
    if not grey:
        arrays = [np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a for a in arrays]
    x = np.stack(arrays).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x))


def image_arrays(name: str, train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor, test_y: np.ndarray,
            classes: list[str], source: str) -> DatasetArrays:
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{name}: training images are {tuple(train_x.shape[1:])}, test images "
                        f"{tuple(test_x.shape[1:])}; use @S to give both one size")
    mean, std = channel_stats(train_x.numpy())
    side = int(train_x.shape[-1])
    return DatasetArrays(name=name, train_x=train_x, train_y=train_y.astype(np.int64), test_x=test_x,
                         test_y=test_y.astype(np.int64), classes=classes, mean=mean,
                         std=tuple(max(s, 1e-3) for s in std), crop_pad=max(2, side // 8), hflip=True,
                         source=source)


def split_size(spec: str) -> tuple[str, int | None]:
    """'PATH@64' -> ('PATH', 64); 'PATH' -> ('PATH', None). DatasetNotFound for a bad size."""
    m = re.fullmatch(r"(.*)@(\d+)", spec)
    if not m:
        return spec, None
    size = int(m.group(2))
    if not 4 <= size <= 1024:
        raise DatasetNotFound(f"image size @{size} out of range: use 4..1024")
    return m.group(1), size


# ----- folder:PATH ----------------------------------------------------------------------------

FOLDER_LAYOUT = ("folder:PATH expects PATH/train/<class>/<image> and PATH/test/<class>/<image> "
                 "(torchvision ImageFolder layout, the same class folders in both; images "
                 f"{', '.join(IMAGE_SUFFIXES)})")


def _class_images(d: Path) -> dict[str, list[Path]]:
    return {c.name: scan_images(c) for c in sorted(p for p in d.iterdir() if p.is_dir())}


@register_prefix("folder:", "PATH")
def load_folder(spec: str) -> DatasetArrays:
    """``folder:PATH[@S]`` (see the module docstring)."""
    path, size = split_size(spec)
    root = Path(path).expanduser()
    missing = [str(root / s) for s in ("train", "test") if not (root / s).is_dir()]
    if missing:
        raise DatasetNotFound(f"{FOLDER_LAYOUT}; missing: {', '.join(missing)}")
    parts = {s: _class_images(root / s) for s in ("train", "test")}
    classes = list(parts["train"])
    if not classes:
        raise DatasetNotFound(f"{FOLDER_LAYOUT}; {root / 'train'} has no class folders")
    extra = sorted(set(parts["test"]) - set(classes))
    if extra:
        raise DataError(f"{root / 'test'} has class folders not in {root / 'train'}: {', '.join(extra)}")
    empty = [f"train/{c}" for c, files in parts["train"].items() if not files]
    if empty:  # a class without training images cannot be learnt (an empty test folder is fine)
        raise DataError(f"class folders without images: {', '.join(empty)}")
    tensors = {}
    for s in ("train", "test"):
        files = [(f, classes.index(c)) for c, fs in parts[s].items() for f in fs]
        if not files:
            raise DataError(f"{root / s}: no images")
        x = decode_images([f for f, _ in files], size)
        tensors[s] = (x, np.array([y for _, y in files]))
    return image_arrays(f"folder:{spec}", *tensors["train"], *tensors["test"], classes, str(root))


# ----- list:FILE ------------------------------------------------------------------------------

LIST_LAYOUT = ("list:FILE expects lines 'path,label[,split]' (split train or test, default train; "
               "path relative to FILE's folder or absolute; label a class index or a class name)")


def parse_list(file: Path) -> tuple[list[tuple[Path, str, str]], list[str]]:
    """Rows (path, label text, split) and errors of a list file (every line checked)."""
    rows, errors = [], []
    base = file.parent
    for i, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
            errors.append(f"line {i}: expected 'path,label[,split]', got {line!r}")
            continue
        split = cells[2].lower() if len(cells) == 3 else "train"
        if split not in ("train", "test"):
            errors.append(f"line {i}: split {cells[2]!r} is not train or test")
            continue
        p = Path(cells[0]).expanduser()
        rows.append((p if p.is_absolute() else base / p, cells[1], split))
    return rows, errors


@register_prefix("list:", "FILE")
def load_list(spec: str) -> DatasetArrays:
    """``list:FILE[@S]`` (see the module docstring)."""
    path, size = split_size(spec)
    file = Path(path).expanduser()
    if not file.is_file():
        raise DatasetNotFound(f"{LIST_LAYOUT}; missing: {file}")
    rows, errors = parse_list(file)
    missing = [str(p) for p, _, _ in rows if not p.is_file()]
    if missing:
        errors.append(f"{len(missing)} listed file(s) missing, e.g. {', '.join(missing[:3])}")
    if errors:
        raise DataError(f"{file}: " + "; ".join(errors[:5]))
    labels = [lab for _, lab, _ in rows]
    if all(re.fullmatch(r"\d+", lab) for lab in labels):
        ids = [int(lab) for lab in labels]
        classes = [str(c) for c in range(max(ids) + 1)]
    else:
        if any(re.fullmatch(r"\d+", lab) for lab in labels):
            raise DataError(f"{file}: labels mix class indices and class names")
        classes = sorted(set(labels))
        ids = [classes.index(lab) for lab in labels]
    out = {}
    for s in ("train", "test"):
        sel = [(p, y) for (p, _, sp), y in zip(rows, ids) if sp == s]
        if not sel:
            raise DataError(f"{file}: no {s} rows ({LIST_LAYOUT})")
        out[s] = (decode_images([p for p, _ in sel], size), np.array([y for _, y in sel]))
    return image_arrays(f"list:{spec}", *out["train"], *out["test"], classes, str(file))


# ----- finding a dataset's folder -------------------------------------------------------------

def find_folder(data_dir: str | None, subdirs: tuple[str, ...], marker: str, layout: str) -> Path:
    """The first folder among the search roots (each root itself, then its ``subdirs``) that
    holds ``marker``; DatasetNotFound naming ``layout`` and every folder tried otherwise."""
    tried = []
    for root in search_roots(data_dir):
        for d in (root, *(root / s for s in subdirs)):
            tried.append(d)
            if (d / marker).exists():
                return d
    raise DatasetNotFound(f"{layout}; {marker} not found in: {', '.join(str(t) for t in tried)}")


def need_files(d: Path, names: list[str], layout: str) -> None:
    """DatasetNotFound naming ``layout`` and the entries of ``names`` that ``d`` lacks."""
    gone = [n for n in names if not (d / n).exists()]
    if gone:
        raise DatasetNotFound(f"{layout}; {d} lacks {', '.join(gone)}")
