"""Every preset parses and expands into valid cells (no data needed)."""
import pytest

from benchmark.grid import expand, list_presets, load_preset
from methods import list_methods


def test_the_four_presets_exist():
    assert {"quick", "fmnist", "cifar10", "cifar-n"} <= set(list_presets())


QUICK = ["ce", "gce", "coteaching", "dividemix", "obd", "gce+obd"]


@pytest.mark.parametrize("name", list_presets())
def test_preset_expands_to_every_method(name):
    """quick lists its methods (every X+obd would make it too slow); "*" presets cover every
    registered method, X+obd included; other presets cover exactly the methods they list."""
    spec = load_preset(name)
    cfgs = expand(spec)
    methods = {c.method for c in cfgs}
    if name == "quick":
        assert spec["methods"] == QUICK and methods == set(QUICK)
    elif spec["methods"] == ["*"]:
        assert methods == set(list_methods())
    else:
        assert methods == set(spec["methods"])
    n_noise, n_seeds = len(spec["noise"]), len(spec["seeds"])
    if "variant" not in spec:  # variants add cells (tests/benchmark/test_grid_variants.py)
        assert len(cfgs) == len(methods) * n_noise * n_seeds
    assert len({c.protocol_name for c in cfgs}) == 1


def test_fmnist_grid_cells():
    cfgs = expand(load_preset("fmnist"))
    settings = {(c.noise.kind, c.noise.rate) for c in cfgs}
    assert settings == {("sym", 0.2), ("sym", 0.4), ("sym", 0.5), ("sym", 0.6), ("sym", 0.8),
                        ("pairflip", 0.45), ("asym", 0.4), ("idn", 0.2), ("idn", 0.4)}
    assert {c.seed for c in cfgs} == {0, 1, 2}
    assert {(c.model, c.epochs, c.optim.name, c.optim.weight_decay) for c in cfgs} == {("lenet", 30, "adam", 0.0)}


def test_the_fidelity_cells_are_cells_of_the_fmnist_grid():
    """The fidelity table reuses the fmnist grid's runs: same run ids, not a protocol of its own."""
    from benchmark.grid import _identity_key
    fmnist = {_identity_key(c) for c in expand(load_preset("fmnist"))}
    fidelity = [_identity_key(c) for c in expand(load_preset("fidelity"))]
    assert len(fidelity) == 36 and set(fidelity) <= fmnist


def test_cifar_n_covers_cifar100n():
    cfgs = expand(load_preset("cifar-n"))
    assert {(c.dataset, c.noise.human_set) for c in cfgs} == {
        ("cifar10", "aggre"), ("cifar10", "rand1"), ("cifar10", "worst"), ("cifar100", "noisy")}


def test_overrides_apply_only_where_they_match(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('methods = ["gce", "ce"]\n[base]\ndataset = "digits"\n[[noise]]\nkind = "sym"\nrate = 0.2\n'
                 '[[noise]]\nkind = "sym"\nrate = 0.4\n[[override]]\nmatch = { method = "gce", "noise.rate" = 0.4 }\n'
                 'set = { "hp.q" = 0.3 }\n')
    cfgs = expand(load_preset(str(f)))
    hp = {(c.method, c.noise.rate): c.hp for c in cfgs}
    assert hp == {("gce", 0.2): {}, ("gce", 0.4): {"q": 0.3}, ("ce", 0.2): {}, ("ce", 0.4): {}}


def test_extends_reuses_the_parents_protocol_and_settings(tmp_path):
    f = tmp_path / "child.toml"
    f.write_text('extends = "fmnist"\nmethods = ["ce", "coteaching"]\n[base]\nepochs = 3\n'
                 '[[noise]]\nkind = "sym"\nrate = 0.5\n')
    child, parent = expand(load_preset(str(f))), expand(load_preset("fmnist"))
    assert {c.noise.rate for c in child} == {0.5} and {c.method for c in child} == {"ce", "coteaching"}
    assert len(child) == 2 * 3  # the parent's seeds
    assert {c.epochs for c in child} == {3}
    p, c = parent[0], child[0]
    assert (c.subset, c.protocol_name, c.optim) == (p.subset, p.protocol_name, p.optim)
    ct = next(x for x in child if x.method == "coteaching")
    assert ct.hp == next(x for x in parent if x.method == "coteaching").hp  # per-method settings kept
