"""Checking an imported noise artifact against the data: nothing a file claims is taken on trust.

An artifact received from someone else carries claims: which clean labels it belongs to, its
spec, its measured flip rate and realised transition matrix. ``verify_artifact`` recomputes every
one of them from the dataset's own clean labels and the file's noisy labels, and refuses the file
(NoiseArtifactError) at the first claim that disagrees, saying which claim and by how much:

1. labels: a 1-D integer vector of the dataset's length, every label in [0, C);
2. clean labels: the file's ``clean_sha256`` equals the SHA-256 of the dataset's clean labels
   (same dataset, same order);
3. measured flip rate and realised T: recomputed, must equal the recorded ones;
4. the spec: the realised T must be a plausible draw from the spec's nominal matrix (each entry
   within 5 binomial standard deviations plus one sample, or within rounding for exact counts),
   the labels equal the real set for ``human``, equal the clean labels for ``none``; for ``idn``
   the mean flip rate within 0.1 of the nominal rate;
5. regeneration: the suite's own generator run with the file's spec and seed; when it gives the
   same labels the file is marked ``regenerated`` (made by this suite's code), else it is a
   foreign realisation that passed checks 1-4 (accepted, and recorded as such).

Matrices are row-stochastic: T[i, j] = P(noisy = j | true = i).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from noise.artifact import NoiseArtifact, build_artifact, labels_sha256
from noise.errors import NoiseArtifactError, NoiseSpecError
from noise.matrices import flip_rate, nominal_matrix, realised_matrix
from noise.spec import validate_spec

SIGMAS = 5.0
"""Tolerance of the spec check, in binomial standard deviations per entry of T."""
IDN_TOLERANCE = 0.1
"""Largest accepted gap between an idn file's flip rate and its nominal rate."""


def verify_artifact(art: NoiseArtifact, clean: np.ndarray, num_classes: int, *, source: str,
                    human: dict[str, np.ndarray] | None = None,
                    features: np.ndarray | None = None, regenerate: bool = True) -> dict[str, Any]:
    """Recompute what ``art`` claims from ``clean`` (N,) and refuse it if anything disagrees.

    ``source`` names the file in messages; ``human`` holds the dataset's real label sets;
    ``features`` (N, D) are needed to regenerate idn noise (regeneration is skipped without them,
    or when ``regenerate`` is False: the suite's own cache entries skip it, it costs a rebuild).
    Returns the verification record (stored with the run): the recomputed rate, whether the
    suite's generator reproduces the labels, and the checks passed.
    """
    C = int(num_classes)

    def refuse(claim: str, detail: str) -> NoiseArtifactError:
        return NoiseArtifactError(f"noise file {source!r} refused: its {claim} does not hold: {detail}")

    noisy = np.asarray(art.noisy_labels)
    clean = np.asarray(clean, dtype=np.int64)
    if noisy.shape != clean.shape:
        raise refuse("length", f"{noisy.shape[0]} labels, the dataset has {clean.shape[0]}")
    if noisy.size and (noisy.min() < 0 or noisy.max() >= C):
        raise refuse("labels", f"values in [{noisy.min()}, {noisy.max()}], valid labels are [0, {C})")
    want = labels_sha256(clean)
    if art.clean_sha256 != want:
        raise refuse("clean-label hash", f"the file records {art.clean_sha256[:16]}..., the dataset's "
                     f"clean labels hash to {want[:16]}... (another dataset, copy or order)")
    rate = flip_rate(clean, noisy)
    if abs(rate - float(art.actual_rate)) > 1e-12:
        raise refuse("measured flip rate", f"it records {float(art.actual_rate):.4f}, the labels give "
                     f"{rate:.4f} (off by {abs(rate - float(art.actual_rate)):.4f})")
    T = realised_matrix(clean, noisy, C)
    recorded = np.asarray(art.transition, dtype=np.float64)
    gap = float(np.abs(T - recorded).max()) if T.shape == recorded.shape else np.inf
    if gap > 1e-9:
        raise refuse("realised transition matrix", f"recomputed from the labels it differs by up to {gap:.4f}")
    spec = art.spec
    try:
        validate_spec(spec, dataset=art.dataset, num_classes=C, human_sets=tuple(human or ()))
    except NoiseSpecError as e:
        raise refuse("spec", str(e)) from None
    _check_spec(art, clean, noisy, T, C, human, refuse)
    regenerated = None
    if regenerate and (spec.kind != "idn" or features is not None):
        try:
            again = build_artifact(spec, clean, dataset=art.dataset, num_classes=C, seed=art.seed,
                                   features=features, human=human)
            regenerated = again.sha256 == art.sha256
        except NoiseSpecError:
            regenerated = False
    return {"source": source, "measured_rate": rate, "clean_sha256": want, "regenerated": regenerated,
            "checks": ["labels", "clean_sha256", "measured_rate", "transition", "spec"]}


def _check_spec(art: NoiseArtifact, clean: np.ndarray, noisy: np.ndarray, T: np.ndarray, C: int,
                human: dict[str, np.ndarray] | None, refuse) -> None:
    spec = art.spec
    label = spec.label()
    if spec.kind == "none":
        if not np.array_equal(clean, noisy):
            raise refuse("spec 'none'", f"{int((clean != noisy).sum())} labels differ from the clean ones")
        return
    if spec.kind == "human":
        real = np.asarray((human or {})[spec.human_set], dtype=np.int64)
        if not np.array_equal(real, noisy):
            raise refuse(f"spec {label}", f"{int((real != noisy).sum())} labels differ from the real "
                         f"'{spec.human_set}' label set")
        return
    if spec.kind == "idn":
        rate = flip_rate(clean, noisy)
        if abs(rate - spec.rate) > IDN_TOLERANCE:
            raise refuse(f"spec {label}", f"flip rate {rate:.4f} is {abs(rate - spec.rate):.4f} from "
                         f"the nominal {spec.rate:g} (tolerance {IDN_TOLERANCE})")
        return
    nominal = (realised_matrix(clean, np.asarray(human[spec.human_set]), C) if spec.kind == "twin"
               else nominal_matrix(spec, C, art.dataset))
    if art.nominal is not None and np.abs(np.asarray(art.nominal) - nominal).max() > 1e-9:
        raise refuse("nominal matrix", f"it differs from the matrix of {label} by up to "
                     f"{float(np.abs(np.asarray(art.nominal) - nominal).max()):.4f}")
    n = np.bincount(clean, minlength=C).astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if spec.mode == "exact":
            tol = np.where(n > 0, 1.0 / n, np.inf) + 1e-9  # largest-remainder rounding: one sample
        else:
            tol = SIGMAS * np.sqrt(nominal * (1 - nominal) / n) + 1.0 / n
    dev = np.abs(T - nominal)
    dev = np.where(n > 0, dev, 0.0)
    bad = dev > tol
    if bad.any():
        i, j = np.unravel_index(np.argmax(np.where(bad, dev - tol, -np.inf)), dev.shape)
        expected = float((n[:, 0] / n.sum()) @ (1 - np.diag(nominal)))
        raise refuse(f"spec {label}", f"T[{i}, {j}] is {T[i, j]:.4f} where {label} gives "
                     f"{nominal[i, j]:.4f} (off by {dev[i, j]:.4f}, tolerance {tol[i, j]:.4f}); "
                     f"flip rate {flip_rate(clean, noisy):.4f}, {label} expects {expected:.4f}")
