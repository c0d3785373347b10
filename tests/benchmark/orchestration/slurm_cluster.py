"""A real, throw-away, single-node Slurm cluster for tests.

``single_node_cluster(workdir)`` starts ``munged``, ``slurmctld`` and ``slurmd`` (Debian packages
``slurm-wlm`` and ``munge``) as child processes of the test process, configured under ``workdir``
(slurm.conf, state, spool, logs in ``workdir/log``); the module-scoped ``slurm_cluster`` fixture wraps
it and skips with ``slurm_available()``'s reason when the packages (or root) are missing.

Outside ``workdir`` (all removed on exit):

* a private munged runtime dir ``/tmp/slurm-test-munge-*`` (socket, pid, seed file): munged runs as
  the key's owner (user ``munge``), who cannot enter pytest's 0700 tmp dirs;
* ``/etc/munge/munge.key`` (and ``/etc/munge``) only if they did not exist before.

Nothing is written under ``/etc/slurm``: the daemons get ``-f <conf>`` and every process gets
``SLURM_CONF``; ports are picked free, so a system Slurm/munge keeps running undisturbed.

Accounting is off (no slurmdbd), so the real ``sacct`` only says "accounting storage is disabled"
and submitit would see every job as UNKNOWN (``job.result()`` still works: it polls for the result
pickle, but a cancelled or killed job would never look done). With ``sacct_shim=True`` (default)
``env["PATH"]`` starts with ``workdir/bin`` holding a small ``sacct`` that answers submitit's
``sacct -o JobID,State,NodeList --parsable2 -j ID`` from the controller's job table
(``squeue -t all``; finished jobs are kept ``MinJobAge=3600`` s). Each cluster started by one
process gets its own job id range (``FirstJobId``): submitit caches job states by id process-wide.

Clients: pass ``cluster.env`` (a full environment: inherited SLURM_*/SBATCH_* dropped, SLURM_CONF and
PATH set) to subprocesses, or wrap library calls (submitit reads os.environ) in ``cluster.activated()``.

Processes: each daemon is a session leader tracked by pid, and everything started carries the
environment variable ``TEST_SLURM_CLUSTER_ID=<token>``. Teardown (also when the body or the start-up
raises; atexit as a last resort) scancels all jobs, SIGTERMs/SIGKILLs slurmd, slurmctld (with
slurmscriptd) and munged, kills any process still carrying the token (slurmstepd, job processes
that escaped), and reaps the orphans: the test process is a child subreaper while the cluster runs,
so nothing is left as a zombie for an init that reaps late. Daemons also get PR_SET_PDEATHSIG, so
they die if the test process is SIGKILLed (job processes may then survive). Requires root.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import grp
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

try:
    import pytest
except ImportError:  # the --watchdog helper (and plain scripts) can run without pytest
    pytest = None

REQUIRED_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "srun")
OPTIONAL_BINARIES = ("sacct", "scontrol", "munge")  # used when present, never required
MUNGE_KEY = Path("/etc/munge/munge.key")
MARKER_VAR = "TEST_SLURM_CLUSTER_ID"
# variables that would make the clients think they are inside another Slurm job or change defaults
_CLIENT_VAR_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SQUEUE_", "SINFO_", "SACCT_", "SCANCEL_")
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37
# job ids restart with every fresh StateSaveLocation; submitit's job-state watcher is a process-wide
# singleton that caches finished ids, so each cluster started by this process gets its own id range
_cluster_counter = itertools.count()


class SlurmClusterError(RuntimeError):
    """The cluster did not come up (the message carries the daemon log tails)."""


def slurm_available() -> str | None:
    """None if ``single_node_cluster`` can run here, else why not."""
    if not sys.platform.startswith("linux"):
        return f"slurm test cluster needs Linux, not {sys.platform}"
    missing = [b for b in REQUIRED_BINARIES if shutil.which(b, path=_sbin_path()) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "slurm test cluster needs root (SlurmUser=root, munge key and socket ownership)"
    if not MUNGE_KEY.exists():
        try:
            pwd.getpwnam("munge")
        except KeyError:
            return f"{MUNGE_KEY} is absent and there is no 'munge' user to own a new key"
    return None


def _sbin_path(path: str | None = None) -> str:
    """PATH with the sbin dirs (where Debian puts the daemons) appended if missing."""
    parts = (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep)
    parts = [p for p in parts if p]
    for extra in ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"):
        if extra not in parts:
            parts.append(extra)
    return os.pathsep.join(parts)


def _which(name: str) -> str:
    found = shutil.which(name, path=_sbin_path())
    if found is None:
        raise SlurmClusterError(f"{name} not found (apt-get install slurm-wlm munge)")
    return found


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _mem_total_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"  <{path}: {e}>"
    return "\n".join("  " + line for line in text[-lines:]) or "  <empty>"


try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the daemon if the test process dies without running teardown."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


SACCT_SHIM = '''#!{python} -I
"""sacct stand-in for a Slurm cluster without accounting storage (tests/benchmark/orchestration/slurm_cluster.py).

Supports what submitit asks: sacct -o JobID,State,NodeList --parsable2 -j ID [-j ID ...].
Answers from the controller's job table (squeue -t all), which keeps finished jobs MinJobAge s.
"""
import subprocess, sys

FIELDS = {{"jobid": "%i", "jobidraw": "%A", "jobname": "%j", "state": "%T", "nodelist": "%N",
          "partition": "%P", "user": "%u", "account": "%a", "arrayjobid": "%F", "arraytaskid": "%K"}}
args, fmt, ids, sep, header, trailing = sys.argv[1:], "JobID,JobName,Partition,State", [], None, True, ""
while args:
    a = args.pop(0)
    val = None
    if "=" in a and a.startswith("--"):
        a, val = a.split("=", 1)
    if a in ("-o", "--format"):
        fmt = val if val is not None else args.pop(0)
    elif a in ("-j", "--jobs"):
        ids += (val if val is not None else args.pop(0)).split(",")
    elif a in ("-P", "--parsable2"):
        sep = "|"
    elif a in ("-p", "--parsable"):
        sep, trailing = "|", "|"
    elif a in ("-n", "--noheader"):
        header = False
names = [f.split("%")[0] for f in fmt.split(",") if f]
out = subprocess.run(["squeue", "-t", "all", "-r", "-h", "-o", "%i|%A|%F|" + "|".join(
    FIELDS.get(n.lower(), "%%") for n in names)], capture_output=True, text=True)
if out.returncode:
    sys.stderr.write(out.stderr)
    sys.exit(out.returncode)
rows = []
for line in out.stdout.splitlines():
    jid, raw, array_id, *values = line.split("|")
    if ids and not {{jid, raw, array_id}} & set(ids):
        continue
    rows.append([v if n.lower() in FIELDS else "" for n, v in zip(names, values)])
if header:
    rows.insert(0, names)
for row in rows:
    print((sep or " ").join(row if sep else [v.ljust(12) for v in row]) + trailing)
'''


@dataclass
class SlurmCluster:
    """A running single-node cluster; use ``env`` (or ``activated()``) for every client call."""

    conf: Path
    env: dict[str, str]
    partition: str
    node: str
    workdir: Path
    log_dir: Path
    cpus: int
    startup_s: float = 0.0
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    # -- plumbing -------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster; returns the CompletedProcess."""
        proc = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, list(cmd), proc.stdout, proc.stderr)
        return proc

    @contextlib.contextmanager
    def activated(self) -> Iterator["SlurmCluster"]:
        """Temporarily make os.environ the client environment (for libraries such as submitit)."""
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            yield self
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # -- jobs ------------------------------------------------------------------------------
    def sbatch(self, *args: str) -> str:
        """sbatch --parsable with the given arguments; returns the job id."""
        out = self.run("sbatch", "--parsable", *args).stdout.strip()
        return out.split(";")[0]

    def sbatch_wrap(self, cmd: str, *args: str, output: str | Path | None = None) -> str:
        """Submit ``sbatch --wrap cmd`` to the test partition; returns the job id.

        Output goes to ``<workdir>/jobs/slurm-%j.out`` unless ``output`` is given; extra
        sbatch options (``--array=0-2``, ``-J name`` ...) go in ``args``.
        """
        jobs = self.workdir / "jobs"
        jobs.mkdir(exist_ok=True)
        out = str(output) if output is not None else str(jobs / "slurm-%j.out")
        return self.sbatch("-p", self.partition, "-D", str(jobs), "-o", out, *args, "--wrap", cmd)

    def squeue_ids(self) -> list[str]:
        """Ids of jobs still pending/running/completing (array tasks listed one by one)."""
        out = self.run("squeue", "-h", "-r", "-o", "%i").stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def job_states(self) -> dict[str, str]:
        """id -> state of every job the controller still remembers, finished ones included."""
        out = self.run("squeue", "-h", "-r", "-t", "all", "-o", "%i|%T").stdout
        return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)

    def scancel(self, *job_ids: str) -> None:
        if job_ids:
            self.run("scancel", *job_ids)

    def wait_empty(self, timeout: float = 60, poll: float = 0.5) -> None:
        """Block until no job is pending or running; TimeoutError (with squeue) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            ids = self.squeue_ids()
            if not ids:
                return
            if time.monotonic() > deadline:
                queue = self.run("squeue", check=False).stdout
                raise TimeoutError(f"jobs still queued after {timeout}s: {ids}\n{queue}")
            time.sleep(poll)

    def wait_gone(self, job_id: str, timeout: float = 60, poll: float = 0.5) -> None:
        """Block until ``job_id`` (or every task of array ``job_id``) has left the queue."""
        deadline = time.monotonic() + timeout
        while any(i == job_id or i.startswith(f"{job_id}_") for i in self.squeue_ids()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still queued after {timeout}s")
            time.sleep(poll)

    def log_tails(self, lines: int = 25) -> str:
        return "\n".join(f"--- {p}\n{_tail(p, lines)}" for p in sorted(self.log_dir.glob("*")) if p.is_file())


# ------------------------------------------------------------------------------------------
# start / stop
# ------------------------------------------------------------------------------------------

def _write_conf(workdir: Path, *, node: str, cpus: int, real_memory: int, ports: Sequence[int],
                munge_socket: Path, cluster_name: str, first_job_id: int) -> Path:
    state, spool, logs = workdir / "state", workdir / "spool", workdir / "log"
    for d in (state, spool, logs):
        d.mkdir(parents=True, exist_ok=True)
    plugstack = workdir / "plugstack.conf"
    plugstack.write_text("# empty: keep /etc/slurm/plugstack.conf* out of the test cluster\n")
    conf = workdir / "slurm.conf"
    conf.write_text(f"""\
# single-node test cluster written by tests/benchmark/orchestration/slurm_cluster.py
ClusterName={cluster_name}
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={workdir}/slurmctld.pid
SlurmdPidFile={workdir}/slurmd.pid
SlurmctldLogFile={logs}/slurmctld.log
SlurmdLogFile={logs}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={plugstack}
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
FirstJobId={first_job_id}
KillWait=5
InactiveLimit=0
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} Sockets=1 CoresPerSocket={cpus} ThreadsPerCore=1 \
    RealMemory={real_memory} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


class _Teardown:
    """LIFO cleanup stack that runs at most once (context exit, or atexit as a last resort)."""

    def __init__(self) -> None:
        self._callbacks: list[tuple[str, Callable[[], None]]] = []
        self.errors: list[str] = []

    def push(self, what: str, fn: Callable[[], None]) -> None:
        self._callbacks.append((what, fn))

    def __call__(self) -> None:
        while self._callbacks:
            what, fn = self._callbacks.pop()
            try:
                fn()
            except Exception as e:  # keep going: the remaining steps must still run
                self.errors.append(f"{what}: {e!r}")


def _stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the daemon's process group (it is a session leader), then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # the leader may be gone while helpers of its group (slurmscriptd) are not
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _tagged_pids(token: str, workdir: Path) -> list[int]:
    """Pids of this cluster: the environment carries its marker (daemons, job processes), or it is a
    slurmstepd (which overwrites its environ with its process title) working in ``workdir``."""
    needle = f"{MARKER_VAR}={token}".encode()
    prefix = f"{workdir}/"
    skip = {os.getpid()}
    pid = os.getpid()
    while pid > 1:  # never the test process or its ancestors
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        skip.add(pid)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
            elif os.path.basename(os.readlink(entry / "exe")).startswith("slurmstepd"):
                links = [os.readlink(entry / "cwd")]
                links += [os.readlink(fd) for fd in (entry / "fd").iterdir()]
                if any(link.startswith(prefix) for link in links):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _kill_tagged(token: str, workdir: Path, seen: set[int], term_wait: float = 5) -> list[int]:
    """SIGTERM, then SIGKILL, this cluster's processes; returns the pids still alive."""
    pids = _tagged_pids(token, workdir)
    seen.update(pids)
    for sig, wait in ((signal.SIGTERM, term_wait), (signal.SIGKILL, 10)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            if pids:
                time.sleep(0.2)
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _ensure_munge_key(teardown: _Teardown, watchdog: "_Watchdog") -> Path:
    """Use /etc/munge/munge.key; create it (munge:munge 0600) only if absent, and undo that."""
    if MUNGE_KEY.exists():
        return MUNGE_KEY
    munge_pw = pwd.getpwnam("munge")
    if not MUNGE_KEY.parent.exists():
        MUNGE_KEY.parent.mkdir(mode=0o700)
        watchdog.note("rmdir", MUNGE_KEY.parent)
        os.chown(MUNGE_KEY.parent, munge_pw.pw_uid, munge_pw.pw_gid)
        teardown.push(f"rmdir {MUNGE_KEY.parent}", lambda: MUNGE_KEY.parent.rmdir())
    fd = os.open(MUNGE_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    watchdog.note("rm", MUNGE_KEY)
    teardown.push(f"rm {MUNGE_KEY}", lambda: MUNGE_KEY.unlink(missing_ok=True))
    try:
        os.write(fd, os.urandom(128))  # 1024-bit key, what Debian's postinst creates
        os.fchown(fd, munge_pw.pw_uid, munge_pw.pw_gid)
    finally:
        os.close(fd)
    return MUNGE_KEY


def _spawn(name: str, cmd: list[str], env: dict[str, str], logs: Path, procs: dict,
           teardown: _Teardown, **kwargs) -> subprocess.Popen:
    out = open(logs / f"{name}.stdout", "ab")
    try:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent, cwd=logs, **kwargs)
    finally:
        out.close()
    procs[name] = proc
    teardown.push(f"stop {name}", lambda: _stop_process(proc))
    return proc


def _start_error(msg: str, logs: Path, procs: dict) -> SlurmClusterError:
    status = ", ".join(f"{n}: {'running' if p.poll() is None else f'exited {p.returncode}'}"
                       for n, p in procs.items())
    tails = "\n".join(f"--- {p}\n{_tail(p)}" for p in sorted(logs.glob("*")) if p.is_file())
    return SlurmClusterError(f"{msg}\n[{status}]\n{tails}")


def _wait_for(what: str, check: Callable[[], bool], timeout: float, logs: Path, procs: dict) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        dead = [n for n, p in procs.items() if p.poll() is not None]
        if dead:
            raise _start_error(f"{', '.join(dead)} exited while waiting for {what}", logs, procs)
        if time.monotonic() > deadline:
            raise _start_error(f"timed out after {timeout:.0f}s waiting for {what}", logs, procs)
        time.sleep(0.3)


@contextlib.contextmanager
def single_node_cluster(workdir: Path, cpus: int = 2, *, real_memory_mb: int | None = None,
                        start_timeout: float = 90, sacct_shim: bool = True) -> Iterator[SlurmCluster]:
    """Start munged + slurmctld + slurmd configured under ``workdir``; stop them all on exit."""
    reason = slurm_available()
    if reason is not None:
        raise SlurmClusterError(reason)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if len(str(workdir)) > 70:  # slurmd puts unix sockets <spool>/<node>_<job>.<step> (108 byte limit)
        raise SlurmClusterError(f"workdir path too long for slurmd's unix sockets: {workdir}")
    logs = workdir / "log"
    logs.mkdir(exist_ok=True)
    node = socket.gethostname().split(".")[0]  # == `hostname -s`
    token = uuid.uuid4().hex
    procs: dict[str, subprocess.Popen] = {}
    teardown = _Teardown()
    atexit.register(teardown)
    ours: set[int] = set()  # pids seen carrying the marker; teardown waits until they are reaped
    t0 = time.monotonic()
    try:
        # teardown runs LIFO, so these run last: kill whatever still carries this cluster's marker
        # (slurmstepd, escaped job processes), reap the orphans we inherited as subreaper, unset
        # that, stop the watchdog
        watchdog = _Watchdog(token, workdir)  # cleans up if we die without teardown (SIGTERM/SIGKILL)
        teardown.push("stop watchdog", watchdog.stop)
        reaper = _subreaper()
        reaper.__enter__()
        teardown.push("unset subreaper", lambda: reaper.__exit__(None, None, None))
        teardown.push("reap orphans", lambda: _reap_orphans(ours, procs))
        teardown.push("kill leftovers", lambda: _report_leftovers(_kill_tagged(token, workdir, ours)))

        # -- munge ----------------------------------------------------------------------
        key = _ensure_munge_key(teardown, watchdog)
        key_stat = key.stat()
        munge_user = pwd.getpwuid(key_stat.st_uid).pw_name  # munged insists on owning the key
        runtime = Path(tempfile.mkdtemp(prefix="slurm-test-munge-", dir="/tmp"))
        watchdog.note("rm", runtime)
        teardown.push(f"rm -r {runtime}", lambda: shutil.rmtree(runtime, ignore_errors=True))
        os.chown(runtime, key_stat.st_uid, key_stat.st_gid)
        os.chmod(runtime, 0o711)  # munged: socket dir must be executable by all, writable by owner only
        munge_socket = runtime / "munge.socket"

        base_env = {k: v for k, v in os.environ.items() if not k.startswith(_CLIENT_VAR_PREFIXES)}
        base_env[MARKER_VAR] = token
        base_env["PATH"] = _sbin_path(base_env.get("PATH"))
        _spawn("munged", [_which("munged"), "--foreground", f"--socket={munge_socket}", f"--key-file={key}",
                          f"--log-file={runtime / 'munged.log'}", f"--pid-file={runtime / 'munged.pid'}",
                          f"--seed-file={runtime / 'munged.seed'}"],
               base_env, logs, procs, teardown, user=munge_user,
               group=grp.getgrgid(key_stat.st_gid).gr_name, extra_groups=[])

        def munge_ok() -> bool:
            if not munge_socket.exists():
                return False
            if shutil.which("munge") is None:
                return True
            return subprocess.run(["munge", "-n", "-S", str(munge_socket)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0

        _wait_for("munged", munge_ok, start_timeout, logs, procs)

        # -- slurm ----------------------------------------------------------------------
        conf = _write_conf(workdir, node=node, cpus=cpus, real_memory=real_memory_mb or _mem_total_mb(),
                           ports=_free_ports(2), munge_socket=munge_socket,
                           cluster_name=f"test{token[:8]}",
                           first_job_id=1 + 100_000 * (next(_cluster_counter) % 600))
        env = dict(base_env, SLURM_CONF=str(conf))
        if sacct_shim:
            bindir = workdir / "bin"
            bindir.mkdir(exist_ok=True)
            shim = bindir / "sacct"
            shim.write_text(SACCT_SHIM.format(python=sys.executable))
            shim.chmod(0o755)
            env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"

        cluster = SlurmCluster(conf=conf, env=env, partition="debug", node=node, workdir=workdir,
                               log_dir=logs, cpus=cpus, _procs=procs)
        _spawn("slurmctld", [_which("slurmctld"), "-D", "-f", str(conf)], env, logs, procs, teardown)
        _spawn("slurmd", [_which("slurmd"), "-D", "-f", str(conf), "-N", node], env, logs, procs, teardown)
        # first thing on exit: note our pids, then scancel what is left while the daemons still run
        teardown.push("cancel jobs", lambda: _cancel_all(cluster))
        teardown.push("note pids", lambda: ours.update(_tagged_pids(token, workdir)))

        def node_idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%t"], env=env,
                                 capture_output=True, text=True)
            return out.returncode == 0 and out.stdout.strip() == "idle"

        _wait_for(f"node {node} to be idle in sinfo", node_idle, start_timeout, logs, procs)
        cluster.startup_s = time.monotonic() - t0
        yield cluster
    except BaseException:
        teardown()
        atexit.unregister(teardown)
        if teardown.errors:  # do not mask the original error
            print("slurm test cluster teardown problems:\n  " + "\n  ".join(teardown.errors), file=sys.stderr)
        raise
    else:
        teardown()
        atexit.unregister(teardown)
        if teardown.errors:
            raise SlurmClusterError("teardown problems:\n  " + "\n  ".join(teardown.errors))


class _Watchdog:
    """A helper process in its own session that outlives us: it reads what we created from a pipe,
    and if the pipe closes without "done" (the test process was SIGTERMed/SIGKILLed, so no teardown
    ran) it kills every process carrying the cluster's token and removes those files."""

    def __init__(self, token: str, workdir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != MARKER_VAR}
        cmd = [sys.executable, "-I", str(Path(__file__).resolve()), "--watchdog", token, str(workdir)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, env=env, text=True)

    def note(self, action: str, path: Path) -> None:
        with contextlib.suppress(OSError, ValueError):  # a dead watchdog only loses the safety net
            self.proc.stdin.write(f"{action} {path}\n")
            self.proc.stdin.flush()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write("done\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _watchdog_main(token: str, workdir: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C goes to pytest; we act once its pipe closes
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    lines = sys.stdin.read().splitlines()  # blocks until the test process closes the pipe or dies
    if lines and lines[-1] == "done":
        return 0
    time.sleep(1)  # let PR_SET_PDEATHSIG take the daemons down first
    _kill_tagged(token, Path(workdir), set())
    for line in reversed(lines):
        action, _, path = line.partition(" ")
        with contextlib.suppress(OSError):
            if action == "rm" and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif action == "rm":
                os.unlink(path)
            elif action == "rmdir":
                os.rmdir(path)
    return 0


def _cancel_all(cluster: SlurmCluster) -> None:
    if cluster._procs.get("slurmctld") is None or cluster._procs["slurmctld"].poll() is not None:
        return
    ids = cluster.squeue_ids()
    if ids:
        cluster.run("scancel", *ids, check=False)
        with contextlib.suppress(TimeoutError):
            cluster.wait_empty(timeout=30)


def _zombie_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            found.append(int(entry.name))
    return found


def _reap_orphans(pids: set[int], spawned: dict[str, subprocess.Popen], timeout: float = 10) -> None:
    """Reap what was orphaned to us (slurmstepd, slurmscriptd, job steps: we are their subreaper),
    then wait until the pids we saw are gone from the process table, not just zombies."""
    own = {p.pid for p in spawned.values()} | {p.pid for p in getattr(subprocess, "_active", [])}
    deadline = time.monotonic() + timeout
    while True:
        for pid in _zombie_children():
            if pid not in own:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
        if not any(Path(f"/proc/{p}").exists() for p in pids) or time.monotonic() > deadline:
            return
        time.sleep(0.2)


_subreaper_users = 0  # clusters running in this process (the flag is process-wide)


@contextlib.contextmanager
def _subreaper() -> Iterator[None]:
    """Make this process the reaper of orphaned descendants while a cluster runs, so that
    slurmstepd & co. do not end up as zombies under an init that reaps late (or never)."""
    global _subreaper_users
    prev = ctypes.c_int(0)
    if _libc is None or _libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(prev)) != 0:
        yield  # no prctl: init reaps
        return
    _subreaper_users += 1
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield
    finally:
        _subreaper_users -= 1
        if _subreaper_users == 0 and not prev.value:
            _libc.prctl(_PR_SET_CHILD_SUBREAPER, 0)


def _report_leftovers(pids: list[int]) -> None:
    if pids:
        raise RuntimeError(f"processes survived SIGKILL: {pids}")


if pytest is not None:
    @pytest.fixture(scope="module")
    def slurm_cluster(tmp_path_factory: "pytest.TempPathFactory") -> Iterator[SlurmCluster]:
        """A running single-node Slurm cluster (module scope); skipped without slurm-wlm/munge."""
        reason = slurm_available()
        if reason is not None:
            if os.environ.get("CI") == "true":  # scripts/setup.sh --test installs slurm-wlm and munge
                pytest.fail(f"Slurm cluster unavailable in CI: {reason}")
            pytest.skip(reason)
        with single_node_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
            yield cluster


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    sys.exit(_watchdog_main(sys.argv[2], sys.argv[3]))
