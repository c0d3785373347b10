"""Every preset parses and expands into valid cells (no data needed)."""
import pytest

from benchmark.config import expand, list_presets, load_preset
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
    from benchmark.config.grid import _identity_key
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


def test_masked_variants_take_their_hosts_settings(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('methods = ["gce", "gce+obd", "ce"]\n[base]\ndataset = "digits"\n[[noise]]\nkind = "sym"\n'
                 'rate = 0.4\n[hp.gce]\nq = 0.3\n[[override]]\nmatch = { method = "gce", "noise.rate" = 0.4 }\n'
                 'set = { "mask.sparsity" = 0.2 }\n')
    cfgs = {c.method: c for c in expand(load_preset(str(f)))}
    assert cfgs["gce+obd"].hp == {"q": 0.3} == cfgs["gce"].hp
    assert cfgs["gce+obd"].mask == {"sparsity": 0.2} and cfgs["ce"].hp == {}


def test_loss_family_presets_carry_the_official_settings():
    c10 = expand(load_preset("losses-cifar10"))
    assert len(c10) == 12 * 9 * 3
    one = c10[0]
    assert (one.model, one.epochs, one.batch_size, one.val_frac) == ("cnn8", 120, 128, 0.0)
    o = one.optim
    assert (o.name, o.lr, o.momentum, o.weight_decay, o.schedule, o.grad_clip) == ("sgd", 0.01, 0.9, 1e-4, "cosine", 5.0)
    by = {(c.method, c.noise.kind, c.noise.rate): c for c in c10 if c.seed == 0}
    assert by[("anl_ce", "sym", 0.4)].hp == {"alpha": 5.0, "beta": 5.0, "delta": 5e-5, "replace_weight_decay": True}
    assert by[("anl_ce+obd", "sym", 0.4)].hp == by[("anl_ce", "sym", 0.4)].hp
    assert by[("sce", "asym", 0.1)].hp == {"alpha": 0.1, "beta": 1.0}
    assert {c.noise.mode for c in c10 if c.noise.kind != "none"} == {"exact"}
    c100 = {(c.method, c.noise.kind, c.noise.rate): c for c in expand(load_preset("losses-cifar100")) if c.seed == 0}
    q = {k[1:]: c.hp["q"] for k, c in c100.items() if k[0] == "gce"}
    assert q == {("none", 0.0): 0.5, ("sym", 0.2): 0.5, ("sym", 0.4): 0.7, ("sym", 0.6): 0.7,
                 ("sym", 0.8): 0.9, ("asym", 0.1): 0.7, ("asym", 0.2): 0.7, ("asym", 0.3): 0.7, ("asym", 0.4): 0.7}
    assert c100[("nce_rce", "sym", 0.4)].hp == {"alpha": 10.0, "beta": 0.1}
    assert c100[("ce", "sym", 0.4)].augment == "crop+flip+rotate20"


def test_elr_preset_switches_schedule_per_setting():
    cells = {(c.dataset, c.noise.kind, c.noise.rate): c for c in expand(load_preset("elr"))
             if c.seed == 0 and c.method == "elr"}
    sym = cells[("cifar10", "sym_incl", 0.4)]
    assert (sym.epochs, sym.optim.schedule, sym.optim.restart_every, sym.optim.eta_min, sym.hp) == \
        (150, "cosine_restarts", 10, 1e-3, {"beta": 0.7, "lam": 3.0})
    asym = cells[("cifar10", "asym", 0.4)]
    assert (asym.epochs, asym.optim.schedule, asym.optim.milestones, asym.optim.gamma, asym.hp) == \
        (120, "step", [40, 80], 0.01, {"beta": 0.9, "lam": 1.0})
    c100 = cells[("cifar100", "sym_incl", 0.2)]
    assert (c100.epochs, c100.optim.milestones, c100.hp["lam"]) == (150, [80, 120], 7.0)


def test_a_report_on_the_loss_protocol_shows_the_published_column(tmp_path, monkeypatch):
    """Real runs of the losses-cifar10 protocol (120 epochs on a 10-image CIFAR-10 copy in the
    official layout): the report's last-epoch table gets the epsilon-softmax paper's numbers."""
    import json
    import subprocess
    import sys
    from benchmark.training import run
    from tests.benchmark.data.fake_cifar import write_fake_cifar10
    monkeypatch.setenv("NLB_ALLOW_UNVERIFIED_DATA", "1")
    fake = write_fake_cifar10(tmp_path / "data", n_train=10, n_test=10)
    cells = [c for c in expand(load_preset("losses-cifar10"), seeds=[0],
                               extra_sets=[f"data_dir={fake.root}", "device=cpu"])
             if c.method in ("ce", "nce_rce") and c.noise.kind == "sym" and c.noise.rate == 0.2]
    assert len(cells) == 2
    for c in cells:
        run(c, tmp_path / "runs", wandb="disabled")
    p = subprocess.run([sys.executable, "runner.py", "report", "--runs", str(tmp_path / "runs"), "--json",
                        "--wandb", "disabled"], capture_output=True, text=True, check=True)
    index = json.loads(p.stdout)["index"]
    md = (tmp_path / "runs").rglob("last_losses-cifar10.md")
    text = next(md).read_text()
    assert "sym-20%-exact \\(published\\)" in text and "75.47 \\[1\\]" in text and "88.41 \\[1\\]" in text
    assert "epsilon-softmax" in text and "gradient-norm clip 5.0" in text and index
