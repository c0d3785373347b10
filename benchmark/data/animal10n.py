"""Animal-10N (Song et al., ICML 2019) in its official layout, decoded into memory.

``animal-10n/`` (or ``Animal-10N/``, or the folder itself) under ``--data-dir``, env
``NLB_DATA_DIR`` or the cache dir, holding ``training/`` (50,000 images) and ``testing/`` (5,000),
64x64 JPEGs named ``<label>_<number>.jpg`` with the label 0..9 in the file name. The data are
licence-gated (a request form on the dataset's page); the suite never downloads them. Its labels
are the real noisy labels (about 8% wrong); there are no clean training labels, so a run uses
noise kind ``none`` and the runner computes no clean-label diagnostics (``verified`` all -1).
A missing copy is :class:`benchmark.errors.DatasetNotFound` (exit code 2).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from benchmark import settings
from benchmark.data.files.reading import scan_images
from benchmark.data.folders import decode_images, find_folder, image_arrays, need_files
from benchmark.data.registry import DatasetArrays, register_dataset
from benchmark.errors import DataError

__all__ = ["ANIMAL10N_CLASSES", "ANIMAL10N_COUNTS", "ANIMAL10N_LAYOUT"]

ANIMAL10N_CLASSES = ["cat", "lynx", "wolf", "coyote", "cheetah", "jaguar", "chimpanzee", "orangutan",
                     "hamster", "guinea pig"]
ANIMAL10N_COUNTS = {"training": 50_000, "testing": 5_000}
ANIMAL10N_NAME = re.compile(r"^(\d+)_(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)

ANIMAL10N_LAYOUT = ("animal10n expects a folder animal-10n/ (or Animal-10N/, or the folder itself) "
                    "under --data-dir, NLB_DATA_DIR or the cache dir, holding training/ (50,000 "
                    "images) and testing/ (5,000), 64x64 JPEGs named <label>_<number>.jpg; it is "
                    "licence-gated: request it at https://dm.kaist.ac.kr/datasets/animal-10n/")


def _find_animal10n(data_dir: str | None) -> Path:
    d = find_folder(data_dir, ("animal-10n", "Animal-10N", "animal10n"), "training", ANIMAL10N_LAYOUT)
    need_files(d, ["testing"], ANIMAL10N_LAYOUT)
    return d


def _animal_split(d: Path) -> tuple[list[Path], np.ndarray]:
    files = scan_images(d, suffixes=None)  # every entry but a folder is meant as an image
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
    data = image_arrays("animal10n", *out["training"], *out["testing"], list(ANIMAL10N_CLASSES), str(d))
    # the labels are the real noisy ones, none verified: no truth for the selection diagnostics
    data.verified = np.full(len(data.train_y), -1, dtype=np.int8)
    return data
