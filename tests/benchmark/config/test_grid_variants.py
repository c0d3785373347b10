"""Preset extensions: method patterns, exclude_methods and [[variant]] cells (no data needed)."""
from collections import Counter

import pytest

from benchmark.config import expand, load_preset
from benchmark.errors import UsageError
from methods import list_methods

HEAD = '[base]\ndataset = "digits"\n[[noise]]\nkind = "sym"\nrate = 0.2\n[[noise]]\nkind = "sym"\nrate = 0.4\n'


def _expand(tmp_path, text, **kw):
    f = tmp_path / "g.toml"
    f.write_text(text)
    return expand(load_preset(str(f)), **kw)


def test_patterns_and_exclusions(tmp_path):
    cfgs = _expand(tmp_path, 'methods = ["*"]\nexclude_methods = ["*+obd", "obd"]\n' + HEAD)
    assert {c.method for c in cfgs} == {m for m in list_methods() if "obd" not in m}
    cfgs = _expand(tmp_path, 'methods = ["*+obd", "ce"]\n' + HEAD)
    assert {c.method for c in cfgs} == {m for m in list_methods() if m.endswith("+obd")} | {"ce"}
    with pytest.raises(UsageError, match="matches no method"):
        _expand(tmp_path, 'methods = ["nothing*"]\n' + HEAD)
    with pytest.raises(UsageError, match="unknown methods"):
        _expand(tmp_path, 'methods = ["nothing"]\n' + HEAD)


def test_a_preset_without_variants_is_unchanged(tmp_path):
    cfgs = _expand(tmp_path, 'methods = ["gce", "ce"]\nseeds = [0, 1]\n' + HEAD)
    assert [(c.method, c.noise.rate, c.seed) for c in cfgs] == [
        (m, r, s) for m in ("gce", "ce") for r in (0.2, 0.4) for s in (0, 1)]


def test_variants_add_cells_for_matching_methods_only(tmp_path):
    text = ('methods = ["ce", "obd", "gce+obd"]\nseeds = [0, 1]\n' + HEAD +
            '[[variant]]\nmethods = ["*obd"]\nset = { "mask.sparsity" = 0.1 }\n'
            '[[variant]]\nmethods = ["obd"]\nset = { "mask.score" = "random", "mask.scope" = "layer" }\n'
            '[[variant]]\nmethods = ["obd"]\nset = { "mask.sparsity" = 0.5 }\n')  # = the default: dropped
    cfgs = _expand(tmp_path, text)
    per = Counter(c.method for c in cfgs)
    assert per == {"ce": 4, "obd": 4 * 3, "gce+obd": 4 * 2}
    obd = {tuple(sorted(c.mask.items())) for c in cfgs if c.method == "obd"}
    assert obd == {(), (("sparsity", 0.1),), (("scope", "layer"), ("score", "random"))}
    assert all(not c.mask for c in cfgs if c.method == "ce")


def test_command_line_sets_apply_to_variants_and_duplicates_collapse(tmp_path):
    text = ('methods = ["obd"]\n' + HEAD +
            '[[variant]]\nset = { "mask.sparsity" = 0.1 }\n'
            '[[variant]]\nset = { "mask.sparsity" = 0.3 }\n')
    assert len(_expand(tmp_path, text)) == 2 * 3
    cfgs = _expand(tmp_path, text, extra_sets=["mask.sparsity=0.7"])
    assert len(cfgs) == 2 and {c.mask["sparsity"] for c in cfgs} == {0.7}


def test_variant_needs_a_set_table(tmp_path):
    with pytest.raises(UsageError, match="set"):
        _expand(tmp_path, 'methods = ["obd"]\n' + HEAD + '[[variant]]\nmethods = ["obd"]\n')


def test_obd_ablation_preset():
    spec = load_preset("obd-ablation")
    cfgs = expand(spec)
    settings = {(c.noise.kind, c.noise.rate) for c in cfgs}
    assert settings == {("sym", 0.4), ("sym", 0.6), ("pairflip", 0.45)}
    assert {c.seed for c in cfgs} == {0, 1, 2} and {c.dataset for c in cfgs} == {"fashion_mnist"}
    assert len({c.protocol_name for c in cfgs}) == 1
    one = [c for c in cfgs if c.seed == 0 and c.noise.kind == "sym" and c.noise.rate == 0.4]

    def cells(method, **fixed):
        return [c.mask for c in one if c.method == method
                and all(c.mask.get(k) == v for k, v in fixed.items())]

    # (a) sparsity sweep, obd score, row scope, training only, on ce and gce
    for m in ("obd", "gce+obd"):
        sweep = cells(m, score="obd", scope="row", at_eval=False)
        assert sorted(c["sparsity"] for c in sweep) == [0.1, 0.3, 0.5, 0.7, 0.9]
    # (b) four scores x two scopes at 0.5 on ce
    grid = {(c["score"], c["scope"]) for c in cells("obd", sparsity=0.5, at_eval=False)}
    assert grid == {(s, p) for s in ("obd", "actstd", "magnitude", "random") for p in ("row", "layer")}
    # (c) training-only vs training-and-evaluation at 0.5
    assert {c["at_eval"] for c in cells("obd", sparsity=0.5, score="obd", scope="row")} == {False, True}
    # (d) the unmasked baselines
    assert {c.method for c in one if not c.mask} == {"ce", "gce"}
    assert len(one) == 20 and len(cfgs) == 20 * 3 * 3
