import json
import math

import pandas as pd
import pytest

from benchmark.errors import TrainingDiverged
from benchmark.store import Store, atomic_write_json, load_frame
from benchmark.training import run, split_indices
from methods.ce import CE
from tests.conftest import tiny_config


def test_atomic_json_leaves_no_temporary_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1.0, "nan": math.nan})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.0, "nan": None}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_split_is_seeded_disjoint_and_sized():
    tr, va = split_indices(1000, 0, 0.1, seed=5)
    assert len(va) == 100 and len(tr) == 900 and not set(tr) & set(va)
    tr2, va2 = split_indices(1000, 0, 0.1, seed=5)
    assert (tr == tr2).all() and (va == va2).all()
    assert not (split_indices(1000, 0, 0.1, seed=6)[1] == va).all()
    tr3, va3 = split_indices(1000, 200, 0.0, seed=5)
    assert len(tr3) == 200 and len(va3) == 0


def test_finished_run_is_never_recomputed(tmp_path):
    cfg = tiny_config("ce", epochs=1)
    first = run(cfg, tmp_path)
    metrics = tmp_path / first["run_id"] / "metrics.csv"
    stamp = metrics.stat().st_mtime_ns
    second = run(tiny_config("ce", epochs=1), tmp_path)
    assert second["cached"] and second["test/acc_last"] == first["test/acc_last"]
    assert metrics.stat().st_mtime_ns == stamp
    files = sorted(p.name for p in (tmp_path / first["run_id"]).iterdir() if not p.name.startswith("."))
    assert files == ["config.json", "meta.json", "metrics.csv", "result.json"]


def test_long_frame_schema(tmp_path):
    run(tiny_config("ce", epochs=2), tmp_path)
    run(tiny_config("gce", epochs=2), tmp_path)
    df = load_frame(Store(tmp_path))
    assert list(df.columns) == ["run_id", "method", "dataset", "model", "noise", "rate", "noise_label",
                                "seed", "protocol", "epoch", "metric", "value"]
    assert set(df.method) == {"ce", "gce"} and set(df.noise_label) == {"sym-40%"}
    final = df[df.epoch.isna()]
    for m in ("test/acc_last", "test/acc_best", "test/acc_at_best_val", "noise/actual_rate"):
        assert (final.metric == m).sum() == 2
    per_epoch = df[df.epoch.notna() & (df.metric == "test/acc")]
    assert sorted(per_epoch.epoch.unique()) == [1, 2]
    assert df.epoch.dtype == pd.Int64Dtype()


def test_nan_loss_is_a_failure_not_a_result(tmp_path, monkeypatch):
    monkeypatch.setattr(CE, "train_epoch", lambda self, epoch: {"train/loss": math.nan})
    with pytest.raises(TrainingDiverged, match="non-finite train/loss"):
        run(tiny_config("ce", epochs=2), tmp_path)
    store = Store(tmp_path)
    (rid,) = store.run_ids()
    assert store.status(rid) == "failed" and store.result(rid) is None
    assert not (tmp_path / rid / "checkpoint.pt").exists()
    assert load_frame(store).empty


def test_test_subset_is_fixed_and_part_of_the_protocol(tmp_path):
    a = run(tiny_config("ce", epochs=1, test_subset=100), tmp_path)
    b = run(tiny_config("ce", epochs=1), tmp_path)
    assert a["run_id"] != b["run_id"]
    cfg = json.loads((tmp_path / a["run_id"] / "config.json").read_text())
    assert cfg["protocol"]["test_subset"] == 100
    assert round(a["test/acc_last"] * 100, 6) == round(a["test/acc_last"] * 100)  # k / 100


def test_method_label_names_non_default_mask_settings():
    from benchmark.store import method_label
    assert method_label({"method": "gce", "hp_resolved": {"q": 0.7}}) == "gce"
    base = {"sparsity": 0.5, "score": "obd", "scope": "row"}
    assert method_label({"method": "obd", "hp_resolved": {"base": {}, "mask": base}}) == "obd"
    swept = {**base, "sparsity": 0.1, "scope": "layer"}
    assert method_label({"method": "obd", "hp_resolved": {"mask": swept}}) == "obd[scope=layer,sparsity=0.1]"
    kan = {"method": "obd", "classifier": "kan", "hp_resolved": {"mask": swept}}
    assert method_label(kan) == "obd[classifier=kan,scope=layer,sparsity=0.1]"
    assert method_label({"method": "ce", "classifier": "kan", "hp_resolved": {}}) == "ce[classifier=kan]"
    assert method_label({"method": "ce", "classifier": "linear", "hp_resolved": {}}) == "ce"


class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_checkpoint_never_runs_and_is_set_aside(tmp_path):
    import warnings

    import torch
    store = Store(tmp_path / "runs")
    rid = "0123456789abcdef"
    store.run_dir(rid).mkdir(parents=True)
    marker = tmp_path / "PWNED"
    torch.save({"epoch": 1, "method": _Planted(marker), "rows": []}, store.run_dir(rid) / "checkpoint.pt")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert store.load_checkpoint(rid) is None
    assert not marker.exists()
    assert (store.run_dir(rid) / "checkpoint.pt.bad").is_file()
    assert any("cannot be used" in str(x.message) for x in w)


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    import warnings
    store = Store(tmp_path / "runs")
    rid = "0123456789abcdef"
    store.run_dir(rid).mkdir(parents=True)
    store.save_checkpoint(rid, {"epoch": 1, "rows": [{"epoch": 1}], "method": {}})
    store.save_checkpoint(rid, {"epoch": 2, "rows": [{"epoch": 1}, {"epoch": 2}], "method": {}})
    p = store.run_dir(rid) / "checkpoint.pt"
    p.write_bytes(p.read_bytes()[:100])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = store.load_checkpoint(rid)
    assert state["epoch"] == 1  # the last good state, not a blocked run


def test_runs_with_different_hyperparameters_are_separate_rows_never_pooled(tmp_path):
    """As after `tune --param hp.q=...`: one method under three q values is three table rows."""
    from benchmark.config import build_config
    from benchmark.training import run
    from reports import stats
    runs = tmp_path / "runs"
    for q, seeds in ((0.3, (0, 1)), (0.7, (0, 1, 2)), (0.59, (0,))):
        for s in seeds:
            run(build_config({"dataset": "digits", "method": "gce", "epochs": 1, "subset": 200, "seed": s,
                              "hp": {"q": q}}), runs, wandb="disabled")
    run(build_config({"dataset": "digits", "method": "ce", "epochs": 1, "subset": 200}), runs, wandb="disabled")
    df = load_frame(Store(runs))
    s = stats.cell_summary(df, "test/acc_last").set_index("method")
    assert set(s.index) == {"ce", "gce (q=0.3)", "gce (q=0.7)", "gce (q=0.59)"}
    assert s.loc["gce (q=0.7)", "n_seeds"] == 3 and s.loc["gce (q=0.3)", "n_seeds"] == 2
    assert s.loc["ce", "n_seeds"] == 1  # a method with one setting keeps its plain name
