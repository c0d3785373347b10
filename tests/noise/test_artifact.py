"""Noise artifacts: building every kind, human/twin sets, save/load, refusing bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from noise import (NoiseArtifactError, NoiseSpec, NoiseSpecError, build_artifact, labels_sha256,
                   load_artifact, realised_matrix, sample_from_matrix, save_artifact, sym_matrix)

C, N = 10, 20000


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return np.random.default_rng(0).integers(0, C, N)


@pytest.fixture(scope="module")
def human(clean) -> dict[str, np.ndarray]:
    """Synthetic 'real' label sets: one from a lopsided matrix, one nearly clean."""
    rng = np.random.default_rng(1)
    T = 0.6 * np.eye(C) + 0.4 * rng.dirichlet(np.full(C, 0.3), size=C)
    return {"worst": sample_from_matrix(clean, T, rng),
            "aggre": sample_from_matrix(clean, sym_matrix(C, 0.09), rng)}


@pytest.mark.parametrize("spec", [NoiseSpec(), NoiseSpec("sym", 0.4), NoiseSpec("sym_incl", 0.5),
                                  NoiseSpec("pairflip", 0.45, mode="exact"),
                                  NoiseSpec("asym", 0.4)])
def test_build_records_consistent_facts(spec, clean):
    art = build_artifact(spec, clean, dataset="cifar10", num_classes=C, seed=3)
    assert art.noisy_labels.dtype == np.int64 and art.noisy_labels.shape == (N,)
    assert art.sha256 == labels_sha256(art.noisy_labels)
    assert art.clean_sha256 == labels_sha256(clean)
    assert art.actual_rate == pytest.approx((art.noisy_labels != clean).mean())
    np.testing.assert_allclose(art.transition, realised_matrix(clean, art.noisy_labels, C))
    np.testing.assert_allclose(art.transition.sum(axis=1), 1.0)
    # the realised matrix is close to the nominal one
    assert np.abs(art.transition - art.nominal).max() < 0.05


def test_none_is_a_copy(clean):
    art = build_artifact(NoiseSpec(), clean, dataset="digits", num_classes=C, seed=0)
    np.testing.assert_array_equal(art.noisy_labels, clean)
    assert art.noisy_labels is not clean and art.actual_rate == 0.0


def test_seed_determinism_and_no_global_rng(clean):
    state = np.random.get_state()[1].copy()
    spec = NoiseSpec("sym", 0.4)
    a = build_artifact(spec, clean, dataset="cifar10", num_classes=C, seed=7)
    b = build_artifact(spec, clean, dataset="cifar10", num_classes=C, seed=7)
    c = build_artifact(spec, clean, dataset="cifar10", num_classes=C, seed=8)
    assert a.sha256 == b.sha256 != c.sha256
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_spec_is_validated_first(clean):
    with pytest.raises(NoiseSpecError, match="majority"):
        build_artifact(NoiseSpec("pairflip", 0.5), clean, dataset="cifar10", num_classes=C, seed=0)
    with pytest.raises(NoiseSpecError, match="needs the input features"):
        build_artifact(NoiseSpec("idn", 0.2), clean, dataset="cifar10", num_classes=C, seed=0)


def test_idn_artifact(clean):
    feats = np.random.default_rng(2).integers(0, 256, (N, 16), dtype=np.uint8)
    art = build_artifact(NoiseSpec("idn", 0.3), clean, dataset="cifar10", num_classes=C, seed=0,
                         features=feats)
    assert art.nominal is None and abs(art.actual_rate - 0.3) < 0.03


def test_human_uses_the_set(clean, human):
    art = build_artifact(NoiseSpec("human", human_set="worst"), clean, dataset="cifar10",
                         num_classes=C, seed=0, human=human)
    np.testing.assert_array_equal(art.noisy_labels, human["worst"])
    assert art.nominal is None
    with pytest.raises(NoiseSpecError, match="valid sets: worst, aggre"):
        build_artifact(NoiseSpec("human", human_set="rand1"), clean, dataset="cifar10",
                       num_classes=C, seed=0, human=human)
    with pytest.raises(ValueError, match="20000"):
        build_artifact(NoiseSpec("human", human_set="worst"), clean, dataset="cifar10",
                       num_classes=C, seed=0, human={"worst": human["worst"][:-1]})


@pytest.mark.parametrize("mode, tol", [("bernoulli", 0.04), ("exact", 1e-3)])
def test_twin_matches_human_transition(clean, human, mode, tol):
    art = build_artifact(NoiseSpec("twin", human_set="worst", mode=mode), clean,
                         dataset="cifar10", num_classes=C, seed=4, human=human)
    T_human = realised_matrix(clean, human["worst"], C)
    np.testing.assert_allclose(art.nominal, T_human)
    assert np.abs(art.transition - T_human).max() < tol
    # same class structure, different samples
    assert (art.noisy_labels != human["worst"]).mean() > 0.2


def test_summary_is_json(clean):
    art = build_artifact(NoiseSpec("asym", 0.4), clean, dataset="digits", num_classes=C, seed=5)
    s = json.loads(json.dumps(art.summary()))
    assert s["label"] == "asym-40%" and s["num_samples"] == N and s["seed"] == 5
    assert s["sha256"] == art.sha256 and s["spec"]["kind"] == "asym"
    assert np.array_equal(np.array(s["transition"]), art.transition) and len(s["nominal"]) == C
    assert s["actual_rate"] == pytest.approx(art.actual_rate)


@pytest.mark.parametrize("spec", [NoiseSpec("sym", 0.4), NoiseSpec("human", human_set="aggre")])
def test_save_load_round_trip(tmp_path, clean, human, spec):
    art = build_artifact(spec, clean, dataset="cifar10", num_classes=C, seed=9, human=human)
    path = tmp_path / "sub" / "noise.npz"
    save_artifact(art, path)
    assert [p.name for p in path.parent.iterdir()] == ["noise.npz"]  # no temp file left behind
    back = load_artifact(path, expect_dataset="cifar10", expect_num=N)
    assert back.sha256 == art.sha256 and back.spec == spec and back.seed == 9
    np.testing.assert_array_equal(back.noisy_labels, art.noisy_labels)
    np.testing.assert_array_equal(back.transition, art.transition)
    assert (back.nominal is None) == (art.nominal is None)
    if art.nominal is not None:
        np.testing.assert_array_equal(back.nominal, art.nominal)
    assert back.summary() == art.summary()


@pytest.fixture
def saved(tmp_path, clean):
    art = build_artifact(NoiseSpec("sym", 0.4), clean, dataset="cifar10", num_classes=C, seed=1)
    path = tmp_path / "a.npz"
    save_artifact(art, path)
    return art, path


def test_flipped_byte_is_refused(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    pos = data.find(b"noisy_labels.npy") + 2000  # inside the label array's bytes
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(NoiseArtifactError, match=r"a\.npz.*refused"):
        load_artifact(path)


def test_edited_labels_with_valid_zip_are_refused(saved):
    art, path = saved
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["noisy_labels"] = arrays["noisy_labels"].copy()
    arrays["noisy_labels"][0] = (arrays["noisy_labels"][0] + 1) % C
    np.savez(path, **arrays)
    with pytest.raises(NoiseArtifactError, match="SHA-256"):
        load_artifact(path)


def test_mismatched_expectations_are_refused(saved):
    _, path = saved
    with pytest.raises(NoiseArtifactError, match="expected 'cifar100'"):
        load_artifact(path, expect_dataset="cifar100")
    with pytest.raises(NoiseArtifactError, match="expected 50000"):
        load_artifact(path, expect_num=50000)
    assert issubclass(NoiseArtifactError, ValueError)
