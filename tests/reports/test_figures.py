"""Figures: files written, palette stable, skipped when there is no data."""
import matplotlib.image as mpimg
import numpy as np
import pytest

from reports import figures
from tests.reports.synth import make_store


@pytest.fixture(scope="module")
def small():
    return make_store(methods=("ce", "gce+obd", "coteaching"),
                      settings=(("sym", 0.2, ""), ("sym", 0.5, ""), ("human", None, "worst")),
                      seeds=(0, 1), epochs=3)


def test_palette_is_keyed_by_sorted_names():
    a = figures.method_palette(["gce", "ce", "dividemix"])
    b = figures.method_palette(["dividemix", "gce", "ce", "ce"])
    assert a == b and len(set(a.values())) == 3
    many = figures.method_palette([f"m{i}" for i in range(14)])
    assert len(set(many.values())) == 14


def _assert_pairs(paths):
    assert paths and len(paths) % 2 == 0
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
    pngs = [p for p in paths if p.suffix == ".png"]
    assert {p.with_suffix(".svg") for p in pngs} == {p for p in paths if p.suffix == ".svg"}
    img = mpimg.imread(pngs[0])
    assert img.shape[0] > 200 and np.var(img[..., :3]) > 1e-3  # not blank


def test_every_figure_draws(small, tmp_path):
    df, runs = small
    pal = figures.method_palette(df["method"].unique())
    _assert_pairs(figures.accuracy_vs_rate(df, tmp_path, palette=pal))
    _assert_pairs(figures.test_accuracy_curves(df, tmp_path, palette=pal))
    _assert_pairs(figures.memorisation_curves(df, tmp_path, palette=pal))
    _assert_pairs(figures.selection_curves(df, tmp_path, palette=pal))
    _assert_pairs(figures.mask_sparsity(df, runs, tmp_path, palette=pal))
    _assert_pairs(figures.compute_cost(df, runs, tmp_path, palette=pal))
    _assert_pairs(figures.gradient_error(df, tmp_path, palette=pal))


def test_transition_matrices_one_per_artifact(small, tmp_path):
    _, runs = small
    paths = figures.transition_matrices(runs, tmp_path)
    # sym-20% and sym-50% differ per seed (2 + 2); the human label set is one artifact for all seeds
    assert len(paths) == 2 * 5
    assert len([p for p in paths if "human-worst" in p.name]) == 2


def test_figures_without_data_are_skipped(tmp_path):
    df, runs = make_store(methods=("ce", "gce"), settings=(("sym", 0.2, ""),), seeds=(0,), epochs=2)
    assert figures.accuracy_vs_rate(df, tmp_path) == []          # one nominal rate: no curve
    assert figures.selection_curves(df, tmp_path) == []          # no select/* metric
    assert figures.mask_sparsity(df, runs, tmp_path) == []       # no mask in any config
    assert figures.gradient_error(df, tmp_path) == []            # no masked method
    no_memo = df[~df["metric"].str.startswith("memo/")]
    assert figures.memorisation_curves(no_memo, tmp_path) == []
    for r in runs.values():
        del r["result"]["noise"]["transition"]
    assert figures.transition_matrices(runs, tmp_path) == []
    assert figures.test_accuracy_curves(df.iloc[0:0], tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_odd_names_are_safe(tmp_path):
    df, runs = make_store(methods=("ce", "a$b$_{x}"), settings=(("sym", 0.2, ""),), seeds=(0,),
                          epochs=2, protocol="weird/../proto name")
    paths = figures.test_accuracy_curves(df, tmp_path)
    assert paths and all(p.parent == tmp_path for p in paths)
    assert figures.slug("weird/../proto name") != figures.slug("weird/.._proto name")


def test_compute_uses_device_hours(tmp_path):
    df, runs = make_store(methods=("ce",), settings=(("sym", 0.2, ""),), seeds=(0, 1), epochs=2,
                          device="NVIDIA H100")
    assert figures.device_label("cpu") == "CPU"
    assert figures.device_label("NVIDIA H100") == "GPU (NVIDIA H100)"
    paths = figures.compute_cost(df, runs, tmp_path)
    assert any(p.suffix == ".svg" and "GPU hours" in p.read_text() for p in paths)


def test_gradient_error_methods_prefers_default_mask_cells():
    labels = ["ce", "gce", "obd", "obd[sparsity=0.1]", "gce+obd", "coteaching"]
    assert figures.gradient_error_methods(labels) == ["ce", "obd", "gce", "gce+obd"]
    only_sweep = ["ce", "obd[sparsity=0.1]", "obd[sparsity=0.9]", "gce"]
    assert figures.gradient_error_methods(only_sweep) == only_sweep[:3]
