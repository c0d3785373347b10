"""The --slurm-* options are checked before anything is written (orchestration/slurm_options.py):
type, finiteness, a range with a sensible cap, partition and account names in Slurm's character
set. A stand-in ``sbatch`` on PATH logs what would reach Slurm: nothing, for a refused option."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.errors import UsageError
from benchmark.orchestration import grids
from benchmark.orchestration.slurm_options import SlurmOptions
from tests.conftest import ROOT

GRID = """
description = "one tiny cell"
seeds = [0]
methods = ["ce"]
[base]
dataset = "digits"
model = "mlp"
epochs = 1
subset = 200
[[noise]]
kind = "sym"
rate = 0.2
"""

SBATCH = """#!/bin/sh
# stand-in sbatch: log the arguments and the job script, then refuse as a busy cluster would
echo "$@" >> "{log}"
cat "$1" >> "{log}"
echo "sbatch: error: stand-in sbatch refuses every job" >&2
exit 1
"""


@pytest.fixture
def slurm_env(tmp_path, monkeypatch):
    """(grid file, store path, sbatch log): a stand-in sbatch first on PATH, and a tiny grid."""
    bin_dir, log = tmp_path / "bin", tmp_path / "sbatch.log"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH.format(log=log))
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    grid = tmp_path / "tiny.toml"
    grid.write_text(GRID)
    return grid, tmp_path / "runs", log


def grid_cmd(grid: Path, runs: Path, *flags: str) -> list[str]:
    return ["grid", str(grid), "--launcher", "slurm", "--runs", str(runs), "--no-report",
            "--wandb", "disabled", *flags]


BAD = [("--slurm-mem-gb", "nan", "must be a finite number"), ("--slurm-mem-gb", "inf", "must be a finite number"),
       ("--slurm-mem-gb", "-1", "[0.01, 16384] (or 0)"), ("--slurm-mem-gb", "0.0001", "[0.01, 16384] (or 0)"),
       ("--slurm-jobs", "1000000000000", "[1, 10000]"), ("--slurm-jobs", "0", "[1, 10000]"),
       ("--slurm-time-min", "100000000", "[1, 43200]"), ("--slurm-cpus-per-job", "100000", "[1, 1024]"),
       ("--slurm-gpus-per-job", "1000", "[0, 64]"), ("--slurm-array-parallelism", "-1", "[0, 10000]"),
       ("--slurm-partition", "gpu;touch pwned", "is not a partition name"),
       ("--slurm-partition", "$(touch pwned)", "is not a partition name"),
       ("--slurm-partition", "gpu debug", "is not a partition name"),
       ("--slurm-partition", "gpu\ntouch pwned", "is not a partition name"),
       ("--slurm-partition", "gpu,", "is not a partition name"),
       ("--slurm-account", "proj`id`", "is not an account name"),
       ("--slurm-account", "proj\n#SBATCH --wrap=x", "is not an account name")]


@pytest.mark.parametrize("flag, value, why", BAD, ids=[f"{f}={v!r}" for f, v, _ in BAD])
def test_a_bad_option_is_refused_before_anything_is_written(slurm_env, capsys, no_hang, flag, value, why):
    grid, runs, log = slurm_env
    assert main(grid_cmd(grid, runs, flag, value)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag} ") and why in err and err.count("\n") == 1, err
    # no noise artifact, no study, no job file, and nothing reached sbatch
    assert not runs.exists() and not log.exists()


def test_the_command_line_exits_2_without_a_traceback(slurm_env):
    grid, runs, log = slurm_env
    for flag, value in (("--slurm-mem-gb", "nan"), ("--slurm-partition", "gpu\nrm -rf ~")):
        p = subprocess.run([sys.executable, "runner.py", *grid_cmd(grid, runs, flag, value)], cwd=ROOT,
                           capture_output=True, text=True, check=False)
        assert p.returncode == 2 and "Traceback" not in p.stderr and flag in p.stderr, p.stderr
    assert not runs.exists() and not log.exists()


def test_execute_checks_too(slurm_env, no_hang):
    """The harness's own entry (grids.execute) refuses before prepare() writes a noise artifact."""
    grid, runs, log = slurm_env
    planned = grids.plan(str(grid), None, [], runs=str(runs))
    opts = grids.GridOptions(runs=str(runs), launcher="slurm", slurm=SlurmOptions(jobs=10**12), report=False)
    with pytest.raises(UsageError, match=r"--slurm-jobs must be an integer in \[1, 10000\]"):
        grids.execute(planned, opts)
    assert not runs.exists() and not log.exists()


@pytest.mark.parametrize("opts, why", [
    ({"jobs": True}, "--slurm-jobs must be an integer"),
    ({"jobs": 2.5}, "--slurm-jobs must be an integer"),
    ({"mem_gb": float("nan")}, "--slurm-mem-gb must be a finite number"),
    ({"time_min": "60"}, None),  # coerced, as the run config's fields are
    ({"partition": 7}, "--slurm-partition must be a string"),
    ({"folder": "runs/slurm\n/x"}, "control characters"),
    ({"extra": {"account": "a;b"}}, "is not an account name"),
    ({"extra": {"comment": "one\ntwo"}}, "without control characters"),
    ({"extra": {"bad key": 1}}, "is not an option name"),
    ({"extra": {"exclusive": False}}, "use true, an integer or a string"),
])
def test_options_given_by_the_harness_are_checked(opts, why):
    o = SlurmOptions(**opts)
    if why is None:
        o.check()
        assert o.time_min == 60
    else:
        with pytest.raises(UsageError) as e:
            o.check()
        assert why in str(e.value)


def test_valid_names_reach_sbatch_as_given(slurm_env, capsys):
    """A partition list and an account in Slurm's character set are submitted as they are (here the
    stand-in sbatch then refuses the job: a run fault, exit 1)."""
    grid, runs, log = slurm_env
    rc = main(grid_cmd(grid, runs, "--slurm-partition", "gpu,cpu-long.v2", "--slurm-account", "proj_01",
                       "--slurm-jobs", "3", "--slurm-mem-gb", "2.5", "--slurm-time-min", "240"))
    err = capsys.readouterr().err
    assert rc == 1 and "sbatch refused the workers" in err and "Traceback" not in err
    script = log.read_text()
    for line in ("#SBATCH --partition=gpu,cpu-long.v2", "#SBATCH --account=proj_01", "#SBATCH --array=0-2%3",
                 "#SBATCH --mem=2560MB", "#SBATCH --time=240"):
        assert line in script.splitlines(), script


def test_a_bad_option_is_refused_with_the_local_launcher_too(tmp_path, capsys):
    """A value that would be refused on Slurm is bad input whatever the launcher (nothing trains)."""
    runs = tmp_path / "runs"
    assert main(["grid", "quick", "--runs", str(runs), "--slurm-cpus-per-job", "100000", "--dry-run"]) == 2
    assert "--slurm-cpus-per-job must be an integer in [1, 1024]" in capsys.readouterr().err
    assert not runs.exists()
