"""Optuna studies executed by real worker processes, on SQLite and on a real PostgreSQL server.

One worker is killed with SIGKILL in the middle of a trial; the study must still complete and every
cell x seed must end as exactly one finished run in the store.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from benchmark.config import expand, load_preset
from benchmark.errors import UsageError
from benchmark.orchestration.studies import create_grid_study, open_storage, parse_param, remaining, work
from benchmark.store import Store
from tests.conftest import ROOT

ENV = {**os.environ, "NLB_HEARTBEAT_S": "1", "NLB_GRACE_S": "4", "WANDB_MODE": "disabled",
       "OMP_NUM_THREADS": "1"}  # several workers share 2 cores


def grid_cfgs(tmp_path: Path, epochs: int = 6):
    """12 cells: ce and gce x 6 noise settings, 1 seed, a few seconds each on digits."""
    f = tmp_path / "g.toml"
    noise = "".join(f'[[noise]]\nkind = "{k}"\nrate = {r}\n' for k, r in
                    [("sym", 0.2), ("sym", 0.4), ("sym", 0.6), ("pairflip", 0.2), ("pairflip", 0.4), ("asym", 0.3)])
    f.write_text(f'seeds = [0]\nmethods = ["ce", "gce"]\n[base]\ndataset = "digits"\nepochs = {epochs}\n'
                 f'subset = 900\nbatch_size = 32\ndevice = "cpu"\n{noise}')
    return expand(load_preset(str(f)))


def start_workers(n: int, study: str, storage: str, runs: Path) -> list[subprocess.Popen]:
    cmd = [sys.executable, "runner.py", "worker", "--study", study, "--storage", storage, "--runs", str(runs)]
    return [subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(n)]


def kill_one_mid_trial(study_name: str, storage: str, procs: list[subprocess.Popen], timeout: float = 120) -> int:
    """SIGKILL the worker that is running a trial (found by the pid it records on the trial).

    The worker is frozen (SIGSTOP) and the trial read again before the kill: between the first
    read and the signal it may have finished that trial, and the number returned must be the
    trial the kill really interrupted.
    """
    pids = {p.pid: p for p in procs}
    deadline = time.time() + timeout

    def running_trial_of(pid: int) -> int | None:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
        trials = study.get_trials()
        if not any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
            return None
        for t in trials:
            if (t.state == optuna.trial.TrialState.RUNNING
                    and int(t.user_attrs.get("worker", "x:0").rsplit(":", 1)[1]) == pid):
                return t.number
        return None

    while time.time() < deadline:
        for pid in pids:
            if running_trial_of(pid) is None:
                continue
            os.kill(pid, signal.SIGSTOP)
            number = running_trial_of(pid)
            if number is None:  # it finished the trial meanwhile: let it go on
                os.kill(pid, signal.SIGCONT)
                continue
            os.kill(pid, signal.SIGKILL)
            pids[pid].wait(timeout=30)
            return number
        time.sleep(0.2)
    raise AssertionError("no worker was seen mid-trial")


def check_exactly_once(study_name: str, storage: str, cfgs, runs: Path, killed: int) -> None:
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    trials = study.get_trials()
    states = {t.number: t.state for t in trials}
    # the killed trial is failed by the heartbeat check (and re-queued), or, if the other workers
    # finished its cell first, left as a stale record: either way its cell completed elsewhere
    assert states[killed] in (optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)
    killed_cell = next(t.params["cell"] for t in trials if t.number == killed)
    assert any(t.params.get("cell") == killed_cell and t.state == optuna.trial.TrialState.COMPLETE
               for t in trials)
    complete_cells = {t.params["cell"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert complete_cells == set(range(len(cfgs)))
    defn = study.user_attrs["nlb"]
    assert remaining(study, defn) == 0
    store = Store(runs)
    finished = [rid for rid in store.run_ids() if store.is_finished(rid)]
    assert len(finished) == len(cfgs) == len(store.run_ids())  # one run per cell x seed, no extra
    for rid in finished:
        epochs = [int(r["epoch"]) for r in store.read_metrics(rid)]
        assert epochs == list(range(1, 7))  # the killed run resumed: no epoch twice, none missing
        assert not (runs / rid / "checkpoint.pt").exists()


def run_study_with_kill(tmp_path: Path, storage: str, n_workers: int) -> None:
    cfgs = grid_cfgs(tmp_path)
    runs = tmp_path / "runs"
    create_grid_study("g", storage, cfgs, "test")
    procs = start_workers(n_workers, "g", storage, runs)
    try:
        killed = kill_one_mid_trial("g", storage, procs)
        for p in procs:
            p.wait(timeout=600)
        survivors = [p for p in procs if p.returncode != -signal.SIGKILL]
        assert len(survivors) == n_workers - 1
        for p in survivors:
            assert p.returncode == 0, p.stderr.read().decode()[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    check_exactly_once("g", storage, cfgs, runs, killed)


def test_embedded_storage_two_workers_one_killed(tmp_path):
    run_study_with_kill(tmp_path, f"sqlite:///{tmp_path / 'optuna.db'}", 2)


# ----- a real PostgreSQL server ---------------------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _postgres_server(password: str | None = None):
    """A throwaway PostgreSQL server on 127.0.0.1 and a free port, removed afterwards.

    Without ``password``: user nlb, trusted (yields its URL). With one: TCP connections need a
    password (scram-sha-256) and user ``bench`` has ``password`` (yields the URL holding it).
    """
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql)")
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="nlb-pg-", dir="/tmp"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if as_root:  # the server refuses to run as root: use the package's postgres user
        user = pwd.getpwnam("postgres")
        for p in (base, sock):
            os.chown(p, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *c: subprocess.run([*prefix, *map(str, c)], check=True, capture_output=True, timeout=120)
    auth = ["--auth=trust"] if password is None else ["--auth-local=trust", "--auth-host=scram-sha-256"]
    try:
        run(bindir / "initdb", "-D", data, "-U", "nlb", *auth, "-E", "UTF8")
        run(bindir / "pg_ctl", "-D", data, "-w", "-t", "60", "-l", base / "log",
            "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=50", "start")
        if password is None:
            run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "nlb", "optuna")
            yield f"postgresql://nlb@127.0.0.1:{port}/optuna"
        else:  # over the Unix socket (trusted) create a password-protected owner of the database
            psql = Path(bindir) / "psql"
            run(psql, "-h", sock, "-p", port, "-U", "nlb", "-d", "postgres", "-c",
                f"CREATE USER bench PASSWORD '{password}'")
            run(bindir / "createdb", "-h", sock, "-p", port, "-U", "nlb", "-O", "bench", "optuna")
            yield f"postgresql://bench:{password}@127.0.0.1:{port}/optuna"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres():
    with _postgres_server() as url:
        yield url


def test_postgres_three_workers_one_killed(tmp_path, postgres):
    run_study_with_kill(tmp_path, postgres, 3)


# ----- small pieces ---------------------------------------------------------------------------

def test_param_parsing():
    assert parse_param("mask.sparsity=0.0:0.95") == ("mask.sparsity", [0.0, 0.95])
    assert parse_param("optim.lr=1e-3:1e-1:log") == ("optim.lr", [1e-3, 1e-1, "log"])
    assert parse_param("mask.score=obd,random") == ("mask.score", {"choices": ["obd", "random"]})
    assert parse_param("epochs=2:9") == ("epochs", [2, 9])
    with pytest.raises(UsageError):
        parse_param("mask.sparsity=0.9:0.1")
    with pytest.raises(UsageError):
        parse_param("nonsense")


def test_tune_cli_objective_never_reads_the_test_set(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    p = subprocess.run([sys.executable, "runner.py", "tune", "--method", "gce", "--dataset", "digits",
                        "--noise", "sym", "--rate", "0.4", "--trials", "3", "--seeds", "2", "--epochs", "2",
                        "--subset", "300", "--storage", db, "--study", "t", "--runs", tmp_path / "runs",
                        "--pruner", "none", "--json"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    best = json.loads(p.stdout)
    assert len([t for t in best["trials"] if t["state"] == "COMPLETE"]) == 3
    assert "hp.q" in best["best_params"]
    plots = tmp_path / "runs" / "studies" / "t"
    assert (plots / "history.png").stat().st_size > 1000 and (plots / "importances.png").is_file()
    study = optuna.load_study(study_name="t", storage=open_storage(db))
    store = Store(tmp_path / "runs")
    for t in study.get_trials():
        vals = []
        for rid in t.user_attrs["run_ids"]:
            res = store.result(rid)
            assert res["val_noisy/acc_best"] is not None
            vals.append(res["val_noisy/acc_best"])
        # the objective is the mean noisy-validation accuracy, not a test figure
        assert t.value == pytest.approx(sum(vals) / len(vals))
        cfgs = [json.loads((tmp_path / "runs" / rid / "config.json").read_text()) for rid in t.user_attrs["run_ids"]]
        assert sorted(c["seed"] for c in cfgs) == [1000, 1001]


def test_grid_tuned_applies_the_best_parameters_to_its_method(tmp_path):
    from benchmark.config import build_config
    from benchmark.orchestration.grids import apply_tuned
    from benchmark.orchestration.studies import create_tune_study, work
    db = f"sqlite:///{tmp_path / 's.db'}"
    base = build_config({"dataset": "digits", "method": "gce", "epochs": 1, "subset": 200})
    create_tune_study("q", db, base, {"hp.q": [0.2, 0.9]}, seeds=1, trials=2, pruner="none")
    work("q", db, str(tmp_path / "runs"), "disabled")
    cfgs = grid_cfgs(tmp_path)
    apply_tuned(cfgs, "q", db)
    study = optuna.load_study(study_name="q", storage=open_storage(db))
    assert {c.hp.get("q") for c in cfgs if c.method == "gce"} == {study.best_params["hp.q"]}
    assert all(c.hp == {} for c in cfgs if c.method == "ce")
    assert {c.seed for c in cfgs} == {0}  # preset seeds: fresh with respect to tuning seeds 1000+


def test_the_pruner_sees_the_best_validation_accuracy_so_far(tmp_path):
    """The objective is the accuracy at the selected epoch: each seed's reported values are the
    running best (never falling), and the median rule waits a third of the epochs."""
    from benchmark.config import build_config
    from benchmark.orchestration.studies import _pruner, create_tune_study, work
    db = f"sqlite:///{tmp_path / 's.db'}"
    base = build_config({"dataset": "digits", "method": "gce", "epochs": 6, "subset": 300,
                         "optim": {"lr": 0.5}})
    create_tune_study("p", db, base, {"hp.q": [0.2, 0.9]}, seeds=2, trials=4, pruner="median")
    work("p", db, str(tmp_path / "runs"), "disabled")
    study = optuna.load_study(study_name="p", storage=open_storage(db))
    rises = 0
    for t in study.get_trials():
        for k in (0, 1):
            vals = [t.intermediate_values[s] for s in sorted(t.intermediate_values) if (s - 1) // 6 == k]
            assert vals == sorted(vals)
            rises += len(set(vals)) > 1
    assert rises  # the values did move: the check above is not vacuous
    p = _pruner("median", 30)
    assert p._n_warmup_steps == 10 and p._n_startup_trials == 3


def test_tune_on_a_preset_protocol_then_report_the_sensitivity(tmp_path):
    """tune --preset takes the preset's cell of the method (its base, [hp.X], protocol name) at
    the chosen noise; --only-params searches just what is given; report --study with a pattern
    draws each study and the studies side by side, without Optuna's experimental warnings."""
    runs = tmp_path / "runs"
    common = ["--preset", "obd-paper-fmnist", "--method", "nce_rce+obd", "--param", "mask.sparsity=0.1:0.9",
              "--only-params", "--trials", "2", "--seeds", "2", "--set", "epochs=2", "--set", "subset=400",
              "--runs", str(runs), "--wandb", "disabled", "--json"]
    for kind, rate in (("sym", "0.5"), ("asym", "0.4")):
        r = subprocess.run([sys.executable, "runner.py", "tune", "--noise", kind, "--rate", rate,
                            "--study", f"v-{kind}", *common], cwd=ROOT, env=ENV, capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, r.stderr
        assert "ExperimentalWarning" not in r.stderr
        assert set(json.loads(r.stdout.splitlines()[-1])["best_params"]) == {"mask.sparsity"}
    cfgs = [json.loads(p.read_text()) for p in runs.glob("*/config.json")]
    assert {c["protocol_name"] for c in cfgs} == {"obd-paper-fmnist"} and {c["model"] for c in cfgs} == {"lenet"}
    assert all(c["hp"] == {"alpha": 1.0, "beta": 1.0} for c in cfgs)  # the preset's [hp.nce_rce]
    assert {(c["noise"]["kind"], c["noise"]["rate"]) for c in cfgs} == {("sym", 0.5), ("asym", 0.4)}
    rep = subprocess.run([sys.executable, "runner.py", "report", "--study", "v-*", "--runs", str(runs), "--json"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0, rep.stderr
    out = json.loads(rep.stdout)
    assert out["studies"] == ["v-asym", "v-sym"]
    assert any(p.endswith("sparsity_sensitivity.png") for p in out["plots"])
    assert "ExperimentalWarning" not in rep.stderr
    # a preset with two noise settings needs one named; a pattern that matches nothing is refused
    bad = subprocess.run([sys.executable, "runner.py", "tune", *common[:-1]], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "has 2 noise settings (sym 0.5, asym 0.4)" in bad.stderr
    nope = subprocess.run([sys.executable, "runner.py", "report", "--study", "w-*", "--runs", str(runs)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert nope.returncode == 2 and "no study matches" in nope.stderr


# ----- secrets --------------------------------------------------------------------------------

SECRET = "Pw-9f3c7e1b-secret"


def test_no_password_reaches_a_file_a_log_or_a_command_line(tmp_path):
    """A password-protected PostgreSQL user: the grid runs with 2 local workers and W&B offline.
    The password appears in no file the runs and their W&B mirror wrote, in no output, and in no
    worker's command line (``ps`` shows those to every user)."""
    with _postgres_server(SECRET) as url:
        f = tmp_path / "g.toml"
        f.write_text('seeds = [0]\nmethods = ["ce", "gce"]\n[base]\ndataset = "digits"\nepochs = 2\n'
                     'subset = 300\ndevice = "cpu"\n[[noise]]\nkind = "sym"\nrate = 0.4\n')
        runs = tmp_path / "runs"
        env = {**ENV, "WANDB_MODE": "offline"}
        p = subprocess.Popen([sys.executable, "runner.py", "grid", str(f), "--runs", str(runs), "--storage", url,
                              "--workers", "2", "--wandb", "offline"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen_workers, leaked = 0, []
        while p.poll() is None:
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    cmd = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"runner.py\x00worker" in cmd:
                    seen_workers += 1
                    if SECRET.encode() in cmd:
                        leaked.append(cmd)
            time.sleep(0.05)
        out, err = p.communicate()
        assert p.returncode == 0, err.decode()[-3000:]
        assert seen_workers and not leaked
        assert SECRET.encode() not in out + err
        files = [x for x in runs.rglob("*") if x.is_file()]
        assert any(x.suffix == ".wandb" for x in files) and any(x.name == "result.json" for x in files)
        for x in files:
            assert SECRET.encode() not in x.read_bytes(), x
        # and a wrong password is a one-line error without either password
        bad = url.replace(SECRET, "wrong-password-123")
        q = subprocess.run([sys.executable, "runner.py", "worker", "--study", "grid-g", "--storage", bad,
                            "--runs", str(runs)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
        assert q.returncode == 1 and "Traceback" not in q.stderr
        assert "password authentication failed" in q.stderr and "wrong-password-123" not in q.stderr


def test_a_study_made_before_a_config_field_existed_reopens(tmp_path):
    """A study's stored base config lacks a field added since (at its default): running the
    same tune again continues that study instead of calling it another definition."""
    from benchmark.config import build_config
    from benchmark.orchestration.studies import ATTR, create_tune_study, load_definition
    db = f"sqlite:///{tmp_path / 's.db'}"
    base = build_config({"dataset": "digits", "method": "gce", "epochs": 1, "subset": 200})
    study = create_tune_study("t", db, base, {"hp.q": [0.2, 0.9]}, seeds=1, trials=1, pruner="none")
    old = dict(study.user_attrs[ATTR])
    old["base"] = {k: v for k, v in old["base"].items() if k != "classifier"}  # as stored before it existed
    study.set_user_attr(ATTR, old)
    work("t", db, str(tmp_path / "runs"), "disabled")
    create_tune_study("t", db, base, {"hp.q": [0.2, 0.9]}, seeds=1, trials=1, pruner="none")
    assert len(load_definition("t", db)[0].get_trials()) == 1
    with pytest.raises(UsageError, match="already exists with another definition"):
        create_tune_study("t", db, build_config({"dataset": "digits", "method": "gce", "epochs": 2,
                                                 "subset": 200}), {"hp.q": [0.2, 0.9]}, seeds=1, trials=1,
                          pruner="none")


def test_a_failed_tune_does_not_block_its_study_name(tmp_path):
    from benchmark.config import build_config
    from benchmark.orchestration.studies import create_tune_study, load_definition
    db = f"sqlite:///{tmp_path / 's.db'}"
    base = build_config({"dataset": "digits", "method": "gce", "epochs": 1, "subset": 200})
    study = create_tune_study("t", db, base, {"hp.q": [0.2, 0.9]}, seeds=1, trials=2, pruner="none")
    study.enqueue_trial({"hp.q": 0.5})
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # an attempt that failed
    create_tune_study("t", db, base, {"hp.q": [0.3, 0.8]}, seeds=1, trials=2, pruner="none")
    _, defn = load_definition("t", db)
    assert defn["space"] == {"hp.q": [0.3, 0.8]}
    # a study with finished work keeps its definition
    work("t", db, str(tmp_path / "runs"), "disabled")
    with pytest.raises(UsageError, match="already exists with another definition"):
        create_tune_study("t", db, base, {"hp.q": [0.1, 0.2]}, seeds=1, trials=2, pruner="none")


def test_a_method_revision_makes_the_grid_a_new_study(tmp_path, monkeypatch):
    """Re-running a grid after a method's revision was bumped: its cells are new runs (new ids), so
    the grid's default study is a new one; reopening the old study (whose completed trials
    trained the older revision) left the new runs untrained and counted them as failed."""
    from benchmark.orchestration import grids
    from methods import get_method
    grid_file = tmp_path / "g.toml"
    grid_file.write_text('seeds = [0]\nmethods = ["ce", "gce"]\n[base]\ndataset = "digits"\nmodel = "cnn"\n'
                         'epochs = 1\nsubset = 200\ndevice = "cpu"\n[[noise]]\nkind = "sym"\nrate = 0.4\n')
    runs = str(tmp_path / "runs")
    opts = grids.GridOptions(runs=runs, workers=2)
    grid = grids.plan(str(grid_file), None, [], runs=runs, log=lambda _m: None)
    name, db = grids._study(grid, opts)
    work(name, db, runs, "disabled")
    assert remaining(*_definition(name, db)) == 0
    monkeypatch.setattr(get_method("gce"), "revision", 2)
    grid = grids.plan(str(grid_file), None, [], runs=runs, log=lambda _m: None)
    new, _ = grids._study(grid, opts)
    assert new != name and remaining(*_definition(new, db)) == 2
    _, defn = _definition(new, db)
    assert defn["revisions"] == [{}, {"gce": 2}]
    # an explicit --study naming the old one says why it cannot be reused
    with pytest.raises(UsageError, match="revisions of its methods changed"):
        grids._study(grid, grids.GridOptions(runs=runs, workers=2, study=name))


def _definition(name: str, db: str):
    from benchmark.orchestration.studies import load_definition
    return load_definition(name, db)
