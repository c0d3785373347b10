"""Real-world noisy datasets in their official layouts: Clothing1M, Food-101N, WebVision-mini.

The data are licence-gated: the suite never downloads them. Each is looked for under
``--data-dir``, env ``NLB_DATA_DIR`` or the cache dir (in the folder itself or its usual
sub-folder); a missing copy raises :class:`benchmark.errors.DatasetNotFound` (exit code 2)
naming the layout expected, the files missing and where to request the data. Every list and
label file is parsed completely and checked (format, duplicates, labels in range, every listed
image present, the official counts unless ``NLB_ALLOW_UNVERIFIED_DATA=1``).

Geometry: every image is stored as a ``size x size`` square (short side resized to ``size``,
a window of the long side placed so that the centre ``crop`` window equals torchvision's
``CenterCrop(crop)(Resize(size)(image))``: test images are exactly the official ones). Training
crops are random ``crop`` windows of that square, while the official ``RandomCrop`` ranges over
the whole long side of a non-square image: a narrower spread of crops (deviation, can change
results; numbered in each preset).

- ``clothing1m`` (Xiao et al., CVPR 2015), folder ``clothing1m/`` (or ``Clothing1M/``) holding
  ``images/``, ``noisy_label_kv.txt`` and ``clean_label_kv.txt`` (lines ``images/0/00/x.jpg 3``),
  ``noisy_train_key_list.txt``, ``clean_val_key_list.txt``, ``clean_test_key_list.txt`` (lines
  ``images/...jpg``) and ``category_names_eng.txt``. Training: the 1,000,000 noisy-train images
  with their noisy labels; test: the 10,526 clean-test images with their clean labels. The
  noisy-train images that also have a clean label give the verification flags (the runner's
  selection diagnostics). Images stored at 256 (short side, centre square), fed at 224
  (DivideMix's Resize(256) + RandomCrop / CenterCrop(224)).
- ``food101n`` (Lee et al., CVPR 2018), folder ``Food-101N_release/`` holding ``meta/classes.txt``,
  ``meta/imagelist.tsv`` (``class/key.jpg``: the 310,009 training images), ``meta/verified_train.tsv``
  and ``meta/verified_val.tsv`` (``class/key.jpg<TAB>0|1``) and ``images/<class>/<key>.jpg``; its
  test set is Food-101's (Bossard et al., 2014), folder ``food-101/`` holding ``meta/test.txt``
  (``class/id``, 25,250 lines) and ``images/<class>/<id>.jpg``. Labels are the class folder of
  each image; the verification labels are the verification flags. 256 stored, 224 fed.
- ``webvision_mini`` (Li et al., 2017; the "mini" protocol of Jiang et al., MentorNet, 2018):
  the Google images of WebVision 1.0's first 50 classes, folder ``webvision/`` holding
  ``info/train_filelist_google.txt`` (``google/q0001/x.jpg 0``), ``info/val_filelist.txt``
  (``val000001.jpg 0``), ``info/synsets.txt`` and the images (``google/...``,
  ``val_images_256/...``). Test: the WebVision validation images of those classes; second test
  set ``imagenet``: the ILSVRC2012 validation images of the same 50 synsets, folder
  ``imagenet/val/`` in torchvision's layout (``<wnid>/*.JPEG``) or DivideMix's (``0/`` .. ``49/``).
  Stored at 320, fed at 299 (DivideMix's Resize(320) + crops of 299 for InceptionResNetV2);
  ``webvision_mini_227`` (ELR+: 256 stored, 227 fed) and ``webvision_mini_224`` (APL / ANL: 256,
  224) are the same images at those protocols' geometry.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from benchmark import settings
from benchmark.data.files.listing import Listing, Split
from benchmark.data.files.materialise import materialise
from benchmark.data.files.reading import check_key, read_text, scan_images
from benchmark.data.folders import find_folder, need_files
from benchmark.data.registry import DatasetArrays, register_dataset
from benchmark.errors import DataError, DatasetNotFound

__all__ = ["LISTINGS", "listing_for", "CLOTHING1M_COUNTS", "FOOD101N_COUNTS", "WEBVISION_MINI_COUNTS"]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

LISTINGS: dict[str, Callable[[str | None], Listing]] = {}
"""Dataset name -> fn(data_dir) -> Listing (``runner.py pack`` and the loaders use these)."""


def listing_for(name: str, data_dir: str | None = None) -> Listing:
    if name not in LISTINGS:
        raise ValueError(f"dataset '{name}' has no file listing to pack. Valid: {', '.join(sorted(LISTINGS))}")
    return LISTINGS[name](data_dir)


def _register(name: str):
    """Register a listing function as LISTINGS[name] and as the dataset ``name``."""
    def deco(fn: Callable[[str | None], Listing]):
        LISTINGS[name] = fn

        @register_dataset(name)
        def _load(*, data_dir: str | None, download: bool, cifar_n_path: str | None) -> DatasetArrays:
            return materialise(fn(data_dir), data_dir)
        return fn
    return deco


def _count(name: str, what: str, got: int, want: int) -> None:
    if got != want and not settings.allow_unverified():
        raise DataError(f"{name}: {got} {what}, the official release has {want} (an incomplete "
                        f"copy?; {settings.ALLOW_UNVERIFIED}=1 loads it anyway)")


def _numbered(file: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a list file, stripped, with their line numbers (for messages).
    read_text: a FIFO in a list file's place is refused, not waited on; bytes that are not UTF-8
    are named by line."""
    return [(i, ln.strip()) for i, ln in enumerate(read_text(file).split("\n"), 1) if ln.strip()]


def _lines(file: Path) -> list[str]:
    return [ln for _, ln in _numbered(file)]


def _kv(file: Path, num_classes: int) -> dict[str, int]:
    """``path label`` lines -> {path: label}; every line checked (the path too: check_key)."""
    out: dict[str, int] = {}
    for i, ln in _numbered(file):
        parts = ln.split()
        if len(parts) != 2 or not re.fullmatch(r"\d+", parts[1]):
            raise DataError(f"{file}, line {i}: expected 'path label', got {ln!r}")
        lab = int(parts[1])
        if lab >= num_classes:
            raise DataError(f"{file}, line {i}: label {lab} outside 0..{num_classes - 1}")
        if out.setdefault(check_key(parts[0], f"{file}, line {i}"), lab) != lab:
            raise DataError(f"{file}, line {i}: {parts[0]} listed twice with different labels")
    return out


def _keys(file: Path) -> tuple[list[str], list[int]]:
    """A key list's keys (image paths, each checked: check_key) and their line numbers."""
    rows = _numbered(file)
    keys = [check_key(k, f"{file}, line {i}") for i, k in rows]
    if len(set(keys)) != len(keys):
        first: dict[str, int] = {}
        i, j = next((first[k], i) for i, k in rows if first.setdefault(k, i) != i)
        raise DataError(f"{file}: {len(keys) - len(set(keys))} keys listed more than once (e.g. "
                        f"lines {i} and {j})")
    return keys, [i for i, _ in rows]


# ----- Clothing1M -----------------------------------------------------------------------------

CLOTHING1M_LAYOUT = (
    "clothing1m expects a folder clothing1m/ (or Clothing1M/) under --data-dir, NLB_DATA_DIR or "
    "the cache dir, holding images/, noisy_label_kv.txt, clean_label_kv.txt, noisy_train_key_list.txt, "
    "clean_val_key_list.txt, clean_test_key_list.txt and category_names_eng.txt, as released; it "
    "is licence-gated: request it from the authors (https://github.com/Cysu/noisy_label)")
CLOTHING1M_FILES = ["images", "noisy_label_kv.txt", "clean_label_kv.txt", "noisy_train_key_list.txt",
                    "clean_val_key_list.txt", "clean_test_key_list.txt", "category_names_eng.txt"]
CLOTHING1M_COUNTS = {"noisy_train": 1_000_000, "clean_val": 14_313, "clean_test": 10_526, "classes": 14}
CLOTHING1M_MEAN, CLOTHING1M_STD = (0.6959, 0.6537, 0.6371), (0.3113, 0.3192, 0.3214)
"""dataloader_clothing1M.py's Normalize constants (DivideMix)."""


@_register("clothing1m")
def clothing1m_listing(data_dir: str | None) -> Listing:
    d = find_folder(data_dir, ("clothing1m", "Clothing1M", "clothing1M"), "noisy_label_kv.txt", CLOTHING1M_LAYOUT)
    need_files(d, CLOTHING1M_FILES, CLOTHING1M_LAYOUT)
    classes = _lines(d / "category_names_eng.txt")
    _count("clothing1m", "class names", len(classes), CLOTHING1M_COUNTS["classes"])
    noisy = _kv(d / "noisy_label_kv.txt", len(classes))
    clean = _kv(d / "clean_label_kv.txt", len(classes))
    train, train_lines = _keys(d / "noisy_train_key_list.txt")
    test, test_lines = _keys(d / "clean_test_key_list.txt")
    _count("clothing1m", "noisy-train keys", len(train), CLOTHING1M_COUNTS["noisy_train"])
    _count("clothing1m", "clean-test keys", len(test), CLOTHING1M_COUNTS["clean_test"])
    val, _ = _keys(d / "clean_val_key_list.txt")
    clean_train, _ = _keys(d / "clean_train_key_list.txt")  # not trained on (DivideMix does not), checked
    for keys, table, what in ((train, noisy, "noisy_label_kv.txt"), (test, clean, "clean_label_kv.txt"),
                              (val, clean, "clean_label_kv.txt"), (clean_train, clean, "clean_label_kv.txt")):
        gone = [k for k in keys if k not in table]
        if gone:
            raise DataError(f"clothing1m: {len(gone)} keys have no label in {what}, e.g. {', '.join(gone[:3])}")
    leak = set(test).intersection([*val, *clean_train, *train])
    if leak:
        raise DataError(f"clothing1m: {len(leak)} test images are also in another split, e.g. {sorted(leak)[:3]}")
    y = np.array([noisy[k] for k in train])
    verified = np.array([(-1 if k not in clean else int(clean[k] == noisy[k])) for k in train], dtype=np.int8)
    inside = (d, d / "images")  # images/ may be a link to another disk
    return Listing("clothing1m", d, classes,
                   Split(train, y, str(d / "noisy_train_key_list.txt"), train_lines, inside),
                   Split(test, [clean[k] for k in test], str(d / "clean_test_key_list.txt"), test_lines, inside),
                   size=256, crop_size=224, mean=CLOTHING1M_MEAN, std=CLOTHING1M_STD,
                   verified=verified, source=str(d))


# ----- Food-101N ------------------------------------------------------------------------------

FOOD101N_LAYOUT = (
    "food101n expects Food-101N_release/ (meta/classes.txt, meta/imagelist.tsv, meta/verified_train.tsv, "
    "meta/verified_val.tsv, images/<class>/<key>.jpg) and, for its test set, Food-101's food-101/ "
    "(meta/test.txt, images/<class>/<id>.jpg) under --data-dir, NLB_DATA_DIR or the cache dir; "
    "Food-101N: https://kuanghuei.github.io/Food-101N/, Food-101: "
    "https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/")
FOOD101N_COUNTS = {"train": 310_009, "test": 25_250, "classes": 101}


def _tsv(file: Path, header: str) -> list[tuple[int, list[str]]]:
    """The rows after the header, split at tabs, with their line numbers."""
    rows = _numbered(file)
    if not rows or rows[0][1].split("\t")[0] != header:
        raise DataError(f"{file}: expected the header {header!r} on its first line")
    return [(i, r.split("\t")) for i, r in rows[1:]]


@_register("food101n")
def food101n_listing(data_dir: str | None) -> Listing:
    d = find_folder(data_dir, ("Food-101N_release", "food-101n", "Food-101N"), "meta/imagelist.tsv", FOOD101N_LAYOUT)
    need_files(d, ["meta/classes.txt", "meta/verified_train.tsv", "meta/verified_val.tsv", "images"], FOOD101N_LAYOUT)
    t = find_folder(data_dir, ("food-101", "food101"), "meta/test.txt", FOOD101N_LAYOUT)
    need_files(t, ["images"], FOOD101N_LAYOUT)
    classes = _lines(d / "meta" / "classes.txt")
    if classes and classes[0] == "class_name":  # the release's header line
        classes = classes[1:]
    _count("food101n", "classes", len(classes), FOOD101N_COUNTS["classes"])
    index = {c: i for i, c in enumerate(classes)}

    def label(path: str, file: Path) -> int:
        cls = path.split("/", 1)[0]
        if cls not in index or "/" not in path:
            raise DataError(f"{file}: {path!r} is not <class>/<key> with a class of meta/classes.txt")
        return index[cls]

    imagelist = d / "meta" / "imagelist.tsv"
    rows = _tsv(imagelist, "class_name/key")
    train = [check_key(r[0], f"{imagelist}, line {i}") for i, r in rows]
    if len(set(train)) != len(train):
        raise DataError(f"{d / 'meta' / 'imagelist.tsv'}: images listed more than once")
    _count("food101n", "training images", len(train), FOOD101N_COUNTS["train"])
    y = [label(p, d / "meta" / "imagelist.tsv") for p in train]
    pos = {p: i for i, p in enumerate(train)}
    verified = np.full(len(train), -1, dtype=np.int8)
    for name in ("verified_train.tsv", "verified_val.tsv"):
        file = d / "meta" / name
        for _, r in _tsv(file, "class_name/key"):
            if len(r) != 2 or r[1] not in ("0", "1"):
                raise DataError(f"{file}: expected 'class/key<TAB>0|1', got {r!r}")
            if r[0] not in pos:
                raise DataError(f"{file}: {r[0]} is not in meta/imagelist.tsv")
            verified[pos[r[0]]] = int(r[1])
    test_rows = _numbered(t / "meta" / "test.txt")
    test = [check_key(f"{p}.jpg", f"{t / 'meta' / 'test.txt'}, line {i}") for i, p in test_rows]
    _count("food101n", "test images", len(test), FOOD101N_COUNTS["test"])
    ty = [label(p, t / "meta" / "test.txt") for p in test]
    # the two folders share one root for the listing: paths are made relative to their common
    # parent (not resolved: symlinked image folders stay as they are)
    d, t = d.absolute(), t.absolute()
    root = Path(os.path.commonpath([d, t]))
    rel = lambda base, p: os.path.relpath(base / "images" / p, root)  # noqa: E731
    return Listing("food101n", root, classes,
                   Split([rel(d, p) for p in train], y, str(imagelist), [i for i, _ in rows],
                         (d, d / "images")),
                   Split([rel(t, p) for p in test], ty, str(t / "meta" / "test.txt"),
                         [i for i, _ in test_rows], (t, t / "images")), size=256, crop_size=224,
                   mean=IMAGENET_MEAN, std=IMAGENET_STD, verified=verified, source=f"{d}; {t}")


# ----- WebVision-mini -------------------------------------------------------------------------

WEBVISION_LAYOUT = (
    "webvision_mini expects WebVision 1.0 in webvision/ (info/train_filelist_google.txt, "
    "info/val_filelist.txt, info/synsets.txt, google/..., val_images_256/...) and the ILSVRC2012 "
    "validation images in imagenet/val/ (<wnid>/ folders, torchvision's layout, or 0/ .. 49/) under "
    "--data-dir, NLB_DATA_DIR or the cache dir; WebVision: https://data.vision.ee.ethz.ch/cvl/webvision/, "
    "ILSVRC2012: https://image-net.org/ (registration)")
WEBVISION_MINI_CLASSES = 50
WEBVISION_MINI_COUNTS = {"train": 65_944, "val": 2_500, "imagenet": 2_500}


def _filelist(file: Path, prefix: str, keep: int, inside: tuple[Path, ...]) -> Split:
    """The ``path label`` lines of ``file`` with a label below ``keep``, each path checked
    (check_key) and prefixed with ``prefix``."""
    paths, labels, lines = [], [], []
    for i, ln in _numbered(file):
        parts = ln.split()
        if len(parts) != 2 or not re.fullmatch(r"\d+", parts[1]):
            raise DataError(f"{file}, line {i}: expected 'path label', got {ln!r}")
        key = check_key(prefix + parts[0], f"{file}, line {i}")
        if int(parts[1]) < keep:
            paths.append(key)
            labels.append(int(parts[1]))
            lines.append(i)
    return Split(paths, labels, str(file), lines, inside)


def webvision_mini_listing(data_dir: str | None, name: str = "webvision_mini", size: int = 320,
                           crop: int = 299) -> Listing:
    """The mini-WebVision listing, images stored at ``size`` and fed at ``crop``."""
    d = find_folder(data_dir, ("webvision", "WebVision", "webvision1"), "info/train_filelist_google.txt",
              WEBVISION_LAYOUT)
    need_files(d, ["info/val_filelist.txt", "info/synsets.txt", "val_images_256"], WEBVISION_LAYOUT)
    for lst in ("train_filelist_google.txt", "val_filelist.txt"):
        paths = [ln.split()[0] for ln in _lines(d / "info" / lst) if ln.split()]
        if len(set(paths)) != len(paths):
            raise DataError(f"{d / 'info' / lst}: {len(paths) - len(set(paths))} images listed more than once")
    synsets = _lines(d / "info" / "synsets.txt")
    if len(synsets) < WEBVISION_MINI_CLASSES:
        raise DataError(f"{d / 'info' / 'synsets.txt'}: {len(synsets)} synsets, WebVision 1.0 has 1000 "
                        f"(the first {WEBVISION_MINI_CLASSES} are used)")
    wnids = [s.split()[0] for s in synsets[:WEBVISION_MINI_CLASSES]]
    classes = [" ".join(s.split()[1:]) or s.split()[0] for s in synsets[:WEBVISION_MINI_CLASSES]]
    train = _filelist(d / "info" / "train_filelist_google.txt", "", WEBVISION_MINI_CLASSES, (d, d / "google"))
    val = _filelist(d / "info" / "val_filelist.txt", "val_images_256/", WEBVISION_MINI_CLASSES,
                    (d, d / "val_images_256"))
    _count("webvision_mini", "training images (classes 0-49)", len(train.paths), WEBVISION_MINI_COUNTS["train"])
    _count("webvision_mini", "validation images (classes 0-49)", len(val.paths), WEBVISION_MINI_COUNTS["val"])
    # DivideMix's layout keeps imagenet/val/ inside the WebVision folder; else beside it
    marker = f"val/{wnids[0]}"
    if (d / "imagenet" / marker).is_dir() or (d / "imagenet" / "val" / "0").is_dir():
        im = d / "imagenet" / "val"
    else:
        try:
            im = find_folder(data_dir, ("imagenet", "ILSVRC2012", "ilsvrc2012"), marker, WEBVISION_LAYOUT) / "val"
        except DatasetNotFound:
            im = find_folder(data_dir, ("imagenet", "ILSVRC2012", "ilsvrc2012"), "val/0", WEBVISION_LAYOUT) / "val"
    ipaths, iy = [], []
    for k, wnid in enumerate(wnids):
        folder = im / wnid if (im / wnid).is_dir() else im / str(k)
        if not folder.is_dir():
            raise DatasetNotFound(f"{WEBVISION_LAYOUT}; {im} has neither {wnid}/ nor {k}/")
        files = scan_images(folder)
        ipaths += [str(p.resolve()) for p in files]
        iy += [k] * len(files)
    _count("webvision_mini", "ILSVRC2012 validation images (50 synsets)", len(ipaths),
           WEBVISION_MINI_COUNTS["imagenet"])
    root = d.resolve()
    # web labels, none verified: the runner has no truth to judge a selection with
    return Listing(name, root, classes, train, val, size=size, crop_size=crop,
                   mean=IMAGENET_MEAN, std=IMAGENET_STD, verified=np.full(len(train.paths), -1, dtype=np.int8),
                   extra={"imagenet": Split([os.path.relpath(p, root) for p in ipaths], iy)},
                   source=f"{d}; {im}")


WEBVISION_VARIANTS = {
    "webvision_mini": (320, 299),      # DivideMix: Resize(320), crops of 299 (InceptionResNetV2)
    "webvision_mini_227": (256, 227),  # ELR+: the 256-pixel release, RandomCrop / CenterCrop(227)
    "webvision_mini_224": (256, 224),  # APL / ANL: Resize(256) + CenterCrop(224) (ResNet-50)
}
"""mini-WebVision at each protocol's geometry: name -> (stored side, network input side)."""
for _name, (_size, _crop) in WEBVISION_VARIANTS.items():
    _register(_name)(functools.partial(webvision_mini_listing, name=_name, size=_size, crop=_crop))
