"""Smoke tests of the real CLI (subprocess), on scikit-learn's digits with a tiny budget."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from methods.ce import CE
from tests.conftest import ROOT


def cli(*args, check=True):
    p = subprocess.run([sys.executable, "runner.py", *map(str, args)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\n{p.stderr}")
    return p


def test_run_json_then_cached(tmp_path):
    args = ["run", "--dataset", "digits", "--method", "gce", "--noise", "sym", "--rate", "0.4",
            "--epochs", "2", "--subset", "300", "--seed", "0", "--runs", tmp_path, "--json"]
    p = cli(*args)
    res = json.loads(p.stdout)  # exactly one JSON object on stdout
    for k in ("test/acc_last", "test/acc_best", "test/acc_at_best_val", "noise/actual_rate", "run_dir"):
        assert k in res
    assert Path(res["run_dir"], "result.json").is_file() and res["test/acc_best_is_oracle"]
    again = json.loads(cli(*args).stdout)
    assert again["cached"] and again["test/acc_last"] == res["test/acc_last"]
    listing = json.loads(cli("ls", "--runs", tmp_path, "--json").stdout)
    assert [r["status"] for r in listing["runs"]] == ["finished"]


def test_noise_command_is_deterministic(tmp_path):
    args = ["noise", "--dataset", "digits", "--noise", "sym_incl", "--rate", "0.5", "--seed", "0",
            "--runs", tmp_path, "--json"]
    a, b = json.loads(cli(*args).stdout), json.loads(cli(*args).stdout)
    assert a["sha256"] == b["sha256"]
    assert a["actual_rate"] == pytest.approx(0.45, abs=0.05)
    c = json.loads(cli(*args[:-3], "--seed", "1", "--runs", tmp_path, "--json").stdout)
    assert c["sha256"] != a["sha256"]


def test_exported_noise_file_round_trips(tmp_path):
    f = tmp_path / "n.npz"
    a = json.loads(cli("noise", "--dataset", "digits", "--noise", "pairflip", "--rate", "0.3",
                       "--export", f, "--runs", tmp_path / "r1", "--json").stdout)
    res = json.loads(cli("run", "--dataset", "digits", "--noise-file", f, "--epochs", "1", "--subset",
                         "200", "--runs", tmp_path / "r2", "--json").stdout)
    cfg = json.loads(Path(res["run_dir"], "config.json").read_text())
    assert cfg["noise_artifact"]["sha256"] == a["sha256"] and cfg["noise"]["kind"] == "pairflip"


@pytest.mark.parametrize("args,needle", [
    (["run", "--method", "nope"], "Valid: anl_ce, anl_ce+obd, bootstrap"),
    (["run", "--dataset", "mnist2"], "Valid:"),
    (["run", "--model", "vgg"], "Valid:"),
    (["run", "--dataset", "digits", "--rate", "1.2"], "[0, 1)"),
    (["run", "--dataset", "digits", "--noise", "pairflip", "--rate", "0.5"], "--allow-unlearnable"),
    (["run", "--dataset", "digits", "--noise", "human", "--human-set", "aggre"], "human"),
    (["run", "--dataset", "digits", "--set", "optim.lrr=1"], "lr"),
    (["run", "--dataset", "digits", "--method", "gce", "--set", "hp.p=1"], "Valid: q"),
    (["run", "--dataset", "digits", "--method", "obd", "--set", "hp.warmup=1"], "obd"),
    (["run", "--dataset", "digits", "--method", "gce", "--set", "mask.sparsity=0.5"], "obd"),
    (["grid", "nosuchpreset"], "quick"),
])
def test_usage_errors_exit_2_with_valid_choices(args, needle, tmp_path):
    p = cli(*args, "--runs", tmp_path, check=False)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr
    if "--noise" not in args:  # settings refused before a progress bar starts (noise rules need the data)
        assert "epochs:" not in p.stderr
    assert not any(tmp_path.glob("*/result.json"))


def test_grid_file_dry_run_then_skip(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('seeds = [0, 1]\nmethods = ["ce", "gce"]\n[base]\ndataset = "digits"\nepochs = 1\n'
                    'subset = 200\n[[noise]]\nkind = "sym"\nrate = 0.2\n')
    p = json.loads(cli("grid", grid, "--runs", tmp_path / "r", "--dry-run", "--json").stdout)
    assert p["total"] == 4 and p["pending"] == 4
    cli("grid", grid, "--runs", tmp_path / "r")
    p = json.loads(cli("grid", grid, "--runs", tmp_path / "r", "--dry-run", "--json").stdout)
    assert p["pending"] == 0


def test_diverged_run_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(CE, "train_epoch", lambda self, epoch: {"train/loss": math.inf})
    rc = main(["run", "--dataset", "digits", "--epochs", "1", "--subset", "200", "--runs", str(tmp_path)])
    assert rc == 1 and "non-finite" in capsys.readouterr().err


def test_grid_ends_with_a_report_that_renders(tmp_path):
    """The done-when of the reports issue on a real (tiny) grid: every table format, the figures,
    and a page that loads in headless Chromium with every image loaded and no console error."""
    from tests.reports.browser import find_chromium, render
    grid = tmp_path / "g.toml"
    grid.write_text('seeds = [0, 1]\nmethods = ["ce", "gce"]\n[base]\ndataset = "digits"\nepochs = 3\n'
                    'subset = 400\nprotocol_name = "tiny"\n[[noise]]\nkind = "sym"\nrate = 0.2\n'
                    '[[noise]]\nkind = "pairflip"\nrate = 0.4\n')
    p = cli("grid", grid, "--runs", tmp_path / "r", "--json")
    index = Path(json.loads(p.stdout)["report"])
    assert index.is_file()
    for kind in ("selected", "last", "oracle"):
        for ext in ("md", "tex", "html", "csv"):
            assert (index.parent / "tables" / f"{kind}_tiny.{ext}").is_file(), (kind, ext)
    assert len(list((index.parent / "figures").glob("*.png"))) >= 4
    exe = find_chromium()
    if exe is None:
        pytest.skip("chromium not installed")
    page = render(exe, index, screenshot=tmp_path / "shot.png")
    assert not page.errors, page.errors
    assert page.images and all(img["complete"] and img["naturalWidth"] > 0 for img in page.images)
    assert "ce" in page.dom and "gce" in page.dom


def test_report_command_filters_and_refuses_empty(tmp_path):
    cli("run", "--dataset", "digits", "--method", "ce", "--epochs", "1", "--subset", "200", "--runs", tmp_path)
    p = cli("report", "--runs", tmp_path, "--filter", "method=ce", "--json")
    assert Path(json.loads(p.stdout)["index"]).is_file()
    p = cli("report", "--runs", tmp_path, "--filter", "method=gce", check=False)
    assert p.returncode == 2 and "no finished runs" in p.stderr
    p = cli("report", "--runs", tmp_path, "--filter", "colour=red", check=False)
    assert p.returncode == 2 and "method" in p.stderr


def test_bench_reports_epoch_times_and_loader_speedup(tmp_path):
    mine = tmp_path / "b"
    (mine / "keep").mkdir(parents=True)
    (mine / "keep" / "result.json").write_text("{}")
    p = cli("bench", "--dataset", "digits", "--model", "cnn", "--methods", "ce,gce,coteaching", "--subset",
            "300", "--epochs", "3", "--loader-workers", "0", "--tmp", mine, "--json")
    out = json.loads(p.stdout)
    assert [r["method"] for r in out["methods"]] == ["ce", "gce", "coteaching"]
    assert all(r["epoch_s_median"] > 0 and r["samples_per_s"] > 0 for r in out["methods"])
    ce, gce, ct = out["methods"]
    # FLOPs of the real training epoch: GCE is CE's network and passes; Co-teaching trains two
    # networks on one shared batch, one forward and backward each (its official step): 2 x CE
    assert ce["flops_per_epoch"] > 0 and gce["flops_per_epoch"] == ce["flops_per_epoch"]
    assert 1.95 < ct["flop_ratio"] < 2.05 and ce["time_ratio"] == ce["flop_ratio"] == 1.0
    assert 0 < out["bare"]["ce_speed_vs_bare"] and 0 <= ce["bookkeeping_share"] < 1
    assert out["loader"]["ours_s"] > 0 and out["loader"]["per_sample_loader_s"] > 0
    # timing runs are thrown away, and nothing bench did not create is touched
    assert sorted(p.name for p in mine.iterdir()) == ["keep"]
    assert (mine / "keep" / "result.json").read_text() == "{}"


def test_bench_rounds_take_medians_and_report_the_spread(tmp_path):
    p = cli("bench", "--dataset", "digits", "--model", "mlp", "--methods", "gce,ce", "--subset", "200",
            "--epochs", "3", "--rounds", "2", "--no-loader", "--tmp", tmp_path, "--json")
    out = json.loads(p.stdout)
    assert [r["method"] for r in out["methods"]] == ["gce", "ce"]  # the order asked for, not the last round's
    for r in out["methods"]:
        assert r["rounds"] == 2 and r["spread"] >= 0
    assert out["methods"][1]["time_ratio"] == 1.0 and out["bare"]["ce_speed_vs_bare"] > 0
    assert list(tmp_path.iterdir()) == []
    bad = cli("bench", "--methods", "ce", "--rounds", "0", check=False)
    assert bad.returncode == 2 and "--rounds" in bad.stderr


def test_ls_says_what_each_incomplete_run_is_and_prune_removes_only_abandoned(tmp_path):
    from benchmark.config import build_config
    from benchmark.store import Store
    from benchmark.training import run
    runs = tmp_path / "runs"
    base = {"dataset": "digits", "epochs": 3, "subset": 200}
    done = run(build_config(base), runs, wandb="disabled")["run_id"]
    stopped = run(build_config({**base, "seed": 1}), runs, stop_after=1, wandb="disabled")["run_id"]
    crashed = run(build_config({**base, "seed": 2}), runs, stop_after=1, wandb="disabled")["run_id"]
    (runs / crashed / "stopped.json").unlink()  # as a killed process leaves it
    abandoned = "00000000deadbeef"
    (runs / abandoned).mkdir()
    (runs / abandoned / "config.json").write_text(json.dumps({"method": "gce", "seed": 3}))
    (runs / abandoned / ".config.json.x.tmp").write_text("half")
    foreign = "11111111deadbeef"  # holds a file the suite never writes: never removed
    (runs / foreign).mkdir()
    (runs / foreign / "config.json").write_text("{}")
    (runs / foreign / "notes.txt").write_text("mine")
    failed = "22222222deadbeef"
    (runs / failed).mkdir()
    (runs / failed / "config.json").write_text(json.dumps({"method": "ce", "seed": 4}))
    (runs / failed / "failure.json").write_text(json.dumps({"reason": "non-finite train/loss at epoch 2"}))
    rows = {r["run_id"]: r for r in json.loads(cli("ls", "--runs", runs, "--json").stdout)["runs"]}
    assert rows[done]["status"] == "finished"
    assert rows[stopped]["status"] == "stopped" and "resumable" in rows[stopped]["detail"]
    assert rows[crashed]["status"] == "resumable"
    assert rows[abandoned]["status"] == rows[foreign]["status"] == "abandoned"
    assert rows[failed]["status"] == "failed" and "non-finite" in rows[failed]["detail"]
    text = cli("ls", "--runs", runs).stdout
    assert "ls --prune" in text and "non-finite" in text
    out = json.loads(cli("ls", "--runs", runs, "--prune", "--json").stdout)
    assert out["pruned"] == [abandoned]
    assert not (runs / abandoned).exists() and (runs / foreign / "notes.txt").is_file()
    assert set(Store(runs).run_ids()) == {done, stopped, crashed, foreign, failed}


def test_grid_with_workers_prints_json(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('seeds = [0]\nmethods = ["ce", "gce"]\n[base]\ndataset = "digits"\nepochs = 1\n'
                 'subset = 200\n[[noise]]\nkind = "sym"\nrate = 0.2\n')
    p = cli("grid", f, "--workers", "2", "--runs", tmp_path / "runs", "--json", "--no-report")
    out = json.loads(p.stdout)  # exactly one JSON object
    assert out["runs"] == 2 and out["failed"] == []


def test_grid_dry_run_lists_cells_and_settings_without_data(tmp_path):
    """CIFAR-10 is not on this machine: the dry run needs none, lists every cell with its settings
    and the run id a real run will have, and writes nothing."""
    runs = tmp_path / "runs"
    p = cli("grid", "losses-cifar10", "--dry-run", "--json", "--runs", runs, "--data-dir", tmp_path / "nothing")
    out = json.loads(p.stdout)
    assert out["total"] == out["pending"] == 324
    anl = next(r for r in out["runs"] if r["method"] == "anl_ce" and r["noise"] == "sym-80%-exact")
    assert anl["hp"]["delta"] == 5e-5 and anl["protocol"]["grad_clip"] == 5.0
    assert anl["protocol"]["model"] == "cnn8" and anl["protocol"]["epochs"] == 120
    assert not runs.exists()
    text = cli("grid", "losses-cifar100", "--dry-run", "--runs", runs).stdout
    # the shared protocol once, then each cell's settings that differ from the method's defaults
    assert "grad_clip=5.0" in text.splitlines()[0] and "augment=crop+flip+rotate20" in text.splitlines()[0]
    gce80 = next(line for line in text.splitlines() if " gce " in line and "sym-80%-exact" in line)
    assert gce80.rstrip().endswith("q=0.9")


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path):
    """runner.py ... | head: the pipe closes while the command still writes; Python's default is a
    BrokenPipeError traceback. The command ends quietly instead (exit 1, nothing on stderr but its own log lines)."""
    p = subprocess.Popen([sys.executable, "runner.py", "grid", "obd-verdict", "--dry-run", "--runs", str(tmp_path),
                          "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # gone before the command has written anything (it takes a second to plan)
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 1, err
    assert not any(w in err for w in ("Traceback", "BrokenPipe", "Exception ignored", "error:")), err
