"""How every loader reaches its files: one folder scan, one judgement of a listed path, one way
to open a file and one way to open an image.

Data come from folders and lists someone else made (a download, a colleague's copy, an archive),
so nothing that is meant as an image or a list is opened on trust:

- Only regular files are opened (symlinks followed). A FIFO named ``x.png`` would block its
  reader forever, a device can be endless, a directory is no image: each is **refused** with a
  :class:`DataError` naming it and what it is, wherever it is met (a folder scan, a list, the
  decoder). Refused, not skipped: a file meant as data and silently left out would change the
  dataset without a word.
- A file is opened without blocking and checked on the open descriptor, so what is checked is
  what is read (a file swapped for a FIFO after a check still cannot hang the reader).
- A path an official list gives is relative and stays inside its dataset folder: lexically
  (:func:`check_key`: no absolute path, no ``..``) and once symlinks are resolved
  (:class:`Confinement`: its real path inside the real dataset folder or the layout's image
  folder, which may itself be a link to another disk). A list cannot pull another file of the
  machine into a run or a pack.
- An image over Pillow's decompression-bomb limit (twice ``PIL.Image.MAX_IMAGE_PIXELS``) is
  refused from its header, before any pixel is decoded (:func:`open_image`).
"""
from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from benchmark.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "what_is", "open_regular", "read_bytes", "read_text", "open_image", "scan_images",
           "check_key", "Confinement", "listed_problem"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def what_is(path: str | os.PathLike) -> str | None:
    """None when ``path`` is a regular file (symlinks followed); else what it is instead:
    'missing', 'a broken link', 'a FIFO', 'a directory', a device, 'unreadable (...)'."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "a broken link" if os.path.islink(path) else "missing"
    except OSError as e:  # a link loop, a folder we may not enter
        return f"unreadable ({e.strerror})"
    return None if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)


def _refusal(path: str | os.PathLike, kind: str) -> DataError:
    return DataError(f"{path}: {kind}, not a regular file: refused (only regular files are read "
                     f"as data)")


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file; a DataError naming it and
    what it is otherwise. OSError when it cannot be opened (missing, no permission).

    O_NONBLOCK makes the open itself return at once for a FIFO without a writer (or a device
    that would wait), and the check is made on the opened descriptor: nothing is ever read from
    anything but a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refusal(path, _kind(mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular`)."""
    with open_regular(path) as f:
        return f.read()


def read_text(path: str | os.PathLike) -> str:
    """A list or label file's text (UTF-8); a DataError naming the file (and, for bytes that are
    not UTF-8, the line) when it cannot be read."""
    try:
        raw = read_bytes(path)
    except OSError as e:
        raise DataError(f"{path}: unreadable ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save it "
                        f"as UTF-8") from None


@contextlib.contextmanager
def open_image(path: str | os.PathLike, data: BinaryIO | None = None) -> Iterator:
    """The Pillow image of the file ``path`` (lazy: its header is read, no pixel yet), closed on
    exit; ``data``: the file's bytes already read (``path`` then only names it). A DataError
    naming the file when it is not a regular file or is larger than Pillow's decompression-bomb
    limit; OSError / ValueError (Pillow's) when it does not decode, which the decoders report
    as an unreadable image."""
    from PIL import Image  # Pillow waits until an image is opened (see ARCHITECTURE.md)
    with (contextlib.nullcontext(data) if data is not None else open_regular(path)) as f:
        try:
            with Image.open(f) as im:
                yield im
        except Image.DecompressionBombError as e:  # from the header, or a later size check
            raise DataError(f"{path}: image too large to decode ({e}); refused") from None


def scan_images(folder: Path, suffixes: tuple[str, ...] | None = IMAGE_SUFFIXES) -> list[Path]:
    """The images of ``folder``, sorted: its entries whose name ends in one of ``suffixes``
    (case-insensitive; None: every entry that is not a folder). Every such entry must be a
    regular file: a DataError names those that are not (a FIFO named x.png would hang the
    decoder; see the module docstring)."""
    found, bad = [], []
    for p in sorted(folder.iterdir()):
        if suffixes is None:
            if p.is_dir():
                continue
        elif p.suffix.lower() not in suffixes:
            continue
        kind = what_is(p)
        if kind is None:
            found.append(p)
        else:
            bad.append(f"{p.name} ({kind})")
    if bad:
        raise DataError(f"{folder}: entries named as images that are not regular files: "
                        f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; refused (remove them)")
    return found


def check_key(key: str, where: str) -> str:
    """``key``, an image path an official list gives (relative to the dataset's folder), if it
    names a place inside that folder: not absolute and without a ``..`` step. ``where`` names
    the list file and line for the DataError otherwise."""
    pure = PurePosixPath(key)
    if pure.is_absolute() or ".." in pure.parts or "\0" in key:
        raise DataError(f"{where}: {key!r} leaves the dataset folder (an absolute path or a '..' "
                        f"step); the lists name images inside it: refused")
    return key


class Confinement:
    """Folders whose real paths a dataset's images must lie in (symlinks resolved): the dataset
    folder and its layout's image folders (each may be a link to another disk, which is then
    where its images really are). Each directory is resolved once, so a listed file that is not
    itself a link costs no system call beyond the lstat that checks it (a million of them,
    Clothing1M's, in about the time the old existence check took)."""

    def __init__(self, folders: tuple[Path, ...]):
        self.roots = tuple(dict.fromkeys(os.path.realpath(f) for f in folders))
        self._dirs: dict[str, str] = {}

    def real(self, path: str, is_link: bool) -> str:
        if is_link:
            return os.path.realpath(path)
        parent, name = os.path.split(path)
        if parent not in self._dirs:
            self._dirs[parent] = os.path.realpath(parent)
        return os.path.join(self._dirs[parent], name)

    def holds(self, real: str) -> bool:
        return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots)


def listed_problem(path: str, confined: Confinement | None = None) -> str | None:
    """What is wrong with an image file a list names, or None: 'missing', what it is when it is
    not a regular file, or (with ``confined``) the real path it leaves its dataset folder for."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    is_link = stat.S_ISLNK(st.st_mode)
    if is_link:  # what it points to decides (one more stat, for links only)
        kind = what_is(path)
    else:
        kind = None if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)
    if kind is not None:
        return kind
    if confined is not None:
        real = confined.real(path, is_link)
        if not confined.holds(real):
            return (f"outside the dataset folder (its real path is {real}, not inside "
                    f"{' or '.join(confined.roots)})")
    return None
