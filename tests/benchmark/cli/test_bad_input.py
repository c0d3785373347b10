"""Bad input, as a table: every invocation exits 2 (usage) or 1 (runtime failure) with one message
that names the problem, never a traceback, and leaves the store exactly as it was.

The commands run in this process (benchmark.cli.main), so an unhandled exception fails the test
the way a traceback would fail a user; a few cases that need a real process are at the end.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from noise import NoiseSpec, build_artifact, labels_sha256, save_artifact
from tests.benchmark.data.hostile import huge_png
from tests.benchmark.data.real_world_fixtures import write_image_folder
from tests.conftest import ROOT

FMNIST = Path("/usr/share/datasets/fashion-mnist")
GOOD_GRID = ('seeds = [0]\nmethods = ["ce", "gce", "obd"]\n[base]\ndataset = "digits"\nepochs = 1\n'
             'subset = 200\n[[noise]]\nkind = "sym"\nrate = 0.2\n')


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A store holding one finished run, and the files the bad invocations point at."""
    root = tmp_path_factory.mktemp("bad")
    runs = root / "runs"
    assert main(["run", "--dataset", "digits", "--epochs", "1", "--subset", "200", "--runs", str(runs),
                 "--wandb", "disabled"]) == 0
    files = {}
    from benchmark.data import load_dataset
    y = load_dataset("digits").train_y
    art = build_artifact(NoiseSpec("sym", 0.3), y, dataset="digits", num_classes=10, seed=1)
    bad = art.noisy_labels.copy()
    bad[0] = 11
    files["out_of_range"] = root / "oor.npz"
    save_artifact(dataclasses.replace(art, noisy_labels=bad, sha256=labels_sha256(bad)), files["out_of_range"])
    files["liar"] = root / "liar.npz"
    save_artifact(dataclasses.replace(art, actual_rate=0.05), files["liar"])
    files["toml"] = root / "run.toml"
    files["toml"].write_text('dataset = "digits"\nepochs = 2.5\n')
    for name, text in {
        "table_noise": GOOD_GRID.replace("[[noise]]", "[noise]"),
        "hp_typo": GOOD_GRID + "[hp.gcee]\nq = 0.5\n",
        "match_value": GOOD_GRID + '[[override]]\nmatch = { method = "gcee" }\nset = { "hp.q" = 0.5 }\n',
        "match_key": GOOD_GRID + '[[override]]\nmatch = { methd = "gce" }\nset = { "hp.q" = 0.5 }\n',
        "variant_typo": GOOD_GRID + '[[variant]]\nmethods = ["obdd"]\nset = { "mask.sparsity" = 0.1 }\n',
        "top_key": 'seed = 3\n' + GOOD_GRID,
        "seeds_string": GOOD_GRID.replace("seeds = [0]", 'seeds = "0,1"'),
        "bad_cell": GOOD_GRID + '[[override]]\nmatch = { method = "gce" }\nset = { "hp.q" = 0 }\n',
        "path_name": 'name = "../../x"\n' + GOOD_GRID,
        "override_keys": GOOD_GRID + '[[override]]\nwhen = { method = "gce" }\nset = { "hp.q" = 0.5 }\n',
    }.items():
        files[name] = root / f"{name}.toml"
        files[name].write_text(text)
    files["junk_db"] = root / "junk.db"
    files["junk_db"].write_bytes(b"this is not a database" * 50)
    files["a_file"] = root / "a_file.txt"
    files["a_file"].write_text("x")
    files["empty_dir"] = root / "empty"
    files["empty_dir"].mkdir()
    if FMNIST.is_dir():
        fm = root / "fmnist"
        fm.mkdir()
        for p in FMNIST.iterdir():
            if p.name.endswith(".gz"):
                (fm / p.name).symlink_to(p)
        lab = fm / "train-labels-idx1-ubyte.gz"
        blob = bytearray(lab.read_bytes())
        lab.unlink()
        blob[len(blob) // 2:len(blob) // 2 + 64] = b"\xff" * 64  # a corrupted body, intact header
        lab.write_bytes(bytes(blob))
        files["fmnist_corrupt"] = fm
    # the audit's folder: and list: datasets (issue 24, A and B): images of one's own, broken
    mine = write_image_folder(root)
    for name, body in {"list_empty": b"# path,label\n\n",
                       "list_latin1": b"train/cat/0.png,0\ntrain/dog/0.png,\xe9\n",
                       "list_gap": b"train/cat/0.png,0\ntrain/dog/0.png,7\ntest/cat/0.png,0,test\n",
                       "list_twice": b"train/cat/0.png,0\ntrain/dog/0.png,1\ntrain/cat/0.png,1\n"}.items():
        files[name] = mine / f"{name}.csv"
        files[name].write_bytes(body)
    files["bombed"] = write_image_folder(root / "bombed")
    huge_png(files["bombed"] / "train" / "cat" / "zz.png")
    return runs, files


R = ["--dataset", "digits", "--epochs", "1", "--subset", "200"]
L = ["--model", "mlp", "--epochs", "1", "--noise", "none", "--dataset"]
CASES = [
    # (id, argv (FILE:name / RUNS are substituted), exit code, words the message must contain)
    ("batch_size", ["run", *R, "--set", "batch_size=0"], 2, ["batch_size", ">= 2"]),
    ("eval_batch", ["run", *R, "--set", "eval_batch_size=0"], 2, ["eval_batch_size"]),
    ("memo", ["run", *R, "--set", "memo_samples=-5"], 2, ["memo_samples", ">= 0"]),
    ("q_zero", ["run", *R, "--method", "gce", "--set", "hp.q=0"], 2, ["hp.q", "(0, 1]", "got 0"]),
    ("q_text", ["run", *R, "--method", "gce", "--set", "hp.q=abc"], 2, ["hp.q", "number", "abc"]),
    ("forget", ["run", *R, "--method", "coteaching", "--set", "hp.forget_rate=1.5"], 2, ["hp.forget_rate", "[0, 1)"]),
    ("T_zero", ["run", *R, "--method", "dividemix", "--set", "hp.T=0"], 2, ["hp.T", "> 0"]),
    ("schedule", ["run", *R, "--method", "coteaching", "--set", "hp.schedule=fast"], 2, ["protocol, official"]),
    ("toml_float", ["run", "--config", "FILE:toml", "--subset", "200"], 2, ["run.toml", "epochs must be an integer", "2.5"]),
    ("seed", ["run", *R, "--seed", "-1"], 2, ["seed", ">= 0"]),
    ("lr", ["run", *R, "--set", "optim.lr=-1"], 2, ["optim.lr", "> 0"]),
    ("kind", ["run", *R, "--set", "noise.kind=symm"], 2, ["noise.kind", "sym_incl"]),
    ("val_frac", ["run", *R, "--set", "val_frac=1"], 2, ["val_frac", "[0, 1)"]),
    ("bool", ["run", *R, "--set", "noise.allow_unlearnable=maybe"], 2, ["allow_unlearnable", "true or false"]),
    ("section", ["run", *R, "--set", "noise=3"], 2, ["section"]),
    ("device", ["run", *R, "--device", "cuda"], 2, ["cuda"]),
    ("oor_labels", ["run", *R, "--noise-file", "FILE:out_of_range"], 2, ["labels", "[0, 10)"]),
    ("liar", ["noise", "--dataset", "digits", "--noise-file", "FILE:liar"], 2, ["measured flip rate", "0.0500"]),
    ("no_file", ["run", *R, "--noise-file", "FILE:nope"], 2, ["no such file"]),
    ("export_dir", ["noise", "--dataset", "digits", "--export", "FILE:empty_dir"], 2, ["directory"]),
    ("grid_table", ["grid", "FILE:table_noise", "--dry-run"], 2, ["[[noise]]", "not [noise]"]),
    ("grid_hp", ["grid", "FILE:hp_typo", "--dry-run"], 2, ["hp.gcee", "Valid:"]),
    ("grid_match_value", ["grid", "FILE:match_value", "--dry-run"], 2, ["matches no cell"]),
    ("grid_match_key", ["grid", "FILE:match_key", "--dry-run"], 2, ["methd", "Valid:"]),
    ("grid_variant", ["grid", "FILE:variant_typo", "--dry-run"], 2, ["obdd", "match none"]),
    ("grid_top", ["grid", "FILE:top_key", "--dry-run"], 2, ["unknown key(s) seed", "seeds"]),
    ("grid_seeds", ["grid", "FILE:seeds_string", "--dry-run"], 2, ["'seeds' must be a list"]),
    ("grid_override_keys", ["grid", "FILE:override_keys"], 2, ["when", "Valid: match, set"]),
    ("grid_bad_cell", ["grid", "FILE:bad_cell"], 2, ["hp.q", "(0, 1]"]),
    ("grid_path", ["grid", "FILE:path_name", "--dry-run"], 2, ["invalid grid name", "../../x"]),
    ("grid_workers", ["grid", "quick", "--workers", "-1"], 2, ["--workers"]),
    # every --slurm-* value reaches the job script: refused before the noise artifact is written
    ("slurm_mem_nan", ["grid", "quick", "--launcher", "slurm", "--slurm-mem-gb", "nan"], 2,
     ["--slurm-mem-gb", "finite number"]),
    ("slurm_jobs_huge", ["grid", "quick", "--launcher", "slurm", "--slurm-jobs", "1000000000000"], 2,
     ["--slurm-jobs", "[1, 10000]"]),
    ("slurm_partition_newline", ["grid", "quick", "--launcher", "slurm", "--slurm-partition", "gpu\nrm -rf ~"], 2,
     ["--slurm-partition", "not a partition name", "letters, digits"]),
    ("param_order", ["tune", *R, "--method", "gce", "--param", "hp.q=1:0"], 2, ["low must be below high"]),
    ("param_range", ["tune", *R, "--method", "gce", "--param", "hp.q=0:1"], 2, ["hp.q", "0", "not a valid value"]),
    ("study_path", ["tune", *R, "--method", "gce", "--study", "../x"], 2, ["invalid study name"]),
    ("mysql", ["tune", *R, "--method", "gce", "--storage", "mysql://u@h/db"], 2, ["unsupported storage", "sqlite"]),
    ("pg_down", ["tune", *R, "--method", "gce", "--storage", "postgresql://nlb@127.0.0.1:9/x"], 1,
     ["cannot open study storage", "127.0.0.1"]),
    ("sqlite_uncreatable", ["tune", *R, "--method", "gce", "--storage", "sqlite:////proc/no/such/x.db"], 1,
     ["cannot create"]),
    ("sqlite_junk", ["tune", *R, "--method", "gce", "--storage", "sqlite:///FILE:junk_db"], 1,
     ["cannot open study storage", "not a database"]),
    ("show_nope", ["tune", "--show", "nope"], 2, ["no study storage"]),
    ("report_study_nope", ["report", "--study", "nope"], 2, ["no study storage"]),
    ("worker_nope", ["worker", "--study", "nope"], 2, ["no study storage"]),
    ("report_out_file", ["report", "--out", "FILE:a_file"], 2, ["--out", "not a directory"]),
    ("report_filter", ["report", "--filter", "colour=red"], 2, ["--filter", "method"]),
    ("empty_data_dir", ["run", "--dataset", "fashion_mnist", "--epochs", "1", "--data-dir", "FILE:empty_dir"], 1,
     ["t10k-labels-idx1-ubyte", "empty"]),
    ("list_empty", ["run", *L, "list:FILE:list_empty"], 1, ["list_empty.csv", "no rows"]),
    ("list_latin1", ["run", *L, "list:FILE:list_latin1"], 1, ["list_latin1.csv, line 2", "not UTF-8"]),
    ("list_gap", ["run", *L, "list:FILE:list_gap"], 1, ["line 2", "label 7 makes 8 classes"]),
    ("list_twice", ["run", *L, "list:FILE:list_twice"], 1, ["lines 1 and 3", "listed twice"]),
    ("folder_bomb", ["run", *L, "folder:FILE:bombed"], 1, ["zz.png", "image too large to decode"]),
    ("bench_tmp", ["bench", "--dataset", "digits", "--tmp", "FILE:a_file"], 2, ["--tmp", "not an existing directory"]),
    ("unknown_flag", ["run", "--epoch", "1"], 2, ["unrecognized arguments", "--help"]),
    ("unknown_cmd", ["train"], 2, ["invalid choice", "run"]),
    ("ls_prune_typo", ["ls", "--prun"], 2, ["unrecognized"]),
]
if FMNIST.is_dir():
    CASES.append(("gzip_body", ["run", "--dataset", "fashion_mnist", "--epochs", "1", "--data-dir",
                                "FILE:fmnist_corrupt"], 1, ["train-labels-idx1-ubyte.gz"]))


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _argv(argv: list[str], runs: Path, files: dict[str, Path]) -> list[str]:
    out = []
    for a in argv:
        for name, path in files.items():
            a = a.replace(f"FILE:{name}", str(path))
        out.append(a.replace("FILE:nope", str(runs.parent / "nope.npz")))
    if out[0] not in ("bench",):
        out += ["--runs", str(runs)]
    if out[0] in ("run", "grid", "tune", "report"):
        out += ["--wandb", "disabled"]
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_bad_invocation(case, as_json, env, capsys):
    _, argv, code, words = case
    runs, files = env
    argv = _argv(argv, runs, files)
    if as_json:
        if argv[0] == "worker" or argv[0] == "ls" and "--prun" in argv:
            pass
        argv.append("--json")
    before = _snapshot(runs.parent)
    got = main(argv)
    out, err = capsys.readouterr()
    assert got == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    if as_json:
        assert json.loads(out) == {"error": lines[0][len("error: "):], "exit_code": code}
    else:
        assert out == ""
    assert _snapshot(runs.parent) == before  # nothing written, nothing created (no optuna.db either)


def test_grid_refuses_a_bad_cell_before_training_any(env, capsys, tmp_path):
    """The bad cell (gce with q = 0) comes after a good one (ce): nothing may have trained."""
    _, files = env
    runs = tmp_path / "runs"
    assert main(["grid", str(files["bad_cell"]), "--runs", str(runs), "--wandb", "disabled"]) == 2
    assert not runs.exists() or not [p for p in runs.iterdir() if len(p.name) == 16]


def test_ctrl_c_ends_with_one_line_and_the_run_resumes(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "runner.py", "run", "--dataset", "digits", "--epochs", "40", "--subset", "900",
           "--runs", str(runs), "--wandb", "disabled", "--set", "batch_size=16", "--set", "checkpoint_s=0"]
    # a suite started in the background (nohup ... &) inherits SIGINT ignored, and Python then
    # keeps ignoring it: give the child the default disposition, as a terminal would
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob("*/checkpoint.pt")):
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "run the same command again to resume" in errors[0]
    rid = next(runs.glob("*/checkpoint.pt")).parent.name
    from benchmark.store import Store
    assert Store(runs).describe(rid)["status"] == "resumable"


def test_a_truncated_checkpoint_never_blocks_the_run(tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["run", "--dataset", "digits", "--epochs", "3", "--subset", "200", "--runs", str(runs),
            "--wandb", "disabled", "--json", "--set", "checkpoint_s=0"]
    from benchmark.config import build_config
    from benchmark.training import run
    cfg = build_config({"dataset": "digits", "epochs": 3, "subset": 200, "checkpoint_s": 0})
    part = run(cfg, runs, stop_after=2, wandb="disabled")
    ck = Path(part["run_dir"]) / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 3])
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["finished"] and (Path(res["run_dir"]) / "checkpoint.pt.bad").is_file()
    meta = json.loads((Path(res["run_dir"]) / "meta.json").read_text())
    assert meta["processes"] == 2  # resumed from the previous good checkpoint (epoch 1)


def test_the_password_never_appears_in_messages(capsys, tmp_path):
    url = "postgresql://bench:Hunter2Secret@127.0.0.1:9/optuna"
    code = main(["tune", "--dataset", "digits", "--epochs", "1", "--subset", "200", "--method", "gce",
                 "--storage", url, "--runs", str(tmp_path), "--wandb", "disabled", "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and "Hunter2Secret" not in out + err and "<redacted>" in err
    assert "Hunter2Secret" not in " ".join(sys.argv)
    np.testing.assert_equal(os.path.exists(tmp_path / "optuna.db"), False)
