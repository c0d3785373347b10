"""Reading a store received from elsewhere (runner.py merge) without trusting its file system.

A copied store is data from another machine: its folders may hold symbolic links (a ``meta.json``
pointing at a credentials file would be copied into the target with that file's content), named
pipes or devices (reading one blocks forever or never ends), files of any size and JSON of any
depth. Everything merge reads from a source goes through here:

* :func:`check_folder`: a run folder is a real folder (not a link to one) holding only regular
  files and folders, at any depth; the first link or special file refuses the run.
* :func:`read_file`: a file reached from the store root one path component at a time, refusing a
  link anywhere on the way, ``..`` and anything but a regular file at the end, and at most
  ``limit`` bytes; None when it is not there.
* :func:`parse_json`: strict about size and depth (a 100,000-deep list would otherwise end the
  merge with a RecursionError).

Every refusal is a :class:`Refused` naming the file and why: the one run is refused, the merge
goes on.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from benchmark.errors import Refused

__all__ = ["MAX_RUN_FILE_BYTES", "MAX_ARTIFACT_BYTES", "MAX_JSON_DEPTH", "MAX_FOLDER_ENTRIES",
           "check_folder", "read_file", "parse_json", "shown"]

MAX_RUN_FILE_BYTES = 64 * 2**20
"""Largest config.json, metrics.csv, result.json or meta.json read (64 MiB). The suite writes a few
KiB per file and a few hundred bytes per epoch of metrics.csv: a run of 100,000 epochs fits."""

MAX_ARTIFACT_BYTES = 2**30
"""Largest noise artifact read (1 GiB). An artifact holds one int64 label per training image and
two C x C matrices: Clothing1M's million images take about 8 MiB."""

MAX_JSON_DEPTH = 64
"""Deepest nesting of lists and objects accepted in a run's JSON file. The suite's own files nest
four levels (config.json's noise matrices, hp sections); anything far deeper was not written by
the suite, and Python's parser would fail on it with a RecursionError rather than an answer."""

MAX_FOLDER_ENTRIES = 10_000
"""Most entries (files and folders, at any depth) a run folder may hold. The suite writes about
ten; the cap keeps a crafted tree from making the check itself slow."""

FILE, FOLDER, LINK = "a regular file", "a folder", "a symbolic link"
"""What :func:`_kind` calls the two kinds of entry a run folder may hold."""


def check_folder(folder: Path) -> None:
    """Refuse a run folder that is a symbolic link, or that holds (at any depth) a symbolic link
    or anything but regular files and folders. Reads no file; never follows a link."""
    try:
        st = os.lstat(folder)
    except OSError as e:
        raise Refused(f"the run folder cannot be read ({e.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise Refused("the run folder is a symbolic link (a received store must hold its runs "
                      "itself; links are never followed)")
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"the run folder is {_kind(st.st_mode)}, not {FOLDER}")
    seen, todo = 0, [PurePosixPath()]
    while todo:
        rel = todo.pop()
        try:
            entries = list(os.scandir(folder / rel))
        except OSError as e:
            raise Refused(f"{shown(rel) or 'the run folder'} cannot be listed ({e.strerror})") from None
        for entry in entries:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                raise Refused(f"the run folder holds more than {MAX_FOLDER_ENTRIES} entries")
            name = rel / entry.name
            kind = _kind(entry.stat(follow_symlinks=False).st_mode)
            if kind == FOLDER:
                todo.append(name)
            elif kind != FILE:
                why = "links are never followed" if kind == LINK else "a run folder holds files only"
                raise Refused(f"{shown(name)} is {kind} ({why})")


def read_file(root: Path, rel: str | os.PathLike, *, limit: int) -> bytes | None:
    """The bytes of ``root/rel``, or None when it is not there.

    ``rel`` is walked one component at a time from ``root`` (which the user named, so it may
    itself be a link): each folder is opened without following links, so no link anywhere on the
    way is followed and ``..`` cannot leave the store; the file must be a regular file of at most
    ``limit`` bytes. Opened non-blocking, so a named pipe put in its place cannot hang the read.
    """
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("..", ".") for p in parts):
        raise Refused(f"{shown(rel)}: a path that leaves its store is never read")
    fds: list[int] = []
    try:
        try:
            fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY))
        except OSError as e:
            raise Refused(f"the store {root} cannot be opened ({e.strerror})") from None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            here = PurePosixPath(*parts[:i + 1])
            try:
                st = os.stat(part, dir_fd=fds[-1], follow_symlinks=False)
            except FileNotFoundError:
                return None
            except OSError as e:
                if e.errno == errno.ENOTDIR:
                    return None
                raise Refused(f"{shown(here)} cannot be read ({e.strerror})") from None
            kind, want = _kind(st.st_mode), (FILE if last else FOLDER)
            if kind != want:
                raise Refused(f"{shown(here)} is {kind}, not {want} (links are never followed)")
            flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK | os.O_NOCTTY if last else os.O_DIRECTORY)
            try:
                fds.append(os.open(part, flags, dir_fd=fds[-1]))
            except OSError as e:  # replaced between the stat and the open: say what it is now
                raise Refused(f"{shown(here)} cannot be opened ({e.strerror})") from None
        st = os.fstat(fds[-1])
        if not stat.S_ISREG(st.st_mode):  # swapped for something else after the stat above
            raise Refused(f"{shown(rel)} is {_kind(st.st_mode)}, not {FILE}")
        if st.st_size > limit:
            raise Refused(f"{shown(rel)} is too large ({st.st_size} bytes; at most {limit})")
        with os.fdopen(fds[-1], "rb") as f:
            fds.pop()  # closed by the file object from now on
            data = f.read(limit + 1)
        if len(data) > limit:  # grew while being read
            raise Refused(f"{shown(rel)} is too large (over {limit} bytes)")
        return data
    except OSError as e:
        raise Refused(f"{shown(rel)} cannot be read ({e.strerror or e})") from None
    finally:
        for fd in fds:
            os.close(fd)


def parse_json(data: bytes, name: str) -> Any:
    """``data`` parsed as JSON (UTF-8, at most MAX_JSON_DEPTH levels deep); Refused otherwise."""
    try:
        obj = json.loads(data)
    except RecursionError:
        raise Refused(f"{name} nests deeper than Python's parser can follow (at most "
                      f"{MAX_JSON_DEPTH} levels are accepted)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise Refused(f"{name} is not valid JSON ({e})") from None
    depth = _depth(obj)
    if depth > MAX_JSON_DEPTH:
        raise Refused(f"{name} nests {depth} levels deep (at most {MAX_JSON_DEPTH} are accepted)")
    return obj


def _depth(obj: Any) -> int:
    """Nesting depth of lists and objects, measured without recursion (a deep value must not
    raise the RecursionError this check is there to prevent)."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        value, level = todo.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, level)
            todo += [(v, level + 1) for v in (value.values() if isinstance(value, dict) else value)]
    return deepest


def _kind(mode: int) -> str:
    """What a file is, in words (for messages)."""
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return FOLDER
    if stat.S_ISLNK(mode):
        return LINK
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def shown(path: str | os.PathLike) -> str:
    """A path of a received store as a message may show it: a name holding control characters
    (which could rewrite the terminal) is shown escaped."""
    text = str(path)
    if text == ".":
        return ""
    return text if text.isprintable() else ascii(text)
