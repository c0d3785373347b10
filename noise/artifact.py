"""Noise artifacts: a noisy label vector with everything needed to trust and reproduce it.

An artifact records the spec, the noise seed, the realised transition matrix, the nominal one,
the measured flip rate and SHA-256 hashes of the clean and noisy labels. Matrices are (C, C) and
row-stochastic: T[i, j] = P(noisy = j | true = i).

Files are .npz archives holding plain arrays and a JSON summary string, so loading never needs
pickle; the label hash is recomputed on load so a corrupted or swapped file is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Sequence

import numpy as np

from noise.idn import idn_labels
from noise.matrices import flip_rate, nominal_matrix, realised_matrix
from noise.sampling import sample_from_matrix
from noise.errors import NoiseArtifactError, NoiseSpecError
from noise.spec import NoiseSpec, validate_spec


def labels_sha256(labels: np.ndarray) -> str:
    """Hex SHA-256 of (N,) labels as little-endian int64 bytes (independent of the input dtype
    and of the machine's byte order)."""
    a = np.ascontiguousarray(np.asarray(labels), dtype="<i8")
    return hashlib.sha256(a.tobytes()).hexdigest()


@dataclass(eq=False)  # eq on numpy fields would be ambiguous; compare sha256 instead
class NoiseArtifact:
    """The noisy labels of one (dataset, spec, seed) and their measured properties."""

    dataset: str
    """Dataset name the labels belong to."""
    spec: NoiseSpec
    """The noise spec that produced the labels."""
    seed: int
    """Seed of the noise stream (np.random.default_rng(seed)), separate from training seeds."""
    noisy_labels: np.ndarray
    """(N,) int64 noisy labels, in the dataset's training order."""
    clean_sha256: str
    """SHA-256 of the clean labels (labels_sha256), tying the artifact to one label order."""
    sha256: str
    """SHA-256 of noisy_labels (labels_sha256)."""
    transition: np.ndarray
    """(C, C) realised row-stochastic matrix: T[i, j] = fraction of true class i labelled j."""
    nominal: np.ndarray | None
    """(C, C) intended row-stochastic matrix T[i, j] = P(noisy = j | true = i); for twin the
    human set's realised matrix; None for idn and human."""
    actual_rate: float
    """Measured fraction of labels that differ from the clean ones."""
    version: int = 1
    """File format version."""
    verification: dict[str, Any] | None = None
    """How an imported file was checked against the dataset (noise/verify.py); not saved in files."""

    def summary(self) -> dict[str, Any]:
        """JSON-able description (no label vector; transition matrices as nested lists)."""
        return {
            "dataset": self.dataset,
            "spec": self.spec.to_dict(),
            "label": self.spec.label(),
            "seed": int(self.seed),
            "sha256": self.sha256,
            "clean_sha256": self.clean_sha256,
            "actual_rate": float(self.actual_rate),
            "num_samples": int(self.noisy_labels.shape[0]),
            "transition": np.asarray(self.transition, dtype=np.float64).tolist(),
            "nominal": None if self.nominal is None
            else np.asarray(self.nominal, dtype=np.float64).tolist(),
            "version": int(self.version),
            **({"verification": self.verification} if self.verification else {}),
        }


def _check_labels(name: str, labels: np.ndarray, C: int, n: int | None = None) -> np.ndarray:
    a = np.asarray(labels)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} labels must be a 1-D integer array, got {a.dtype} {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} labels have {a.shape[0]} entries, the clean labels {n}")
    if a.size and (a.min() < 0 or a.max() >= C):
        raise ValueError(f"{name} labels must lie in [0, {C}), got [{a.min()}, {a.max()}]")
    return a.astype(np.int64)


def build_artifact(spec: NoiseSpec, clean: np.ndarray, *, dataset: str, num_classes: int,
                   seed: int, features: np.ndarray | None = None,
                   human: dict[str, np.ndarray] | None = None,
                   human_sets: Sequence[str] = ()) -> NoiseArtifact:
    """Validate `spec`, make the noisy labels and measure them.

    clean: (N,) integer labels in [0, num_classes). features: (N, D), needed for idn only (raw
    0..255 pixels, flattened; see noise.idn). human: {set name: (N,) labels}, needed for
    human/twin; when given, its keys are the valid human sets. seed: the noise stream,
    np.random.default_rng(seed); the same inputs and seed always give the same labels.
    """
    sets = tuple(human) if human is not None else tuple(human_sets)
    validate_spec(spec, dataset=dataset, num_classes=num_classes, human_sets=sets)
    C = int(num_classes)
    clean = _check_labels("clean", clean, C)
    rng = np.random.default_rng(seed)
    nominal = nominal_matrix(spec, C, dataset)

    if spec.kind == "none":
        noisy = clean.copy()
    elif spec.kind == "idn":
        if features is None:
            raise NoiseSpecError("idn noise needs the input features (N, D) of the training set; "
                                 "pass features=... (raw pixels, flattened)")
        noisy = idn_labels(features, clean, C, float(spec.rate), rng)
    elif spec.kind in ("human", "twin"):
        if human is None:
            raise NoiseSpecError(f"{spec.kind} noise needs the real label sets; pass human=...")
        real = _check_labels(f"human set {spec.human_set!r}", human[spec.human_set], C,
                             clean.shape[0])
        if spec.kind == "human":
            noisy = real.copy()
        else:
            # twin: synthetic class-conditional labels with the human set's realised matrix,
            # isolating the instance dependence of real noise from its class structure
            nominal = realised_matrix(clean, real, C)
            noisy = sample_from_matrix(clean, nominal, rng, spec.mode)
    else:
        assert nominal is not None  # every remaining kind has a class-level matrix
        noisy = sample_from_matrix(clean, nominal, rng, spec.mode)

    return NoiseArtifact(
        dataset=dataset, spec=spec, seed=int(seed), noisy_labels=noisy,
        clean_sha256=labels_sha256(clean), sha256=labels_sha256(noisy),
        transition=realised_matrix(clean, noisy, C), nominal=nominal,
        actual_rate=flip_rate(clean, noisy))


def save_artifact(art: NoiseArtifact, path: str | os.PathLike) -> None:
    """Write `art` to `path` (.npz) atomically: a temporary file in the same directory, then
    os.replace, so a crash never leaves a half-written artifact under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nominal = np.zeros((0, 0)) if art.nominal is None else np.asarray(art.nominal, np.float64)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, noisy_labels=np.asarray(art.noisy_labels, dtype="<i8"),
                     transition=np.asarray(art.transition, dtype=np.float64),
                     nominal=nominal,
                     summary=np.array(json.dumps({k: v for k, v in art.summary().items()
                                                  if k != "verification"})))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_artifact(path: str | os.PathLike | BinaryIO, *, expect_dataset: str | None = None,
                  expect_num: int | None = None, hint: str = "", name: str | None = None) -> NoiseArtifact:
    """Read an artifact written by save_artifact, refusing (NoiseArtifactError) a file that is
    unreadable, whose labels do not hash to the recorded SHA-256, whose arrays disagree with its
    summary, or whose dataset / number of samples differ from `expect_dataset` / `expect_num`.
    `hint` is appended to the reason (the cache says it will rebuild the entry). This checks the
    file against itself only; noise/verify.py checks it against the dataset.

    `path` may also be a binary file object holding the artifact's bytes (a caller that read
    the file its own way, e.g. refusing links: benchmark/store/received.py); `name` is what
    messages call it (default: the path)."""
    if not hasattr(path, "read"):
        path = Path(path)
    shown = name if name is not None else str(path)

    def fail(why: str) -> NoiseArtifactError:
        return NoiseArtifactError(f"noise artifact {shown!r} refused: {why}{hint}")

    try:
        with np.load(path, allow_pickle=False) as z:
            noisy = z["noisy_labels"]
            transition = z["transition"]
            nominal_arr = z["nominal"]
            summary = json.loads(str(z["summary"][()]))
        spec = NoiseSpec.from_dict(summary["spec"])
        dataset, seed, sha = summary["dataset"], int(summary["seed"]), summary["sha256"]
        clean_sha, rate = summary["clean_sha256"], float(summary["actual_rate"])
        num, version = int(summary["num_samples"]), int(summary["version"])
        sum_transition, sum_nominal = summary["transition"], summary["nominal"]
    except FileNotFoundError:
        raise
    except Exception as e:  # zip/CRC/format/JSON/key errors all mean the same: unusable file
        raise fail(f"cannot be read ({type(e).__name__}: {e})") from e

    if noisy.ndim != 1 or not np.issubdtype(noisy.dtype, np.integer):
        raise fail(f"noisy_labels has dtype {noisy.dtype} and shape {noisy.shape}")
    noisy = noisy.astype(np.int64)
    if labels_sha256(noisy) != sha:
        raise fail("the noisy labels do not match their recorded SHA-256 (corrupted or edited)")
    if noisy.shape[0] != num:
        raise fail(f"{noisy.shape[0]} labels but the summary records {num}")
    if not np.array_equal(transition, np.asarray(sum_transition, dtype=np.float64)):
        raise fail("the transition matrix differs from the one in its summary")
    nominal = None if sum_nominal is None else nominal_arr
    if nominal is not None and not np.array_equal(nominal, np.asarray(sum_nominal, np.float64)):
        raise fail("the nominal matrix differs from the one in its summary")
    if expect_dataset is not None and dataset != expect_dataset:
        raise fail(f"it is for dataset {dataset!r}, expected {expect_dataset!r}")
    if expect_num is not None and num != int(expect_num):
        raise fail(f"it has {num} labels, expected {int(expect_num)}")
    return NoiseArtifact(dataset=dataset, spec=spec, seed=seed, noisy_labels=noisy,
                         clean_sha256=clean_sha, sha256=sha, transition=transition,
                         nominal=nominal, actual_rate=rate, version=version)
