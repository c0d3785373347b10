"""Merging stores: bring the finished runs of other machines' stores into one store.

``merge(sources, into)`` reads every run folder of every source store, verifies it, and places
exactly one copy of each run in the target store ``into``:

* Only finished runs (with a result.json) are merged; unfinished ones are listed and left alone.
  Checkpoints are never copied (a finished run has none), nor lock, temporary or W&B files.
* A copy is verified before anything is written (``read_run``, verify.py): the folder is named
  by a run id, is no link and holds no link nor special file (received.py: nothing outside a
  source is read, files are bounded in size and JSON depth); config.json, metrics.csv, result.json and meta.json exist and parse; the run id recomputed from
  config.json equals the folder name; result.json holds every final figure, agrees with
  metrics.csv (the figures ``summary.summarise`` derives from the rows are recomputed and compared)
  and has as many epochs as metrics.csv has rows and the config asks for; the noise SHA-256 in
  config.json and result.json agree, and the store's cached noise artifact, if present, holds
  labels with that hash; its figures are plausible (accuracies and rates finite and in [0, 1])
  and its names of the registries' form. A copy that fails is *refused*, with the reason; another
  copy of the same run that passes is still merged.
* Copies of one run (from several sources, or a source and the target) are compared
  (``differences``). Copies whose figures agree are kept once: the first one (the target's, else
  the first source's) stays or is copied. meta.json is not compared (host, versions and wall time
  differ between machines), and neither are the measurements of the machine in result.json and
  metrics.csv (``time/*``, ``mem/*``): the same run computed on two machines gives the same
  numbers in different times. Copies that differ in anything else are a *conflict*: neither is
  copied, the target is left as it was, and the report names every differing file and field.
  It also says why: copies computed on other machine kernels (their numerics' CPU capability
  or ISA, GPU, torch version or device type differ: ``verify.other_kernels``) are the same run
  with other rounding, not a damaged copy; copies computed on the same kernels that differ are
  a real disagreement.
* The noise artifact of a merged run (``_noise/<dataset>/<name>.npz``) is copied into the target
  when the target lacks it; a target artifact of the same name holding other labels refuses the
  run, and so does an artifact path that leaves ``_noise/`` (a dataset name holding ``..``): no
  artifact nor its lock is ever read or written outside the stores. Artifacts are read with numpy's pickle-free loader (noise.artifact.load_artifact).
* Writes are atomic per run: the files go into a temporary folder inside the target root, which
  is then renamed to the run id, so an interrupted merge leaves no half-written run (only a
  ``.merge-*.tmp`` folder, which the next merge into that store removes). Two merges into one
  store wait for each other (a lock on ``<into>/.merge.lock``).
* Nothing in a source is ever written, moved or deleted (sources are only read; the target may
  not be inside a source nor a source inside the target). ``dry_run`` writes nothing anywhere
  and reports what a merge would do.

Nothing here unpickles anything: run files are JSON and CSV, artifacts are read with
``allow_pickle=False``.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from benchmark.errors import Refused, UsageError
from benchmark.store.layout import NOISE_DIR, RUN_FILES, RUN_ID, in_noise_dir
# the cache entry's lock: workers building the same artifact in the target take it too
from benchmark.store.noise_cache import cache_lock
from benchmark.store.received import MAX_ARTIFACT_BYTES, read_file, shown
from benchmark.store.verify import RunCopy, differences, other_kernels, read_run
from noise import load_artifact

TMP_PREFIX = ".merge-"


@dataclass
class MergeReport:
    """What a merge did (or, with dry_run, would do). Paths are strings, for JSON."""

    into: str
    sources: list[str]
    dry_run: bool = False
    copied: list[str] = field(default_factory=list)
    """Run ids newly placed in the target."""
    already: list[str] = field(default_factory=list)
    """Run ids whose identical copy the target already held (kept as it was)."""
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    """(run id, folder, reason) of every copy that fails verification or cannot be placed."""
    conflicts: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    """(run id, folders of every copy, differences): copies that disagree; none was copied."""
    kernels: dict[str, str] = field(default_factory=dict)
    """Run id -> how the machine kernels differ, for the conflicts whose copies were computed on
    other kernels (the same run, other rounding); a conflict not here is a real disagreement."""
    skipped_unfinished: list[tuple[str, str]] = field(default_factory=list)
    """(run id, folder) of run folders without result.json: not merged."""
    noise_copied: list[str] = field(default_factory=list)
    """Noise artifacts placed in the target, relative to its root."""

    @property
    def ok(self) -> bool:
        """No copy refused and no conflict: every finished run of the sources is in the target."""
        return not self.refused and not self.conflicts

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "dry_run": self.dry_run, "into": self.into, "sources": self.sources,
                "copied": self.copied, "already": self.already,
                "refused": [{"run_id": r, "path": p, "reason": why} for r, p, why in self.refused],
                "conflicts": [{"run_id": r, "paths": ps, "differences": d, "cause": self.cause(r, ps)}
                              for r, ps, d in self.conflicts],
                "skipped_unfinished": [{"run_id": r, "path": p} for r, p in self.skipped_unfinished],
                "noise_copied": self.noise_copied}

    def summary(self) -> str:
        """One paragraph: the counts, then every refusal and conflict with its reason."""
        verb = "would copy" if self.dry_run else "copied"
        parts = [f"merge of {len(self.sources)} store(s) into {self.into}: {verb} "
                 f"{len(self.copied)} run(s), {len(self.already)} already there, "
                 f"{len(self.skipped_unfinished)} unfinished skipped, {len(self.refused)} refused, "
                 f"{len(self.conflicts)} conflict(s); {verb} {len(self.noise_copied)} noise "
                 f"artifact(s)."]
        parts += [f"Refused {rid} ({path}): {why}." for rid, path, why in self.refused]
        parts += [f"Conflict {rid} ({' vs '.join(paths)}): {self.cause(rid, paths)}; {'; '.join(diffs)}."
                  for rid, paths, diffs in self.conflicts]
        return " ".join(parts)

    def cause(self, rid: str, paths: list[str]) -> str:
        """Why the copies of a conflict differ, and what the merge kept (no copy is written
        either way; the target's copy, when it has one, stays as it was)."""
        kept = ("kept the target's copy" if paths and Path(paths[0]) == Path(self.into) / rid
                else "none copied")
        if rid in self.kernels:
            return (f"computed on other kernels ({self.kernels[rid]}): the same run, other "
                    f"rounding; {kept}")
        return f"the same kernels (as far as recorded) gave other numbers, a real disagreement; {kept}"


# ----- merging --------------------------------------------------------------------------------

def merge(sources: list[Path], into: Path, *, dry_run: bool = False) -> MergeReport:
    """Merge the finished runs of the store roots ``sources`` into the store root ``into``.

    Raises UsageError for a source that is not a directory, or a target that is a source, lies
    inside one or holds one. Everything about individual runs goes into the report. An OSError
    while writing the target (e.g. a full disk) stops the merge: every run placed before it is
    whole, and the same merge run again places the rest.
    """
    into = Path(into)
    roots = _check_paths([Path(s) for s in sources], into)
    report = MergeReport(into=str(into), sources=[str(s) for s in roots], dry_run=dry_run)
    with _target_lock(into, dry_run):
        copies: dict[str, list[RunCopy]] = {}
        for root in roots:
            for copy in _scan(root, report):
                copies.setdefault(copy.run_id, []).append(copy)
        artifacts: dict[Path, tuple[str, RunCopy | None]] = {}
        to_write = [c for rid in sorted(copies)
                    if (c := _decide(rid, copies[rid], into, report, artifacts)) is not None]
        if dry_run:
            report.copied = [c.run_id for c in to_write]
            report.noise_copied = sorted(str(p) for p, (_s, c) in artifacts.items() if c)
        else:
            _write_all(to_write, artifacts, into, report)
    return report


def _check_paths(sources: list[Path], into: Path) -> list[Path]:
    """The distinct source roots, each an existing directory, none overlapping the target (a
    target inside a source would be a write into that source)."""
    if not sources:
        raise UsageError("merge needs at least one source store")
    target = into.resolve()
    roots: list[Path] = []
    for src in sources:
        if not src.is_dir():
            raise UsageError(f"merge source {src}: not a directory")
        real = src.resolve()
        if real == target or real in target.parents or target in real.parents:
            raise UsageError(f"merge source {src} and target {into} overlap; merge into a folder "
                             f"outside every source")
        if real not in (r.resolve() for r in roots):  # one store named twice is read once
            roots.append(src)
    return roots


@contextlib.contextmanager
def _target_lock(into: Path, dry_run: bool) -> Iterator[None]:
    """Hold ``<into>/.merge.lock`` (one merge into a store at a time) and remove the temporary
    folders an interrupted merge left. A dry run takes no lock: it must write nothing."""
    if dry_run:
        yield
        return
    into.mkdir(parents=True, exist_ok=True)
    with open(into / ".merge.lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            for tmp in into.glob(f"{TMP_PREFIX}*.tmp"):
                if tmp.is_dir():  # only a merge makes these; with the lock held none is live
                    shutil.rmtree(tmp)
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _scan(root: Path, report: MergeReport) -> Iterator[RunCopy]:
    """The verified finished runs of one store; unfinished and refused ones go into the report.

    A folder counts as a run when it is named by a run id and holds config.json or a lock (as
    Store.run_ids has it), or holds a result.json under any name (a run renamed by hand).
    Hidden folders (temporary ones of an interrupted merge) and the store's own folders
    (_noise, wandb) are not runs. A link that would count as a run is refused, never followed
    (read_run says so): the runs merged are the ones the received store holds itself.
    """
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        finished = (folder / "result.json").is_file()
        named = RUN_ID.fullmatch(folder.name) is not None
        if folder.is_symlink() and (named or finished):
            finished = True  # whatever it points at, read_run refuses it without reading it
        if named and not finished and ((folder / "config.json").is_file()
                                       or (folder / ".lock").is_file()):
            report.skipped_unfinished.append((folder.name, str(folder)))
            continue
        if not finished:
            continue
        try:
            yield read_run(folder)
        except Refused as e:
            report.refused.append((shown(folder.name), shown(folder), str(e)))


def _decide(rid: str, incoming: list[RunCopy], into: Path, report: MergeReport,
            artifacts: dict[Path, tuple[str, RunCopy | None]]) -> RunCopy | None:
    """Classify the verified copies of one run: returns the copy to write, or None (already in
    the target, a conflict, or refused; the report says which). ``artifacts`` collects the noise
    artifacts the target will hold: relative path -> (SHA-256, the copy to take it from, or
    None when the target already has it)."""
    held_dir = into / rid
    held = None
    if held_dir.exists():
        if not (held_dir / "result.json").is_file():
            # a run training, stopped or abandoned in the target: its folder is not ours to replace
            for c in incoming:
                report.refused.append((rid, str(c.folder), f"the target holds an unfinished folder "
                                       f"of this run ({held_dir}); finish or remove it first"))
            return None
        try:
            held = read_run(held_dir)
        except Refused as e:
            report.refused.append((rid, str(held_dir), f"the target's copy fails verification "
                                   f"({e}); it is left as it is and no copy is merged"))
            return None
    first, others = (held, incoming) if held is not None else (incoming[0], incoming[1:])
    diffs: list[str] = []
    kernels: list[str] = []  # how the kernels of each pair that differs differ ('' : they agree)
    for c in others:
        found = differences(first, c)
        if len(others) > 1:  # say which pair differs when more than two copies are compared
            found = [f"{c.folder} vs {first.folder}: {d}" for d in found]
        diffs += found
        if found:
            kernels.append("; ".join(other_kernels(first, c)))
    if diffs:
        report.conflicts.append((rid, [str(c.folder) for c in [first, *others]], diffs))
        if all(kernels):  # every disagreement is explained by the machine: other rounding
            report.kernels[rid] = " / ".join(dict.fromkeys(kernels))
        return None
    why = _plan_artifact([first, *others], into, artifacts)
    if why:
        for c in incoming:
            report.refused.append((rid, str(c.folder), why))
        return None
    if held is not None:
        report.already.append(rid)
        return None
    return first


def _plan_artifact(copies: list[RunCopy], into: Path,
                   artifacts: dict[Path, tuple[str, RunCopy | None]]) -> str:
    """Check the run's noise artifact against the target's and plan its copy; returns why the
    run is refused ('' if it is not). The copies agree, so they share one noise hash."""
    rel, sha = copies[0].noise_path, copies[0].noise_sha
    if rel is None:  # imported noise: no cache entry, the hash in the run files is all there is
        return ""
    if not in_noise_dir(rel):  # read_run refuses these already; the target is written through rel
        return f"its noise artifact path {shown(rel)} leaves the target's {NOISE_DIR} folder; not written"
    if rel not in artifacts:
        there = into / rel
        if there.is_file():
            try:
                artifacts[rel] = (load_artifact(there).sha256, None)
            except (OSError, ValueError) as e:
                return f"the target's noise artifact {rel} cannot be read ({e}); not replaced"
        else:
            provider = next((c for c in copies if c.has_artifact), None)
            if provider is None:  # no store has it: the target rebuilds it when it needs it
                return ""
            artifacts[rel] = (sha, provider)
    if artifacts[rel][0] != sha:
        return (f"the target's noise artifact {rel} holds other labels (SHA-256 "
                f"{artifacts[rel][0][:12]}... vs this run's {sha[:12]}...)")
    return ""


def _write_all(to_write: list[RunCopy], artifacts: dict[Path, tuple[str, RunCopy | None]],
               into: Path, report: MergeReport) -> None:
    """Copy the planned noise artifacts, then the planned runs (artifact first, so a merged run
    always finds the labels it was trained on)."""
    failed: dict[Path, str] = {}
    for rel, (sha, provider) in sorted(artifacts.items()):
        if provider is None:
            continue
        try:
            if _place_artifact(provider.store, rel, into / rel, sha):
                report.noise_copied.append(str(rel))
        except (OSError, ValueError) as e:  # Refused (a ValueError) included: the source changed
            failed[rel] = f"noise artifact {rel} could not be copied: {e}"
    for copy in to_write:
        if copy.noise_path in failed:
            report.refused.append((copy.run_id, str(copy.folder), failed[copy.noise_path]))
            continue
        try:
            _place_run(copy, into)
        except FileExistsError:
            report.refused.append((copy.run_id, str(copy.folder), "a folder of this run appeared "
                                   "in the target during the merge; merge again to compare them"))
            continue
        report.copied.append(copy.run_id)


def _place_run(copy: RunCopy, into: Path) -> None:
    """Write the run's files into a temporary folder in the target root, then rename it to the
    run id: the run appears whole or not at all. FileExistsError if the name was taken."""
    final = into / copy.run_id
    tmp = into / f"{TMP_PREFIX}{copy.run_id}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        for name in RUN_FILES:
            with open(tmp / name, "xb") as f:
                f.write(copy.files[name])
                f.flush()
                os.fsync(f.fileno())
        if final.exists():  # os.replace would silently replace an empty folder
            raise FileExistsError(final)
        try:
            os.replace(tmp, final)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(final) from e
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _place_artifact(store: Path, rel: Path, dst: Path, sha: str) -> bool:
    """Copy the noise artifact ``rel`` of the source ``store`` into the target's cache (at
    ``dst``), unless a worker put one there meanwhile; returns whether it was copied. Read as
    verify read it (no link followed, bounded in size); the copy is verified (labels hash to
    ``sha``) before it is renamed into place. Held under the cache entry's own lock, which
    workers take too."""
    with cache_lock(dst):
        if dst.is_file():
            if load_artifact(dst).sha256 != sha:
                raise ValueError(f"{dst} appeared during the merge holding other labels")
            return False
        # the name matches the cache's stale-file pattern, so a crash here leaves nothing lasting
        tmp = dst.parent / f"{dst.name}.merge-{secrets.token_hex(4)}.tmp"
        try:
            data = read_file(store, rel, limit=MAX_ARTIFACT_BYTES)
            if data is None:
                raise ValueError(f"{store / rel} disappeared during the merge")
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if load_artifact(tmp).sha256 != sha:
                raise ValueError(f"{store / rel} changed during the merge")
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
    return True


