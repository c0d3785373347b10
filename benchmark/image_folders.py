"""Image datasets on disk, decoded into memory: Animal-10N, and your own noisy data.

- ``animal10n``: Animal-10N (Song et al., ICML 2019) in its official layout, ``animal-10n/``
  (or ``Animal-10N/``) holding ``training/`` (50,000 images) and ``testing/`` (5,000), 64x64 JPEGs
  named ``<label>_<number>.jpg`` with the label 0..9 in the file name. The data are licence-gated
  (a request form on the dataset's page); the suite never downloads them. Its labels are the
  real noisy labels (about 8% wrong); there are no clean training labels, so a run uses noise
  kind ``none`` and the runner computes no clean-label diagnostics (``verified`` all -1).
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
wrong count or a wrong image size raises :class:`benchmark.data.DataError` naming the file.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from benchmark import settings
from benchmark.data import DatasetArrays, _channel_stats, _search_roots, register_dataset
from benchmark.errors import DataError, DatasetNotFound

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
ANIMAL10N_CLASSES = ["cat", "lynx", "wolf", "coyote", "cheetah", "jaguar", "chimpanzee", "orangutan",
                     "hamster", "guinea pig"]
ANIMAL10N_COUNTS = {"training": 50_000, "testing": 5_000}
ANIMAL10N_NAME = re.compile(r"^(\d+)_(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


def decode_images(paths: list[Path], size: int | None) -> torch.Tensor:
    """Decode image files into (N, C, H, W) uint8 (C = 3, or 1 when every image is grey).

    size: resize every image to size x size (bilinear); None: all images must share one size.
    Raises DataError naming the first file that does not decode or has another size.
    """
    from PIL import Image, UnidentifiedImageError
    if not paths:
        raise DataError("no images to decode")
    arrays, grey = [], True
    shape = None
    for p in paths:
        try:
            with Image.open(p) as im:
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


def _arrays(name: str, train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor, test_y: np.ndarray,
            classes: list[str], source: str) -> DatasetArrays:
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{name}: training images are {tuple(train_x.shape[1:])}, test images "
                        f"{tuple(test_x.shape[1:])}; use @S to give both one size")
    mean, std = _channel_stats(train_x.numpy())
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
    out = {}
    for c in sorted(p for p in d.iterdir() if p.is_dir()):
        out[c.name] = sorted(p for p in c.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return out


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
    return _arrays(f"folder:{spec}", *tensors["train"], *tensors["test"], classes, str(root))


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
    return _arrays(f"list:{spec}", *out["train"], *out["test"], classes, str(file))


# ----- Animal-10N -----------------------------------------------------------------------------

ANIMAL10N_LAYOUT = ("animal10n expects a folder animal-10n/ (or Animal-10N/, or the folder itself) "
                    "under --data-dir, NLB_DATA_DIR or the cache dir, holding training/ (50,000 "
                    "images) and testing/ (5,000), 64x64 JPEGs named <label>_<number>.jpg; it is "
                    "licence-gated: request it at https://dm.kaist.ac.kr/datasets/animal-10n/")


def find_folder(data_dir: str | None, subdirs: tuple[str, ...], marker: str, layout: str) -> Path:
    """The first folder among the search roots (each root itself, then its ``subdirs``) that
    holds ``marker``; DatasetNotFound naming ``layout`` and every folder tried otherwise."""
    tried = []
    for root in _search_roots(data_dir):
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


def _find_animal10n(data_dir: str | None) -> Path:
    d = find_folder(data_dir, ("animal-10n", "Animal-10N", "animal10n"), "training", ANIMAL10N_LAYOUT)
    need_files(d, ["testing"], ANIMAL10N_LAYOUT)
    return d


def _animal_split(d: Path) -> tuple[list[Path], np.ndarray]:
    files = sorted(p for p in d.iterdir() if p.is_file())
    bad = [p.name for p in files if not ANIMAL10N_NAME.match(p.name)]
    if bad:
        raise DataError(f"{d}: file names not of the form <label>_<number>.jpg: {', '.join(bad[:5])}")
    labels = np.array([int(ANIMAL10N_NAME.match(p.name).group(1)) for p in files])
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{d}: labels outside 0..9 ({sorted(set(labels.tolist()) - set(range(10)))})")
    expected = ANIMAL10N_COUNTS[d.name]
    if len(files) != expected and not settings.allow_unverified():
        raise DataError(f"{d}: {len(files)} images, Animal-10N has {expected} (an incomplete copy?; "
                        f"{settings.ALLOW_UNVERIFIED}=1 loads it anyway)")
    return files, labels


@register_dataset("animal10n")
def _load_animal10n(*, data_dir: str | None, download: bool, cifar_n_path: str | None) -> DatasetArrays:
    d = _find_animal10n(data_dir)
    out = {}
    for split in ("training", "testing"):
        files, labels = _animal_split(d / split)
        x = decode_images(files, None)
        if tuple(x.shape[1:]) != (3, 64, 64):
            raise DataError(f"{d / split}: images are {tuple(x.shape[1:])}, Animal-10N's are (3, 64, 64)")
        out[split] = (x, labels)
    data = _arrays("animal10n", *out["training"], *out["testing"], list(ANIMAL10N_CLASSES), str(d))
    # the labels are the real noisy ones, none verified: no truth for the selection diagnostics
    data.verified = np.full(len(data.train_y), -1, dtype=np.int8)
    return data


PREFIX_LOADERS = {"folder:": load_folder, "list:": load_list}
"""Datasets named by a prefix and a path (load_dataset dispatches on these)."""
