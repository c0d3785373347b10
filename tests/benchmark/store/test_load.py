"""What a report loads from a store: runs of an older revision are stale (a finished run is never
recomputed, so after a change that moves a method's numbers the store holds both versions; ``ls``
marks the old one stale and reports leave it out, saying so), and what a filter selects."""
from __future__ import annotations

import json

from benchmark.cli import main
from benchmark.config import run_revisions, stale_reason
from benchmark.orchestration.publish import build
from benchmark.store import load
from benchmark.training import run
from methods import get_method


def test_a_bumped_revision_makes_earlier_runs_stale_in_ls_and_reports(tmp_path, tiny, monkeypatch, capsys):
    runs = tmp_path / "runs"
    old = run(tiny("gce", epochs=1), runs_dir=runs)
    ce = run(tiny("ce", epochs=1), runs_dir=runs)
    assert stale_reason(json.loads((runs / old["run_id"] / "config.json").read_text())) == ""
    # the code moves on: GCE's numbers change, its revision is bumped (as its card would say)
    monkeypatch.setattr(get_method("gce"), "revision", 2)
    assert run_revisions("gce")["gce"] == 2 and run_revisions("gce+obd") == {"harness": 1, "gce": 2, "mask": 1}
    assert stale_reason(json.loads((runs / old["run_id"] / "config.json").read_text())) == "gce revision 1, now 2"
    new = run(tiny("gce", epochs=1), runs_dir=runs)
    assert new["run_id"] != old["run_id"]  # the revision enters the id: the old run is not reused

    assert main(["ls", "--runs", str(runs), "--json"]) == 0
    status = {r["run_id"]: r["status"] for r in json.loads(capsys.readouterr().out)["runs"]}
    assert status == {old["run_id"]: "stale", new["run_id"]: "finished", ce["run_id"]: "finished"}
    assert main(["ls", "--runs", str(runs)]) == 0
    assert "gce revision 1, now 2" in capsys.readouterr().out

    df, selected = load(runs)
    assert set(df.run_id) == set(selected) == {new["run_id"], ce["run_id"]}
    assert df.attrs["stale"] == {old["run_id"]: "gce revision 1, now 2"}
    df, _ = load(runs, filters={"method": ["ce"]})
    assert df.attrs["stale"] == {}  # the stale run is not one the selection shows
    df, _ = load(runs, include_stale=True)
    assert old["run_id"] in set(df.run_id)

    index = build(runs, tmp_path / "report")
    html = index.read_text()
    assert "left out as stale" in html and old["run_id"] in html and "runner.py verify" in html


def test_a_method_filter_matches_the_rows_its_settings_label(tmp_path, tiny):
    """``--filter method=obd`` keeps obd run at a tuned sparsity, labelled obd[sparsity=0.3]."""
    runs = tmp_path / "runs"
    run(tiny("obd", epochs=1, **{"mask.sparsity": 0.3}), runs_dir=runs)
    run(tiny("ce", epochs=1), runs_dir=runs)
    df, _ = load(runs, filters={"method": ["obd"]})
    assert set(df.method) == {"obd[sparsity=0.3]"}
    df, _ = load(runs, filters={"method": ["obd[sparsity=0.3]", "ce"]})
    assert set(df.method) == {"obd[sparsity=0.3]", "ce"}
    df, _ = load(runs, filters={"method": ["ob"]})
    assert df.empty


def test_runs_on_tuning_seeds_stay_out_of_tables_unless_asked(tmp_path, tiny, capsys):
    """A study's trials (seeds from TUNE_SEED_BASE) were kept for scoring well on noisy validation;
    averaged into a table they would carry that luck, so reports leave them out and say so."""
    from benchmark.config import TUNE_SEED_BASE
    runs = tmp_path / "runs"
    kept = run(tiny("ce", epochs=1), runs_dir=runs)
    trial = run(tiny("ce", epochs=1, seed=TUNE_SEED_BASE), runs_dir=runs)
    df, _ = load(runs)
    assert set(df.run_id) == {kept["run_id"]} and df.attrs["tuning"] == 1
    df, _ = load(runs, include_tuning=True)
    assert set(df.run_id) == {kept["run_id"], trial["run_id"]} and df.attrs["tuning"] == 0
    html = build(runs, tmp_path / "report").read_text()
    assert "left out as tuning runs" in html and "--include-tuning" in html
    assert main(["report", "--runs", str(runs), "--out", str(tmp_path / "r2"), "--include-tuning",
                 "--wandb", "disabled"]) == 0
    assert "left out as tuning runs" not in (tmp_path / "r2" / "index.html").read_text()
    only = tmp_path / "only"
    run(tiny("ce", epochs=1, seed=TUNE_SEED_BASE), runs_dir=only)
    assert main(["report", "--runs", str(only), "--wandb", "disabled"]) == 2
    assert "1 on tuning seeds are left out (--include-tuning)" in capsys.readouterr().err


def test_one_protocol_name_over_several_protocols_is_labelled_by_what_differs(tmp_path, tiny):
    """An ablation of the batch size runs the preset's protocol with another batch: its rows get
    "(batch_size=...)" so tables never mix the two, and --filter protocol=NAME still selects both."""
    runs = tmp_path / "runs"
    run(tiny("ce", epochs=1), runs_dir=runs)
    run(tiny("ce", epochs=1, batch_size=32), runs_dir=runs)
    df, _ = load(runs)
    assert set(df.protocol) == {"digits-cnn (batch_size=32)", "digits-cnn (batch_size=64)"}
    df, _ = load(runs, filters={"protocol": ["digits-cnn"]})
    assert set(df.protocol) == {"digits-cnn (batch_size=32)", "digits-cnn (batch_size=64)"}
    df, _ = load(runs, filters={"protocol": ["digits-cnn (batch_size=32)"]})
    assert set(df.protocol) == {"digits-cnn (batch_size=32)"}
    assert load(runs, filters={"protocol": ["digits"]})[0].empty


def test_protocol_labels_fall_back_to_the_id_where_nothing_recorded_differs():
    from benchmark.store import protocol_labels
    one = {"name": "p", "id": "a1", "epochs": 3}
    assert protocol_labels([one, one]) == {("p", "a1"): "p"}
    assert protocol_labels([one, {"name": "p", "id": "b2", "epochs": 3}]) == {("p", "a1"): "p-a1", ("p", "b2"): "p-b2"}
    assert protocol_labels([one, {"name": "p", "id": "b2", "epochs": 5}, {"name": "q", "id": "c3"}]) == \
        {("p", "a1"): "p (epochs=3)", ("p", "b2"): "p (epochs=5)", ("q", "c3"): "q"}
