"""An imported noise file's claims are recomputed from the data; a file that lies is refused."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from noise import NoiseArtifactError, NoiseSpec, build_artifact, labels_sha256, save_artifact, verify_artifact
from noise.matrices import flip_rate, realised_matrix

ROOT = Path(__file__).resolve().parents[2]
C, N = 10, 4000


@pytest.fixture
def clean():
    return np.random.default_rng(0).integers(0, C, N)


def _art(clean, kind="sym", rate=0.3, seed=5, mode="bernoulli"):
    return build_artifact(NoiseSpec(kind, rate, mode), clean, dataset="digits", num_classes=C, seed=seed)


def _restate(art, noisy, clean):
    """What a careless or dishonest exporter writes: new labels with self-consistent numbers."""
    return dataclasses.replace(art, noisy_labels=noisy, sha256=labels_sha256(noisy),
                               transition=realised_matrix(clean, noisy, C),
                               actual_rate=flip_rate(clean, noisy))


def test_a_suite_artifact_passes_and_is_regenerated(clean):
    art = _art(clean)
    v = verify_artifact(art, clean, C, source="f.npz")
    assert v["regenerated"] is True and v["measured_rate"] == pytest.approx(art.actual_rate)
    exact = _art(clean, mode="exact")
    assert verify_artifact(exact, clean, C, source="e.npz")["regenerated"] is True


def test_lying_metadata_rate_is_refused_saying_by_how_much(clean):
    art = _art(clean)
    liar = dataclasses.replace(art, actual_rate=0.05)
    with pytest.raises(NoiseArtifactError, match=r"measured flip rate.*records 0\.0500.*labels give 0\.3"):
        verify_artifact(liar, clean, C, source="liar.npz")


def test_labels_much_noisier_than_their_spec_are_refused(clean):
    noisy30 = _art(clean, rate=0.3).noisy_labels
    claims5 = _restate(_art(clean, rate=0.05), noisy30, clean)  # every number recomputed, spec left at 5%
    with pytest.raises(NoiseArtifactError, match=r"spec sym-5%.*flip rate 0\.3\d+, sym-5% expects 0\.05"):
        verify_artifact(claims5, clean, C, source="claims5.npz")


def test_permuted_labels_are_refused(clean):
    art = _art(clean)
    perm = np.random.default_rng(1).permutation(art.noisy_labels)
    shuffled = dataclasses.replace(art, noisy_labels=perm, sha256=labels_sha256(perm))
    with pytest.raises(NoiseArtifactError, match=r"measured flip rate.*records 0\.30\d+.*give 0\.89"):
        verify_artifact(shuffled, clean, C, source="perm.npz")


def test_labels_of_other_data_and_out_of_range_labels_are_refused(clean):
    art = _art(clean)
    other = np.roll(clean, 1)
    with pytest.raises(NoiseArtifactError, match="clean-label hash"):
        verify_artifact(art, other, C, source="x.npz")
    bad = art.noisy_labels.copy()
    bad[3] = 12
    with pytest.raises(NoiseArtifactError, match=r"labels.*valid labels are \[0, 10\)"):
        verify_artifact(dataclasses.replace(art, noisy_labels=bad), clean, C, source="x.npz")


def test_a_foreign_but_consistent_realisation_is_accepted_and_marked(clean):
    mine, theirs = _art(clean, seed=5), _art(clean, seed=99)
    foreign = _restate(mine, theirs.noisy_labels, clean)  # the same noise model, drawn by someone else
    v = verify_artifact(foreign, clean, C, source="foreign.npz")
    assert v["regenerated"] is False


def test_pairflip_claimed_as_sym_is_refused(clean):
    pair = _art(clean, kind="pairflip", rate=0.3).noisy_labels
    with pytest.raises(NoiseArtifactError, match=r"spec sym-30%.*T\[\d, \d\]"):
        verify_artifact(_restate(_art(clean, rate=0.3), pair, clean), clean, C, source="p.npz")


def test_the_cli_refuses_a_lying_file_with_exit_2(tmp_path):
    from benchmark.data import load_dataset
    y = load_dataset("digits").train_y
    art = build_artifact(NoiseSpec("sym", 0.3), y, dataset="digits", num_classes=C, seed=1)
    liar = dataclasses.replace(art, actual_rate=0.05)
    f = tmp_path / "liar.npz"
    save_artifact(liar, f)
    p = subprocess.run([sys.executable, "runner.py", "noise", "--dataset", "digits", "--noise-file", str(f),
                        "--runs", str(tmp_path / "r"), "--json"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "measured flip rate" in p.stderr and "delete it" not in p.stderr
    assert json.loads(p.stdout) == {"error": p.stderr.strip()[len("error: "):], "exit_code": 2}
    ok = tmp_path / "ok.npz"
    save_artifact(art, ok)
    p = subprocess.run([sys.executable, "runner.py", "noise", "--dataset", "digits", "--noise-file", str(ok),
                        "--runs", str(tmp_path / "r"), "--json"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["verification"]["regenerated"] is True
