"""The W&B mirror, read back with wandb's own reader (`wandb leet inspect`)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.store import Store, resolve_mode, scrub
from benchmark.store.mirror import offline_run_dirs
from benchmark.training import run
from tests.conftest import ROOT, tiny_config

WANDB = Path(sys.executable).with_name("wandb")


def inspect(run_dir: Path, summary: bool = False):
    args = [str(WANDB), "leet", "inspect", "--json"] + (["--summary"] if summary else []) + [str(run_dir)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out) if summary else [json.loads(line) for line in out.splitlines() if line.strip()]


def test_offline_run_matches_the_store(tmp_path):
    cfg = tiny_config("gce", epochs=3, protocol_name="postgresql://bob:hunter2@db.example/x")
    res = run(cfg, tmp_path, wandb="offline")
    (wdir,) = offline_run_dirs(tmp_path)
    records = inspect(wdir)
    history = {r["history"]["step"]["num"]: r["history"]["item"] for r in records if r["type"] == "history"}
    rows = Store(tmp_path).read_metrics(res["run_id"])
    assert sorted(history) == [1, 2, 3]
    for row in rows:
        logged = history[int(row["epoch"])]
        for k, v in row.items():
            assert logged[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k
    (meta,) = [r["run"] for r in records if r["type"] == "run"]
    assert meta["job_type"] == "gce" and meta["display_name"] == res["run_id"]
    assert meta["tags"] == ["digits", "sym-40%", "gce"] and meta["run_group"].startswith("gce|digits|sym-40%")
    summ = inspect(wdir, summary=True)
    stored = json.loads((tmp_path / res["run_id"] / "result.json").read_text())
    for k in ("test/acc_last", "test/acc_best", "test/acc_at_best_val", "noise/actual_rate"):
        assert summ["summary"][k] == pytest.approx(stored[k])
    assert summ["state"] == "finished"
    # no secret in anything W&B wrote
    for f in wdir.rglob("*"):
        if f.is_file():
            assert b"hunter2" not in f.read_bytes(), f


def test_resumed_run_mirrors_every_epoch(tmp_path):
    run(tiny_config("ce", epochs=3), tmp_path, stop_after=1, wandb="offline")
    res = run(tiny_config("ce", epochs=3), tmp_path, wandb="offline")
    # one W&B run per benchmark run: the stopped attempt's offline copy is gone
    (last,) = offline_run_dirs(tmp_path)
    steps = [r["history"]["step"]["num"] for r in inspect(last) if r["type"] == "history"]
    assert steps == [1, 2, 3] and res["finished"]


def test_a_killed_runs_truncated_wandb_copy_is_removed_on_the_next_run(tmp_path):
    import os
    import signal
    root = ROOT
    cmd = [sys.executable, "runner.py", "run", "--dataset", "digits", "--epochs", "3", "--subset", "300",
           "--runs", str(tmp_path), "--wandb", "offline", "--set", "checkpoint_s=0"]
    env = {**os.environ, "WANDB_MODE": "offline", "NLB_KILL_AT": "checkpoint:2"}
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL
    (stale,) = offline_run_dirs(tmp_path)
    env.pop("NLB_KILL_AT")
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    (kept,) = offline_run_dirs(tmp_path)  # the killed attempt's copy would upload a partial run
    assert kept != stale and not stale.exists()
    steps = [r["history"]["step"]["num"] for r in inspect(kept) if r["type"] == "history"]
    assert steps == [1, 2, 3]


def test_wandb_failure_is_a_warning_not_a_lost_run(tmp_path, monkeypatch):
    import wandb
    def boom(*a, **k):
        raise RuntimeError("service unavailable")
    monkeypatch.setattr(wandb, "init", boom)
    with pytest.warns(RuntimeWarning, match="W&B init failed"):
        res = run(tiny_config("ce", epochs=1), tmp_path, wandb="offline")
    assert Store(tmp_path).is_finished(res["run_id"])


def test_scrub_and_mode():
    assert scrub({"storage": "postgresql://u:pw@h:5432/db", "api_key": "x", "n": [1, "a"]}) == \
        {"storage": "postgresql://u:<redacted>@h:5432/db", "api_key": "<redacted>", "n": [1, "a"]}
    assert resolve_mode(None) == "disabled"  # the test session's WANDB_MODE
    assert resolve_mode("offline") == "offline"


def test_report_run_logs_tables_and_figures(tmp_path):
    from benchmark.cli import main
    run(tiny_config("ce", epochs=2), tmp_path)
    run(tiny_config("gce", epochs=2), tmp_path)
    assert main(["report", "--runs", str(tmp_path), "--wandb", "offline"]) == 0
    (wdir,) = offline_run_dirs(tmp_path)
    keys = set()
    for r in inspect(wdir):
        if r["type"] == "history":
            keys |= set(r["history"]["item"])
    assert any(k.startswith("table/selected_") for k in keys)
    assert any(k.startswith("figure/") for k in keys)


def test_interrupted_run_is_closed_in_the_mirror(tmp_path):
    class Stop(Exception):
        pass

    def stop(row):
        raise Stop

    with pytest.raises(Stop):
        run(tiny_config("ce", epochs=3), tmp_path, wandb="offline", progress=stop)
    (wdir,) = offline_run_dirs(tmp_path)
    summ = inspect(wdir, summary=True)
    assert summ["summary"]["state"] == "interrupted" and summ["summary"]["stopped_epoch"] == 1
    assert not list(tmp_path.glob("*/result.json"))
