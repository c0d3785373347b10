"""Plugins: a method from outside the repository treated like a built-in one (run, X+obd, grids
with worker processes, tuning studies, reports), from an installed package's entry point and from
a file; refused when it takes a built-in's name; never imported by report, ls or merge; and the
conformance check that tells its author whether it meets the contract."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "tests" / "plugins"
TINY = ["--dataset", "digits", "--model", "cnn", "--epochs", "1", "--subset", "300", "--noise", "sym",
        "--rate", "0.4", "--wandb", "disabled"]


def cli(*args, env=None, check=True, timeout=900):
    p = subprocess.run([sys.executable, "runner.py", *map(str, args)], cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout, env={**os.environ, "WANDB_MODE": "disabled", **(env or {})})
    if check and p.returncode != 0:
        raise AssertionError(f"runner.py {' '.join(map(str, args))} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example plugin installed the way a user installs it (pip, here into a folder on
    PYTHONPATH instead of the suite's environment, so the test leaves that environment alone)."""
    tmp = tmp_path_factory.mktemp("site")
    src = tmp / "src"
    shutil.copytree(ROOT / "examples" / "taylor_ce", src)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(tmp / "lib"), str(src)], check=True, capture_output=True, timeout=300)
    return {"PYTHONPATH": str(tmp / "lib")}


def _grid(path: Path, methods: list[str], plugins: list[str] = ()) -> Path:
    path.write_text(f"seeds = [0, 1]\nmethods = {json.dumps(methods)}\n"
                    + (f"plugins = {json.dumps(list(plugins))}\n" if plugins else "")
                    + '[base]\ndataset = "digits"\nmodel = "cnn"\nepochs = 1\nsubset = 300\ndevice = "cpu"\n'
                      '[[noise]]\nkind = "sym"\nrate = 0.4\n')
    return path


def test_an_installed_plugin_is_a_method_like_any_other(installed, tmp_path):
    runs = tmp_path / "runs"
    r = json.loads(cli("run", "--method", "taylor_ce", *TINY, "--runs", runs, "--json", env=installed).stdout)
    assert r["finished"] and 0.0 <= r["test/acc_last"] <= 1.0
    meta = json.loads((runs / r["run_id"] / "meta.json").read_text())
    (p,) = meta["plugins"]
    assert p["module"] == "nlb_taylor_ce" and p["kind"] == "entry point taylor_ce" and p["version"] == "0.1.0"
    assert p["registered"]["methods"] == ["taylor_ce"] and p["registered"]["masked_variants"] == ["taylor_ce+obd"]
    m = json.loads(cli("run", "--method", "taylor_ce+obd", *TINY, "--runs", runs, "--json", env=installed).stdout)
    assert m["finished"]
    # a grid with two worker processes: each child loads the plugins the study records
    g = json.loads(cli("grid", _grid(tmp_path / "g.toml", ["ce", "taylor_ce"]), "--runs", runs, "--workers", "2",
                       "--no-report", "--wandb", "disabled", "--json", env=installed).stdout)
    assert g["runs"] == 4 and g["trained"] == 3 and not g["failed"]  # taylor_ce seed 0 is the run above
    # a tuning study (its worker restores the plugin from the study's definition)
    t = json.loads(cli("tune", "--method", "taylor_ce", *TINY, "--trials", "2", "--seeds", "1",
                       "--runs", runs, "--study", "tt", "--json", env=installed).stdout)
    assert set(t["best_params"]) == {"hp.t"}
    # the report: the plugin's rows and the plugin in the environment section (nothing imported)
    out = tmp_path / "rep"
    cli("report", "--runs", runs, "--out", out, "--wandb", "disabled")
    html = (out / "index.html").read_text()
    assert "taylor_ce" in html and "plugin nlb_taylor_ce" in html and "0.1.0 (entry point taylor_ce)" in html


def test_a_plugin_file_works_without_installing_and_travels_to_workers(tmp_path):
    runs = tmp_path / "runs"
    plugin = PLUGINS / "sentinel.py"
    r = json.loads(cli("run", "--method", "marked_ce", "--plugin", plugin, *TINY, "--runs", runs, "--json").stdout)
    assert r["finished"]
    meta = json.loads((runs / r["run_id"] / "meta.json").read_text())
    assert meta["plugins"][0]["kind"] == "file" and len(meta["plugins"][0]["sha256"]) == 64
    # a grid file names its plugins (relative to the file); its two workers load them
    shutil.copy(plugin, tmp_path / "mine.py")
    g = json.loads(cli("grid", _grid(tmp_path / "g.toml", ["marked_ce", "marked_ce+obd"], ["mine.py"]), "--runs",
                       runs, "--workers", "2", "--no-report", "--wandb", "disabled", "--json").stdout)
    assert g["runs"] == 4 and g["trained"] == 3 and not g["failed"]  # marked_ce seed 0 is the run above
    # a study made with a plugin file refuses a changed file: a worker runs the code the study was made with
    (tmp_path / "mine.py").write_text((tmp_path / "mine.py").read_text() + "\n# changed\n")
    import optuna

    from benchmark.orchestration.studies import default_storage
    names = [s.study_name for s in optuna.get_all_study_summaries(default_storage(runs))]
    w = cli("worker", "--study", names[0], "--runs", runs, check=False)
    assert w.returncode == 2 and "changed since" in w.stderr


def test_reading_a_store_never_imports_a_plugin(tmp_path):
    """A store whose runs name a plugin's method is listed, reported and merged by a process that
    has never seen the plugin, and the plugin's code does not run."""
    runs = tmp_path / "runs"
    cli("run", "--method", "marked_ce", "--plugin", PLUGINS / "sentinel.py", *TINY, "--runs", runs)
    mark = tmp_path / "imported"
    env = {"SENTINEL_PLUGIN_MARK": str(mark)}
    ls = json.loads(cli("ls", "--runs", runs, "--json", env=env).stdout)
    assert any(r.get("method") == "marked_ce" for r in ls["runs"])
    cli("report", "--runs", runs, "--out", tmp_path / "rep", "--wandb", "disabled", env=env)
    assert "marked_ce" in (tmp_path / "rep" / "index.html").read_text()
    m = json.loads(cli("merge", runs, "--into", tmp_path / "merged", "--json", env=env).stdout)
    assert len(m["copied"]) == 1 and not m["refused"]
    assert not mark.exists()


def test_a_plugin_may_not_take_a_built_in_name(tmp_path):
    p = cli("run", "--method", "gce", "--plugin", PLUGINS / "clash.py", *TINY, "--runs", tmp_path, check=False)
    assert p.returncode == 2 and "method 'gce' registered twice" in p.stderr and "choose another name" in p.stderr
    assert "Traceback" not in p.stderr
    p = cli("run", "--plugin", "no_such_plugin_module", *TINY, "--runs", tmp_path, check=False)
    assert p.returncode == 2 and "cannot import it" in p.stderr


def test_check_passes_the_example_and_names_what_a_broken_plugin_gets_wrong(installed):
    ok = json.loads(cli("check", "taylor_ce", "--json", env=installed).stdout)
    assert ok["ok"] and [c["check"] for c in ok["checks"]] == ["declared", "one_epoch", "deterministic", "resume",
                                                               "no_clean_labels", "ranges", "masked"]
    p = cli("check", "broken_nondeterministic", "--plugin", PLUGINS / "nondeterministic.py", check=False)
    assert p.returncode == 1 and "FAIL  deterministic" in p.stdout and "the same seed twice" in p.stdout
    p = cli("check", "broken_noresume", "--plugin", PLUGINS / "noresume.py", "--only", "resume", "--json",
            check=False)
    out = json.loads(p.stdout)
    assert p.returncode == 1 and not out["ok"]
    assert "state_dict / load_state_dict must hold everything" in out["checks"][0]["detail"]
    p = cli("check", "gce", "--only", "nonsense", check=False)
    assert p.returncode == 2 and "Valid: declared, one_epoch" in p.stderr
