"""NoiseSpec round trips and labels, and validate_spec's refusals with their messages."""
from __future__ import annotations

import json

import pytest

from noise import KINDS, NoiseSpec, NoiseSpecError, validate_spec

CIFARN = ("aggre", "rand1", "worst")


def check(spec: NoiseSpec, dataset: str = "cifar10", C: int = 10, sets=CIFARN) -> None:
    validate_spec(spec, dataset=dataset, num_classes=C, human_sets=sets)


def test_round_trip_and_json():
    s = NoiseSpec(kind="pairflip", rate=0.45, mode="exact", allow_unlearnable=True)
    d = s.to_dict()
    assert NoiseSpec.from_dict(json.loads(json.dumps(d))) == s
    assert set(d) == {"kind", "rate", "mode", "human_set", "allow_unlearnable"}
    with pytest.raises(NoiseSpecError, match="valid fields"):
        NoiseSpec.from_dict({"kind": "sym", "ratio": 0.2})


@pytest.mark.parametrize("spec, text", [
    (NoiseSpec("sym", 0.4), "sym-40%"),
    (NoiseSpec("pairflip", 0.45), "pairflip-45%"),
    (NoiseSpec("sym", 0.125, mode="exact"), "sym-12.5%-exact"),
    (NoiseSpec("idn", 0.2, mode="exact"), "idn-20%"),
    (NoiseSpec("human", human_set="worst"), "human-worst"),
    (NoiseSpec("twin", human_set="aggre"), "twin-aggre"),
    (NoiseSpec(), "none"),
])
def test_label(spec, text):
    assert spec.label() == text


@pytest.mark.parametrize("spec", [
    NoiseSpec(), NoiseSpec("sym", 0.89), NoiseSpec("sym_incl", 0.99), NoiseSpec("pairflip", 0.45),
    NoiseSpec("asym", 0.49), NoiseSpec("idn", 0.45), NoiseSpec("human", human_set="worst"),
    NoiseSpec("twin", human_set="aggre", mode="exact"),
    NoiseSpec("pairflip", 0.6, allow_unlearnable=True), NoiseSpec("sym", 0.95, allow_unlearnable=True),
])
def test_valid_specs_pass(spec):
    check(spec)


@pytest.mark.parametrize("spec, kw, pattern", [
    (NoiseSpec("uniform", 0.2), {}, r"unknown noise kind 'uniform'.*sym_incl.*twin"),
    (NoiseSpec("sym", 0.2, mode="poisson"), {}, r"unknown noise mode 'poisson'.*bernoulli, exact"),
    (NoiseSpec("sym", 1.0), {}, r"outside \[0, 1\)"),
    (NoiseSpec("sym", -0.1), {}, r"outside \[0, 1\)"),
    (NoiseSpec("sym", float("nan")), {}, r"outside \[0, 1\)"),
    (NoiseSpec("sym_incl", 1.0), {}, r"outside \[0, 1\)"),
    (NoiseSpec("asym", 0.2), {"dataset": "svhn"}, r"no class map.*'svhn'.*cifar10, cifar100, digits"),
    (NoiseSpec("pairflip", 0.5), {}, r"majority.*--allow-unlearnable"),
    (NoiseSpec("asym", 0.6), {}, r"majority.*--allow-unlearnable"),
    (NoiseSpec("sym", 0.9), {}, r"\(C-1\)/C = 0\.9.*majority.*--allow-unlearnable"),
    (NoiseSpec("sym", 0.5), {"C": 2}, r"\(C-1\)/C = 0\.5"),
    (NoiseSpec("idn", 0.5), {}, r"Xia.*--allow-unlearnable"),
    (NoiseSpec("none", 0.2), {}, r"rate 0"),
    (NoiseSpec("human", 0.2, human_set="worst"), {}, r"rate 0"),
    (NoiseSpec("human", human_set="worst"), {"dataset": "digits", "sets": ()},
     r"'digits' has none"),
    (NoiseSpec("twin", human_set="worse"), {}, r"unknown human_set 'worse'.*aggre, rand1, worst"),
    (NoiseSpec("sym", 0.2, human_set="worst"), {}, r"only applies to kinds human/twin"),
    (NoiseSpec("asym", 0.2), {"dataset": "digits", "C": 5}, r">= num_classes=5"),
])
def test_refusals_say_why(spec, kw, pattern):
    with pytest.raises(NoiseSpecError, match=pattern):
        check(spec, dataset=kw.get("dataset", "cifar10"), C=kw.get("C", 10),
              sets=kw.get("sets", CIFARN))


def test_error_is_a_value_error_and_kinds_complete():
    assert issubclass(NoiseSpecError, ValueError)
    assert KINDS == ("none", "sym", "sym_incl", "pairflip", "asym", "idn", "human", "twin")
