"""``runner.py pack``: a dataset's images decoded once into memory-mapped uint8 arrays.

A pack is a folder ``<name>@<size>/`` holding one ``<split>.npy`` array (N, 3, S, S) uint8 per
split (``train``, ``test``, ``extra_<name>``) and ``manifest.json``: the format version, the
dataset, the image geometry, the decoder (Pillow's version: another may round a resize
differently), the SHA-256 of the listing it was made from (every path and label, in order:
:meth:`benchmark.data.files.listing.Listing.digest`) and, per split, the row count, the file's size and
its SHA-256. Packs are written under ``<cache dir>/packs/`` by default and looked for there
and under ``packs/`` of every data folder searched (--data-dir, NLB_DATA_DIR).

A pack someone else made is data you received: it is read with ``allow_pickle=False`` (a .npy
file cannot run code then) and used only once its arrays' SHA-256 equal the manifest's, the
manifest's listing digest equals that of the lists on this machine and its decoder is this
environment's. That checks the pack against corruption and against other lists, not that its
pixels were decoded from these images: pack the dataset yourself for that. The full hash is
computed once per pack file (a stamp under ``<cache dir>/verified-packs/`` records its size,
modification and change times and inode; a file written since is hashed again); write_pack
stamps the files it has just hashed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.data.files.listing import Listing, check_files, decode_into
from benchmark.data.files.streaming import PackedReader, StreamedImages
from benchmark.data.registry import cache_dir, file_digest, search_roots
from benchmark.errors import DataError

__all__ = ["PACK_FORMAT", "Pack", "find_pack", "check_pack", "write_pack", "pack_name"]

PACK_FORMAT = 1


def pack_name(listing: Listing) -> str:
    return f"{listing.name}@{listing.size}"


@dataclass
class Pack:
    """A verified pack: its folder and manifest."""

    root: Path
    manifest: dict

    def images(self, key: str, in_memory: bool) -> torch.Tensor | StreamedImages:
        file = self.root / f"{key}.npy"
        if in_memory:
            return torch.from_numpy(np.load(file, allow_pickle=False))
        reader = PackedReader(file)
        return StreamedImages(reader, tuple(reader.array.shape[1:]))


def _stamp_file(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return cache_dir() / "verified-packs" / f"{key}.json"


def _mark(path: Path, sha256: str) -> dict:
    """What a stamp records of a file: its hash and every stat field a write changes (the
    change time too, which no copy tool can set back)."""
    st = path.stat()
    return {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns, "ino": st.st_ino, "dev": st.st_dev}


def _write_stamp(path: Path, sha256: str) -> None:
    stamp = _stamp_file(path)
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(_mark(path, sha256)))
        os.replace(tmp, stamp)
    except OSError:
        pass  # an unwritable cache only means hashing again next time


def _verify_file(path: Path, sha256: str, size: int) -> str | None:
    """None when ``path`` has ``size`` bytes and SHA-256 ``sha256`` (hashed once per version of
    the file, see the module docstring); else why not."""
    st = path.stat()
    if st.st_size != size:
        return f"{path.name} has {st.st_size} bytes, the manifest says {size}"
    try:
        if json.loads(_stamp_file(path).read_text()) == _mark(path, sha256):
            return None
    except (OSError, ValueError):
        pass
    got = file_digest(path)
    if got != sha256:
        return f"{path.name}: SHA-256 {got[:12]}... differs from the manifest's {sha256[:12]}..."
    _write_stamp(path, sha256)
    return None


def _bytes(n: int) -> str:
    """A size for a message, in the unit that shows it: 196.6 kB, 1.2 GB, 0 bytes (never 0.0 GB)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _decoder() -> str:
    """The decoder a pack's pixels come from (another Pillow may round a resize differently)."""
    import PIL
    return f"Pillow {PIL.__version__}"


def _again(root: Path) -> str:
    return f"remove {root} and run `runner.py pack` again"


def check_pack(root: Path, listing: Listing) -> Pack:
    """The pack in ``root`` if it is complete, made from exactly ``listing`` and intact; else a
    DataError saying what is wrong."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"pack {root}: manifest.json unreadable ({e}): {_again(root)}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict):
        raise DataError(f"pack {root}: manifest.json is not a pack manifest: {_again(root)}")
    if manifest.get("format") != PACK_FORMAT:
        raise DataError(f"pack {root}: format {manifest.get('format')!r}, this suite reads {PACK_FORMAT}: "
                        f"{_again(root)}")
    if manifest.get("listing_sha256") != listing.digest():
        raise DataError(f"pack {root} was made from other file lists than the {listing.name} lists "
                        f"found in {listing.root} (listing digest differs): {_again(root)}")
    if manifest.get("decoder") != _decoder():
        raise DataError(f"pack {root} was decoded by {manifest.get('decoder')}, this environment has "
                        f"{_decoder()} (its pixels could differ from the files'): {_again(root)}")
    for key, sp in listing.splits().items():
        entry = manifest["splits"].get(key)
        if (not isinstance(entry, dict) or entry.get("rows") != len(sp.paths)
                or not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("bytes"), int)):
            raise DataError(f"pack {root}: split {key} missing or of the wrong length: {_again(root)}")
        file = root / f"{key}.npy"
        if not file.is_file():
            raise DataError(f"pack {root}: {file.name} is missing: {_again(root)}")
        why = _verify_file(file, entry["sha256"], entry["bytes"])
        if why:
            raise DataError(f"pack {root}: {why} (corrupt or changed): {_again(root)}")
        try:  # allow_pickle=False: an object array is refused, never unpickled
            arr = np.load(file, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise DataError(f"pack {root}: {file.name} is not a plain uint8 array ({e})") from None
        want = (len(sp.paths), 3, listing.size, listing.size)
        if arr.dtype != np.uint8 or tuple(arr.shape) != want:
            raise DataError(f"pack {root}: {file.name} is {arr.dtype} {tuple(arr.shape)}, expected uint8 {want}")
    return Pack(root, manifest)


def _remove_stale(out: Path) -> None:
    """Remove ``<out>.tmp-<pid>`` folders of pack processes that no longer exist (killed, or dead
    of a full disk): only folders of that name, which write_pack alone creates."""
    for d in out.parent.glob(f"{out.name}.tmp-*"):
        pid = d.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not d.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running (another pack of the same dataset)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            continue


def find_pack(listing: Listing, data_dir: str | None = None) -> Pack | None:
    """The first pack of ``listing`` under ``packs/`` of the data folders searched (the cache dir
    included), verified; None when there is none. A pack that is found but fails verification is
    an error, never silently skipped (it would hide a corrupt copy)."""
    roots = search_roots(data_dir)
    if cache_dir() not in roots:
        roots.append(cache_dir())
    for r in roots:
        d = r / "packs" / pack_name(listing)
        if (d / "manifest.json").is_file():
            return check_pack(d, listing)
    return None


def write_pack(listing: Listing, out: Path, progress=None) -> dict:
    """Decode every image of ``listing`` into ``out`` (created; must not hold a pack already).

    Written into ``out.tmp-<pid>`` and renamed at the end, so an interrupted pack leaves no
    folder that could be taken for a finished one. Returns the manifest.
    """
    check_files(listing)
    if out.exists():
        raise FileExistsError(f"{out} already exists: remove it first to pack again")
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        # a folder made is the only proof that the disk takes writes: a read-only one also reports
        # no free space, and "needs 0.0 GB, has 0.0 GB free" named neither the cause nor the size
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out)
        tmp.mkdir()
    except OSError as e:
        raise DataError(f"cannot write the pack {out}: {e.strerror or e} ({e.filename or out.parent}); "
                        f"choose a writable folder with --out") from None
    need = sum(len(sp.paths) for sp in listing.splits().values()) * 3 * listing.size ** 2
    free = shutil.disk_usage(out.parent).free
    if need > free:  # the memory map would die of SIGBUS when the disk fills, leaving its folder
        tmp.rmdir()
        full = " (the disk is full)" if free == 0 else ""
        raise DataError(f"packing {listing.name} needs {_bytes(need)}, {out.parent} has {_bytes(free)} "
                        f"free{full}; free space or choose another folder with --out")
    t0 = time.time()
    splits = {}
    try:
        for key, sp in listing.splits().items():
            file = tmp / f"{key}.npy"
            arr = np.lib.format.open_memmap(file, mode="w+", dtype=np.uint8,
                                            shape=(len(sp.paths), 3, listing.size, listing.size))
            decode_into(listing.reader(sp), arr,
                        progress and (lambda done, total, key=key: progress(key, done, total)))
            arr.flush()
            del arr
            splits[key] = {"rows": len(sp.paths), "bytes": file.stat().st_size,
                           "sha256": file_digest(file)}
        manifest = {"format": PACK_FORMAT, "dataset": listing.name, "size": listing.size,
                    "crop_size": listing.crop_size, "decoder": _decoder(),
                    "listing_sha256": listing.digest(), "splits": splits,
                    "source": listing.source, "seconds": round(time.time() - t0, 1)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, out)
        for key, entry in splits.items():  # just hashed: the first run need not hash them again
            _write_stamp(out / f"{key}.npy", entry["sha256"])
    except BaseException:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
        raise
    return manifest
