"""benchmark/store/atomic.py: strict JSON, and its documented twin in reports/site.py.

reports/ imports nothing of benchmark/, so the report site keeps its own ``_json_safe``; the two
copies are checked together here on what a run record holds, so they cannot drift apart.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmark.store import atomic_write_json, json_safe, read_json
from reports.site import _json_safe as report_json_safe

RECORDS = [
    {"test/acc_last": 0.81, "test/acc_at_best_val": math.nan, "mem/peak_mb": math.inf, "epochs": 3},
    {"noise": {"label": "sym 40%", "transition": [[0.6, 0.4], [0.4, 0.6]], "sha256": "ab"},
     "selected_epoch": None, "finished": True},
    {"seed": np.int64(3), "val": np.float32(0.5), "nan": np.float64("nan"), "rows": [1.5, -math.inf]},
    {"nested": [{"a": [math.nan, 2]}, "text"], "empty": {}},
]


@pytest.mark.parametrize("record", RECORDS)
def test_the_two_json_safe_copies_agree_on_run_records(record):
    ours = json_safe(record)
    assert ours == report_json_safe(record)
    json.dumps(ours, allow_nan=False)  # strict JSON


def test_atomic_json_is_strict_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "run" / "result.json"
    atomic_write_json(path, {"x": math.nan, "y": [np.float64(1.0)]})
    assert read_json(path) == {"x": None, "y": [1.0]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]
