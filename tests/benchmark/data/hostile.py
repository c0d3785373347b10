"""Files that break a careless loader, made cheaply: a PNG whose header claims 20000 x 20000
pixels (48 KB on disk, 400 million pixels decoded), a FIFO named as an image; and guards that
turn a hang or a runaway allocation into a test failure instead of a stuck or starved machine."""
from __future__ import annotations

import contextlib
import os
import resource
import signal
import struct
import zlib
from pathlib import Path
from typing import Iterator


def huge_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid 1-bit greyscale PNG of width x height black pixels: every row compresses to a few
    bytes, so it is written in well under a second, and Pillow would need width x height bytes
    to decode it (over its decompression-bomb limit at the default size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def fifo(path: Path) -> Path:
    """A FIFO at ``path`` (nobody writes to it: opening it for reading blocks forever)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path)
    return path


class Hung(Exception):
    pass


@contextlib.contextmanager
def no_hang(*fifos: Path, seconds: int = 60) -> Iterator[None]:
    """Fail with Hung instead of blocking the test run when the body takes over ``seconds``
    (SIGALRM: main thread only, which is where pytest runs tests). Afterwards each of ``fifos``
    is opened for writing once, which releases a reader still blocked on it in another thread
    (a decoding worker would otherwise keep the test process from exiting)."""
    def alarm(_sig, _frame):
        raise Hung(f"still running after {seconds} s: it hangs")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        for f in fifos:
            try:
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # no reader waiting: nothing to release


def _address_space() -> int:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))


@contextlib.contextmanager
def memory_cap(extra: int = 2 << 30) -> Iterator[None]:
    """Let the body grow this process's address space by at most ``extra`` bytes: an unbounded
    allocation then fails with MemoryError (a plain test failure) instead of the kernel's OOM
    killer taking the test run, or a neighbour, down. The soft limit is restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _address_space() + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def capped_child(limit: int = 8 << 30):
    """A preexec_fn for subprocess: the child may map at most ``limit`` bytes (torch needs about
    4 GB of address space to import), so a runaway allocation is a MemoryError, not an OOM kill."""
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
