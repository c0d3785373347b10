"""runner.py verify: retraining finished runs from their config.json re-derives every recorded
figure bit for bit on the same numerics; a hand-edited store is caught, naming the figure."""
from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.orchestration.rederive import TOLERANCE, compare
from benchmark.training import run
from methods import get_method


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from benchmark.training.conformance import tiny_config
    runs = tmp_path_factory.mktemp("verify") / "runs"
    ids = [run(tiny_config(m, epochs=2), runs_dir=runs)["run_id"] for m in ("ce", "gce+obd")]
    return runs, ids


def _verify(capsys, *args) -> tuple[int, dict]:
    rc = main(["verify", *map(str, args), "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_an_untouched_store_re_derives_bit_for_bit(store, capsys):
    runs, ids = store
    rc, out = _verify(capsys, "--runs", runs, "--sample", "5")
    assert rc == 0 and out["ok"] and sorted(r["run_id"] for r in out["runs"]) == sorted(ids)
    assert all(r["exact"] and not r["differences"] for r in out["runs"])
    assert main(["verify", "--runs", str(runs), ids[0]]) == 0
    assert "compared bit for bit" in capsys.readouterr().out


def test_a_hand_edited_metric_is_named(store, capsys, tmp_path):
    import shutil
    runs, (rid, _) = store
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    csv = copy / rid / "metrics.csv"
    lines = csv.read_text().splitlines()
    head = lines[0].split(",")
    col = head.index("test/acc")
    row = lines[2].split(",")
    row[col] = repr(float(row[col]) + 0.01)  # epoch 2's test accuracy, one point higher
    csv.write_text("\n".join([*lines[:2], ",".join(row), *lines[3:]]) + "\n")
    rc, out = _verify(capsys, "--runs", copy, rid)
    assert rc == 1 and not out["ok"]
    (diff,) = [d for d in out["runs"][0]["differences"] if d.startswith("metrics.csv")]
    assert diff.startswith("metrics.csv epoch 2 test/acc") and "stored vs" in diff
    assert main(["verify", "--runs", str(copy), rid]) == 1
    assert "DIFF" in capsys.readouterr().out


def test_a_result_edited_consistently_is_caught_by_retraining(store, capsys, tmp_path):
    import shutil
    runs, (_, rid) = store
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    res = json.loads((copy / rid / "result.json").read_text())
    res["test/acc_last"] = 0.99
    (copy / rid / "result.json").write_text(json.dumps(res))
    rc, out = _verify(capsys, "--runs", copy, rid)
    assert rc == 1 and any(d.startswith("result.json test/acc_last 0.99 stored") for d in out["runs"][0]["differences"])


def test_other_kernels_compare_within_the_tolerance_and_say_so(store, capsys, tmp_path):
    import shutil
    runs, (rid, _) = store
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    cfg = json.loads((copy / rid / "config.json").read_text())
    cfg["numerics"]["cpu"] = {**cfg["numerics"]["cpu"], "capability": "AVX2"}  # made on an AVX2 machine
    (copy / rid / "config.json").write_text(json.dumps(cfg))
    rc, out = _verify(capsys, "--runs", copy, rid)
    (v,) = out["runs"]
    assert rc == 0 and not v["exact"] and "cpu:" in v["why_not_exact"] and "AVX2" in v["why_not_exact"]
    # within the tolerance, not bit for bit: a last-digit difference passes, a real one does not
    row = {"epoch": 1.0, "test/acc": 0.5}
    assert compare({}, [row], {}, [{**row, "test/acc": 0.5 + TOLERANCE / 2}], exact=False) == []
    assert compare({}, [row], {}, [{**row, "test/acc": 0.5 + TOLERANCE / 2}], exact=True) != []
    assert compare({}, [row], {}, [{**row, "test/acc": 0.5 + 10 * TOLERANCE}], exact=False) != []


def test_refusals_name_the_problem(store, capsys, monkeypatch):
    runs, (rid, other) = store
    assert main(["verify", "--runs", str(runs), "0123456789abcdef"]) == 2
    assert "no run folder" in capsys.readouterr().err
    assert main(["verify", "--runs", str(runs), rid, "--sample", "2"]) == 2
    assert main(["verify", "--runs", str(runs), "--sample", "0"]) == 2
    assert "1 to 10000" in capsys.readouterr().err
    monkeypatch.setattr(get_method("ce"), "revision", 2)
    assert main(["verify", "--runs", str(runs), rid]) == 2
    assert "older revision (ce revision 1, now 2)" in capsys.readouterr().err
    rc, out = _verify(capsys, "--runs", runs)  # the sample skips stale runs
    assert rc == 0 and [r["run_id"] for r in out["runs"]] == [other]
