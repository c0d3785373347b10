"""Your own image datasets, decoded into memory; and the helpers every image-folder loader uses.

- ``folder:PATH``: one folder per class, torchvision's ImageFolder layout, under ``PATH/train``
  and ``PATH/test`` (the same class folders in both; class index = sorted folder name).
- ``list:FILE``: lines ``path,label[,split]`` (``split`` train or test, default train; ``path``
  relative to FILE's folder or absolute; ``label`` a class index 0..C-1 or a class name, names
  numbered in sorted order; ``#`` starts a comment). FILE is UTF-8. As folder: and the official
  lists demand, every class has a training image and each image is listed once (not twice, not
  in train and test); a refusal names the line.

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

import os
import re
from pathlib import Path

import numpy as np
import torch

from benchmark.data.files.reading import IMAGE_SUFFIXES, open_image, read_text, scan_images, what_is
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


Row = tuple[Path, str, str, int]
"""One row of a list file: (image path, label text, split, line number)."""


def parse_list(file: Path) -> tuple[list[Row], list[str]]:
    """Rows (path, label text, split, line) and errors of a list file (every line checked)."""
    rows, errors = [], []
    base = file.parent
    # split on newlines only, so that line numbers are an editor's (splitlines also breaks at
    # form feeds and Unicode separators)
    for i, line in enumerate(read_text(file).split("\n"), 1):
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
        rows.append((p if p.is_absolute() else base / p, cells[1], split, i))
    return rows, errors


def _file_errors(rows: list[Row]) -> list[str]:
    """What is wrong with the listed files: missing ones, ones that are not regular files (never
    opened: a FIFO would hang the decoder), and images listed twice (the same file, by device
    and inode, so also through another spelling or a link): with other labels, in both train
    and test (a test image trained on), or twice alike (folder: and the official lists cannot
    hold an image twice either)."""
    missing, errors, seen = [], [], {}
    for p, label, split, i in rows:
        kind = what_is(p)
        if kind in ("missing", "a broken link"):
            missing.append(f"{p} (line {i})")
            continue
        if kind is not None:
            errors.append(f"line {i}: {p} is {kind}, not a regular file: refused")
            continue
        st = os.stat(p)
        first = seen.setdefault((st.st_dev, st.st_ino), (i, label, split))
        if first[0] == i:
            continue
        j, label0, split0 = first
        if split0 != split:
            errors.append(f"lines {j} and {i}: the same image {p} in {split0} and {split} "
                          f"(a test image must not be trained on)")
        elif label0 != label:
            errors.append(f"lines {j} and {i}: {p} listed twice with different labels "
                          f"({label0!r}, {label!r})")
        else:
            errors.append(f"lines {j} and {i}: {p} listed twice")
    if missing:
        errors.insert(0, f"{len(missing)} listed file(s) missing, e.g. {', '.join(missing[:3])}")
    return errors


def _list_classes(rows: list[Row]) -> tuple[list[str], list[int], list[str]]:
    """(class names, each row's class index, errors). Labels are all class indices (classes
    0..C-1) or all class names (numbered in sorted order); every class must have a training
    image, as folder: demands of its class folders: a label of 7 beside 0 alone would make six
    classes that cannot be learnt, and one of 99999999999 a hundred billion class names."""
    numeric = [bool(re.fullmatch(r"\d+", lab)) for _, lab, _, _ in rows]
    if any(numeric) and not all(numeric):
        i = next(r[3] for r, n in zip(rows, numeric) if n)
        j = next(r[3] for r, n in zip(rows, numeric) if not n)
        return [], [], [f"labels mix class indices (line {i}) and class names (line {j})"]
    if all(numeric):
        ids = [int(lab) for _, lab, _, _ in rows]
        top = max(ids)
        trained = {y for y, r in zip(ids, rows) if r[2] == "train"}
        if top + 1 > len(trained):  # some index of 0..top has no training row
            line = rows[ids.index(top)][3]
            absent, c = [], 0
            while len(absent) < 5 and c <= top:  # at most len(trained) + 5 steps
                if c not in trained:
                    absent.append(str(c))
                c += 1
            return [], [], [f"line {line}: label {top} makes {top + 1} classes (0..{top}), "
                            f"{top + 1 - len(trained)} of them without a training image (e.g. "
                            f"{', '.join(absent)}): class indices must run 0..C-1 with a training "
                            f"image in each"]
        return [str(c) for c in range(top + 1)], ids, []
    classes = sorted({lab for _, lab, _, _ in rows})
    trained = {lab for _, lab, split, _ in rows if split == "train"}
    untrained = [f"{lab!r} (line {i})" for _, lab, _, i in rows if lab not in trained]
    if untrained:
        return [], [], [f"classes without a training image: {', '.join(untrained[:5])}: every "
                         f"class needs one"]
    index = {c: k for k, c in enumerate(classes)}
    return classes, [index[lab] for _, lab, _, _ in rows], []


@register_prefix("list:", "FILE")
def load_list(spec: str) -> DatasetArrays:
    """``list:FILE[@S]`` (see the module docstring)."""
    path, size = split_size(spec)
    file = Path(path).expanduser()
    kind = what_is(file)
    if kind is not None:
        raise DatasetNotFound(f"{LIST_LAYOUT}; " + (f"missing: {file}" if kind == "missing"
                                                    else f"{file} is {kind}, not a list file"))
    rows, errors = parse_list(file)
    if not rows and not errors:
        raise DataError(f"{file}: no rows, only blank or comment lines ({LIST_LAYOUT})")
    errors += _file_errors(rows)
    if not errors:
        classes, ids, errors = _list_classes(rows)
    if errors:
        more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise DataError(f"{file}: " + "; ".join(errors[:5]) + more)
    out = {}
    for s in ("train", "test"):
        sel = [(r[0], y) for r, y in zip(rows, ids) if r[2] == s]
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
