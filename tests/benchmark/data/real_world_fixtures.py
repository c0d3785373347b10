"""Tiny copies of Clothing1M, Food-101N (+ Food-101's test split), WebVision 1.0 (+ the
ILSVRC2012 validation folders) and Animal-10N, written in each release's official layout: the
same folder names, list files, headers and line formats, with a few dozen small JPEGs; and an
image folder of your own (folder:PATH, list:FILE).

Each writer returns a dict of facts about what it wrote (counts, a few labels), for the tests to
check the loaders against.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLOTHING_CLASSES = ["T-Shirt", "Shirt", "Knitwear", "Chiffon", "Sweater", "Hoodie", "Windbreaker",
                    "Jacket", "Downcoat", "Suit", "Shawl", "Dress", "Vest", "Underwear"]


def _jpeg(path: Path, rng: np.random.Generator, w: int | None = None, h: int | None = None) -> None:
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    w = w or int(rng.integers(24, 48))
    h = h or int(rng.integers(24, 48))
    # a smooth gradient plus noise, so that resizing and cropping change the pixels measurably
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                     np.full_like(xx, int(rng.integers(0, 256)))], axis=2)
    img = np.clip(base + rng.integers(-20, 21, size=(h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, quality=90)


def write_clothing1m(root: Path, per_class: int = 4, seed: int = 0, size: tuple[int, int] | None = None) -> dict:
    """root/clothing1m/ with images/<d>/<dd>/<name>.jpg and the seven list files.

    size: (width, height) of every image; default small random sizes."""
    rng = np.random.default_rng(seed)
    d = root / "clothing1m"
    noisy, clean, train, val, test = {}, {}, [], [], []
    k = 0
    for c in range(len(CLOTHING_CLASSES)):
        for j in range(per_class + 2):
            key = f"images/{k % 10}/{k % 100:02d}/{k:06d}.jpg"
            _jpeg(d / key, rng, *(size or (None, None)))
            if j < per_class:  # noisy train; every third also has a clean label (verification)
                train.append(key)
                noisy[key] = (c + (1 if j == 0 else 0)) % len(CLOTHING_CLASSES)
                if j % 3 == 0:
                    clean[key] = c
            elif j == per_class:
                val.append(key)
                clean[key] = c
            else:
                test.append(key)
                clean[key] = c
            k += 1
    (d / "noisy_label_kv.txt").write_text("".join(f"{p} {y}\n" for p, y in noisy.items()))
    (d / "clean_label_kv.txt").write_text("".join(f"{p} {y}\n" for p, y in clean.items()))
    (d / "noisy_train_key_list.txt").write_text("".join(f"{p}\n" for p in train))
    # the clean-train list: here the noisy-train images that also have a clean label
    (d / "clean_train_key_list.txt").write_text("".join(f"{p}\n" for p in train if p in clean))
    (d / "clean_val_key_list.txt").write_text("".join(f"{p}\n" for p in val))
    (d / "clean_test_key_list.txt").write_text("".join(f"{p}\n" for p in test))
    (d / "category_names_eng.txt").write_text("".join(f"{n}\n" for n in CLOTHING_CLASSES))
    verified = [(-1 if p not in clean else int(clean[p] == noisy[p])) for p in train]
    return {"folder": d, "train": train, "test": test, "noisy": noisy, "clean": clean,
            "verified": verified}


def write_food101n(root: Path, classes: tuple[str, ...] = ("apple_pie", "baby_back_ribs", "baklava"),
                   per_class: int = 6, test_per_class: int = 3, seed: int = 1) -> dict:
    """root/Food-101N_release/ and root/food-101/ in their release layouts."""
    rng = np.random.default_rng(seed)
    d, t = root / "Food-101N_release", root / "food-101"
    (d / "meta").mkdir(parents=True)
    (t / "meta").mkdir(parents=True)
    (d / "meta" / "classes.txt").write_text("class_name\n" + "".join(f"{c}\n" for c in classes))
    keys, vtrain, vval, test = [], [], [], []
    for c in classes:
        for j in range(per_class):
            key = f"{c}/{rng.integers(0, 16**12):012x}.jpg"
            _jpeg(d / "images" / key, rng)
            keys.append(key)
            if j == 0:
                vtrain.append((key, 0))
            elif j == 1:
                vtrain.append((key, 1))
            elif j == 2:
                vval.append((key, 1))
        for j in range(test_per_class):
            tid = f"{c}/{100000 + j}"
            _jpeg(t / "images" / f"{tid}.jpg", rng)
            test.append(tid)
    (d / "meta" / "imagelist.tsv").write_text("class_name/key\n" + "".join(f"{k}\n" for k in keys))
    for name, rows in (("verified_train.tsv", vtrain), ("verified_val.tsv", vval)):
        (d / "meta" / name).write_text("class_name/key\tverification_label\n"
                                       + "".join(f"{k}\t{v}\n" for k, v in rows))
    (t / "meta" / "test.txt").write_text("".join(f"{p}\n" for p in test))
    flags = {k: v for k, v in vtrain + vval}
    return {"folder": d, "test_folder": t, "keys": keys, "test": test, "classes": list(classes),
            "verified": [flags.get(k, -1) for k in keys]}


def write_webvision(root: Path, per_class: int = 2, seed: int = 2, imagenet_layout: str = "wnid",
                    with_images: int = 10) -> dict:
    """root/webvision/ (info/ lists, google/, val_images_256/) and root/imagenet/val/ with the
    first 50 synsets' folders (named by WNID, torchvision's layout, or 0..49, DivideMix's).
    Only the first ``with_images`` classes (and classes 50, 51, outside the protocol) get images,
    to keep the fixture small; the other synsets' ImageNet folders are empty."""
    rng = np.random.default_rng(seed)
    d = root / "webvision"
    (d / "info").mkdir(parents=True)
    wnids = [f"n{1440764 + 17 * i:08d}" for i in range(52)]
    (d / "info" / "synsets.txt").write_text("".join(f"{w} class {i}\n" for i, w in enumerate(wnids)))
    train, val = [], []
    classes = [*range(with_images), 50, 51]  # 50 and 51 lie outside the mini protocol: dropped
    for c in classes:
        q = f"q{c + 1:04d}"
        for j in range(per_class if c < 50 else 1):
            p = f"google/{q}/{j:04d}.jpg"
            _jpeg(d / p, rng)
            train.append((p, c))
        v = f"val{c + 1:06d}.jpg"
        _jpeg(d / "val_images_256" / v, rng)
        val.append((v, c))
    (d / "info" / "train_filelist_google.txt").write_text("".join(f"{p} {c}\n" for p, c in train))
    (d / "info" / "val_filelist.txt").write_text("".join(f"{p} {c}\n" for p, c in val))
    im = root / "imagenet" / "val"
    for c in range(52):
        folder = im / (wnids[c] if imagenet_layout == "wnid" else str(c))
        folder.mkdir(parents=True)
        if c in classes:
            _jpeg(folder / f"ILSVRC2012_val_{c + 1:08d}.JPEG", rng)
    return {"folder": d, "train": [p for p, c in train if c < 50], "n_val": with_images,
            "n_imagenet": with_images, "wnids": wnids[:50]}


def write_animal10n(root: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict:
    """Animal-10N's layout: animal-10n/{training,testing}/<label>_<number>.jpg, 64x64; returns
    {(split, number): label}."""
    rng = np.random.default_rng(seed)
    labels = {}
    for split, n in (("training", n_train), ("testing", n_test)):
        for i in range(n):
            y = int(rng.integers(0, 10))
            _noise_jpeg(root / "animal-10n" / split / f"{y}_{i:05d}.jpg", rng, 64)
            labels[(split, i)] = y
    return labels


def write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "fox"), per_class: int = 4,
                       seed: int = 3, as_list: bool = False) -> Path:
    """root/mine/{train,test}/<class>/<n>.png, 16x16 (torchvision's ImageFolder layout: folder:PATH);
    with ``as_list`` also root/mine/list.csv naming every image (path,label,split: list:FILE).
    Returns the folder, or the list file."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    d = root / "mine"
    lines = []
    for split, n in (("train", per_class), ("test", max(1, per_class // 2))):
        for c in classes:
            for j in range(n):
                p = d / split / c / f"{j}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(p)
                lines.append(f"{split}/{c}/{j}.png,{c},{split}")
    if not as_list:
        return d
    (d / "list.csv").write_text("".join(f"{ln}\n" for ln in lines))
    return d / "list.csv"


def _noise_jpeg(path: Path, rng: np.random.Generator, size: int) -> None:
    """A size x size JPEG of uniform noise."""
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=95)


if __name__ == "__main__":  # a larger copy for `runner.py bench --streaming` (docs/BENCHMARKS.md)
    import argparse
    ap = argparse.ArgumentParser(description="write a Clothing1M-layout copy of synthetic JPEGs")
    ap.add_argument("root")
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--size", default="400x500", help="WxH of every image")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    facts = write_clothing1m(Path(a.root), per_class=a.per_class, size=(w, h))
    print(f"{facts['folder']}: {len(facts['train'])} training images of {w}x{h}")
