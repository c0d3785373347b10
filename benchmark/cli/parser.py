"""The command line: one sub-parser per command, every flag with its help.

The help of a flag that sets a run-config field (or a Slurm launcher option) is that field's own
docstring and valid range (benchmark/config/run.py, benchmark/orchestration/slurm_options.py), so
the two cannot disagree; flags that take a registry name say how to
list the valid names (``runner.py ls --datasets``, ``--models``, ``--methods``, ``--presets``).
"""
from __future__ import annotations

import argparse

from benchmark.config.run import NoiseConfig, RunConfig, field_help
from benchmark.errors import UsageError
from benchmark.orchestration.slurm_options import SlurmOptions

__all__ = ["build_parser", "base_from_args"]

LISTING = ("each command's flags: runner.py COMMAND --help; the valid names of datasets, models, "
           "methods and presets: runner.py ls --datasets | --models | --methods | --presets")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad invocation is a UsageError (one message, exit 2, JSON with --json), and
    no abbreviated flags: "--epoch 1" is refused, not read as --epochs."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(f"{message} (see: python {self.prog} --help)")


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds expects a comma-separated list of ints, got '{text}'")


def _run(name: str) -> str:
    """A run-config field's help: its docstring and valid range (the dataset, model and method
    docstrings name the listing command of their registry)."""
    return field_help(RunConfig, name)


def _noise(name: str) -> str:
    return field_help(NoiseConfig, name)


def _slurm(name: str) -> str:
    """A --slurm-* flag's help: the option's docstring and valid range (orchestration/slurm_options.py)."""
    return field_help(SlurmOptions, name)


# ----- flags shared by several commands -------------------------------------------------------

def _dataset_flag(p: argparse.ArgumentParser, **kw) -> None:
    p.add_argument("--dataset", help=_run("dataset"), **kw)


def _model_flag(p: argparse.ArgumentParser, **kw) -> None:
    p.add_argument("--model", help=_run("model"), **kw)


def _method_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help=_run("method"))


def _noise_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noise", dest="noise_kind", help=_noise("kind"))
    p.add_argument("--rate", type=float, help=_noise("rate"))
    p.add_argument("--human-set", help=_noise("human_set"))
    p.add_argument("--noise-mode", choices=["bernoulli", "exact"], help=_noise("mode"))
    p.add_argument("--allow-unlearnable", action="store_true", default=None, help=_noise("allow_unlearnable"))
    p.add_argument("--noise-file", help=_noise("file"))


def _runs_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", default="runs", help="run store directory (default: runs)")


def _data_dir_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help=_run("data_dir"))


def _device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help=_run("device"))


def _set_flag(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")


def _wandb_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wandb", choices=["offline", "online", "disabled"],
                   help="W&B mirror (default: $WANDB_MODE, else offline; online needs `wandb login`)")


def _plugin_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="load a plugin (a module name, or a .py file) that registers methods, datasets "
                        "or models; repeatable. Installed plugins (entry point group "
                        "noisy_label_bench.plugins) load by themselves")


def _storage_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite:///RUNS/optuna.db; "
                                     "postgresql://USER@HOST/DB with the password in PGPASSWORD or ~/.pgpass)")


# ----- the commands ---------------------------------------------------------------------------

def _add_run(sub) -> None:
    r = sub.add_parser("run", help="train one run (one cell, one seed)", description=LISTING)
    _dataset_flag(r)
    _model_flag(r)
    _method_flag(r)
    _noise_flags(r)
    r.add_argument("--seed", type=int, help=_run("seed"))
    r.add_argument("--epochs", type=int, help=_run("epochs"))
    r.add_argument("--subset", type=int, help=_run("subset"))
    r.add_argument("--config", help="TOML file with RunConfig fields")
    _set_flag(r, "override any config field, e.g. optim.lr=0.1, hp.q=0.5 (repeatable)")
    _device_flag(r)
    _data_dir_flag(r)
    _runs_flag(r)
    _json_flag(r)
    _wandb_flag(r)
    _plugin_flag(r)


def _add_grid(sub) -> None:
    g = sub.add_parser("grid", help="run a preset or grid file: cells x seeds, skipping finished runs",
                       description=LISTING)
    g.add_argument("preset", help="preset name (benchmark/config/presets; runner.py ls --presets) or path "
                                  "to a .toml grid")
    g.add_argument("--seeds", type=_seeds, help="comma-separated seeds, e.g. 0,1,2 (default: the preset's)")
    _set_flag(g, "override for every cell (repeatable)")
    _runs_flag(g)
    _data_dir_flag(g)
    _device_flag(g)
    g.add_argument("--dry-run", action="store_true", help="list the runs and their status, train nothing")
    g.add_argument("--tuned", metavar="STUDY", help="use the best parameters of this tuning study for its method")
    g.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: fill the machine: on CPU, cores / threads "
                        "per run; on a GPU, 1). 0 or 1: sequential, in this process")
    g.add_argument("--storage", help="run the grid as a study on this storage (workers elsewhere may join)")
    g.add_argument("--study", help="study name for --workers/--storage (default grid-PRESET)")
    g.add_argument("--no-report", action="store_true", help="do not build the report at the end")
    g.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: workers on this machine (--workers); slurm: submit the workers as a "
                        "Slurm job array with submitit (they share --storage, default the store's SQLite)")
    g.add_argument("--slurm-jobs", type=int, default=SlurmOptions.jobs, help=_slurm("jobs"))
    g.add_argument("--slurm-partition", default=SlurmOptions.partition, help=_slurm("partition"))
    g.add_argument("--slurm-account", default=SlurmOptions.account, help=_slurm("account"))
    g.add_argument("--slurm-gpus-per-job", type=int, default=SlurmOptions.gpus_per_job, help=_slurm("gpus_per_job"))
    g.add_argument("--slurm-cpus-per-job", type=int, default=SlurmOptions.cpus_per_job, help=_slurm("cpus_per_job"))
    g.add_argument("--slurm-array-parallelism", type=int, default=SlurmOptions.array_parallelism,
                   help=_slurm("array_parallelism"))
    g.add_argument("--slurm-time-min", type=int, default=SlurmOptions.time_min, help=_slurm("time_min"))
    g.add_argument("--slurm-mem-gb", type=float, default=SlurmOptions.mem_gb, help=_slurm("mem_gb"))
    _json_flag(g)
    _wandb_flag(g)
    _plugin_flag(g)


def _add_noise(sub) -> None:
    n = sub.add_parser("noise", help="build (or load) a noise artifact and print it", description=LISTING)
    _dataset_flag(n, default="fashion_mnist")
    _noise_flags(n)
    n.add_argument("--seed", type=int, default=0, help="base seed (the run's noise stream is derived from it)")
    n.add_argument("--export", help="write the artifact to this .npz file")
    _runs_flag(n)
    _data_dir_flag(n)
    _json_flag(n)
    _plugin_flag(n)


def _add_tune(sub) -> None:
    t = sub.add_parser("tune", help="tune a method's hyperparameters with Optuna (noisy-validation objective)",
                       description=LISTING)
    t.add_argument("--show", metavar="NAME", help="print the best parameters and the trials of study NAME")
    _method_flag(t)
    _dataset_flag(t)
    _model_flag(t)
    _noise_flags(t)
    t.add_argument("--trials", type=int, default=20, help="trials to finish (default 20)")
    t.add_argument("--seeds", type=int, default=3, help="seeds per trial; the objective averages them (default 3)")
    t.add_argument("--epochs", type=int, help=_run("epochs"))
    t.add_argument("--subset", type=int, help=_run("subset"))
    t.add_argument("--param", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="search range (name=low:high[:log] or name=a,b,c); overrides the method's space")
    t.add_argument("--only-params", action="store_true",
                   help="search only the --param settings (the method's declared space is left out; "
                        "everything else stays at the base config)")
    _set_flag(t, "fixed config override (repeatable)")
    t.add_argument("--config", help="TOML file with RunConfig fields")
    t.add_argument("--preset", help="tune on this preset's protocol: its [base], [hp.X] and matching "
                                    "[[override]]s, with the noise setting of --noise/--rate (needed "
                                    "when the preset has several); other flags override the preset")
    _storage_flag(t)
    t.add_argument("--study", help="study name (default: derived from the method and setting)")
    t.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in this process)")
    t.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"],
                   help="stops unpromising trials early on the best noisy-validation accuracy so far "
                        "(default median)")
    t.add_argument("--sampler-seed", type=int, default=0, help="TPE seed (recorded in the study)")
    _runs_flag(t)
    _data_dir_flag(t)
    _device_flag(t)
    _json_flag(t)
    _wandb_flag(t)
    _plugin_flag(t)


def _add_worker(sub) -> None:
    w = sub.add_parser("worker", help="execute trials of a study until it is done (one per process)")
    w.add_argument("--study", required=True, help="the study's name (a grid's or a tuning search's)")
    _storage_flag(w)
    _runs_flag(w)
    _json_flag(w)
    _wandb_flag(w)
    _plugin_flag(w)


def _add_report(sub) -> None:
    rp = sub.add_parser("report", help="build tables, figures and the leaderboard site from the store")
    _runs_flag(rp)
    rp.add_argument("--out", help="output directory (default RUNS/report)")
    rp.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                    help="keep runs whose column (method, dataset, noise, noise_label, protocol, model, "
                         "seed, run_id) matches; repeatable (the same key ORs its values, keys AND); a "
                         "method name also matches its labelled rows (obd: obd[sparsity=0.57])")
    rp.add_argument("--include-tuning", action="store_true",
                    help="also tabulate runs on tuning seeds (1000 and above: tune's trials); left out by "
                         "default, since a study keeps the runs it chose on noisy validation")
    rp.add_argument("--study", action="append", metavar="NAME",
                    help="instead: plots of the Optuna study NAME (history, importances, sparsity with "
                         "the seeds' spread); repeatable, and a pattern such as 'verdict-*' matches "
                         "study names; several studies add a side-by-side sparsity sensitivity")
    _storage_flag(rp)
    _json_flag(rp)
    _wandb_flag(rp)


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="time epochs of each method and the data pipeline (for docs/BENCHMARKS.md)",
                       description=LISTING)
    b.add_argument("--preset", help="time this preset's protocol (its base settings, evaluation included)")
    _dataset_flag(b, default="fashion_mnist")
    _model_flag(b, default="lenet")
    b.add_argument("--methods", default="ce", help="comma-separated methods to time (runner.py ls --methods)")
    b.add_argument("--subset", type=int, help="training subset (default 10000, or the preset's)")
    b.add_argument("--epochs", type=int, default=5,
                   help="epochs per method (>= 3): the first is left out, the middle ones timed, the last counts FLOPs")
    b.add_argument("--batch-size", type=int, default=128, help=_run("batch_size"))
    b.add_argument("--device", default="auto", help=_run("device"))
    b.add_argument("--threads", type=int, default=1, help="torch threads per run (the run setting `threads`)")
    _set_flag(b, "override a run setting (repeatable)")
    b.add_argument("--rounds", type=int, default=1,
                   help="time every method this many times, in rotated order, and report medians and "
                   "the spread between rounds (use 3 or more on a shared machine)")
    b.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers of the per-sample baseline")
    b.add_argument("--precision", default="fp32", help="fp32 or bf16 (autocast forward passes, fp32 losses)")
    b.add_argument("--channels-last", action="store_true", help="channels-last networks and batches")
    b.add_argument("--val-frac", type=float,
                   help="held-out noisy validation fraction (default 0.1 or the preset's; 0: every training image)")
    b.add_argument("--no-loader", action="store_true", help="skip the per-sample DataLoader comparison")
    b.add_argument("--strong", action="store_true",
                   help="also time the strong views (AutoAugment, RandAugment) against torchvision's "
                   "per-sample pipeline")
    b.add_argument("--streaming", action="store_true",
                   help="instead: images/s of a real-world dataset's data paths (in memory, streamed "
                   "from its files, from a pack, torchvision's per-sample DataLoader); with --dataset, "
                   "--data-dir, --images, --batch-size, --loader-workers, --device")
    b.add_argument("--data-dir", help="--streaming: where the dataset is")
    b.add_argument("--images", type=int, default=2048, help="--streaming: training images to read")
    b.add_argument("--tmp", help="where the fresh temporary store is made (default: the system's "
                   "temporary directory); only the directory bench creates is removed")
    _json_flag(b)
    _plugin_flag(b)


def _add_ls(sub) -> None:
    ls = sub.add_parser("ls", help="list the runs in the store and what each incomplete one is; or the "
                                   "valid names of datasets, models, methods and presets")
    _runs_flag(ls)
    _json_flag(ls)
    ls.add_argument("--prune", action="store_true",
                    help="remove abandoned run folders (no result, no checkpoint, no failure record, "
                         "not running); finished, failed, stopped and resumable runs are kept")
    ls.add_argument("--datasets", action="store_true",
                    help="instead: the registered datasets (and folder:PATH, list:FILE)")
    ls.add_argument("--models", action="store_true", help="instead: the registered models and what each needs")
    ls.add_argument("--methods", action="store_true", help="instead: the registered methods (X+obd for every X)")
    ls.add_argument("--presets", action="store_true", help="instead: the presets (benchmark/config/presets)")


def _add_merge(sub) -> None:
    mg = sub.add_parser("merge", help="bring finished runs from other stores into one (verified, never "
                                      "duplicated; sources are only read)")
    mg.add_argument("sources", nargs="+", metavar="SRC", help="run stores to read (e.g. copied from other machines)")
    mg.add_argument("--into", required=True, metavar="DIR", help="the store to bring the runs into")
    mg.add_argument("--dry-run", action="store_true", help="say what would be copied, write nothing")
    _json_flag(mg)


def _add_pack(sub) -> None:
    pk = sub.add_parser("pack", help="decode a real-world dataset once into memory-mapped arrays "
                                     "(fast random access for the streaming data path)")
    pk.add_argument("--dataset", required=True,
                    help="clothing1m, food101n, webvision_mini (or its _227 / _224 geometries)")
    pk.add_argument("--data-dir", help="where the dataset is (default: NLB_DATA_DIR, the cache dir)")
    pk.add_argument("--out", help="pack folder (default: <cache dir>/packs/<dataset>@<size>, where "
                                  "runs look for it)")
    _json_flag(pk)
    _plugin_flag(pk)


def _add_check(sub) -> None:
    c = sub.add_parser("check", help="check that a method meets the suite's contract (a plugin's before you "
                                     "spend compute on it): a minute or two on a tiny dataset",
                       description="Runs the contract every built-in method is tested against: one epoch "
                                   "gives finite metrics; the same seed gives the same numbers; a run "
                                   "stopped and resumed equals an uninterrupted one; no clean label "
                                   "reaches the method; declared ranges refuse bad values; X+obd works.")
    c.add_argument("method", help="the method's registered name (runner.py ls --methods for the built-ins)")
    c.add_argument("--only", action="append", default=[], metavar="CHECK",
                   help="run only this check (repeatable): declared, one_epoch, deterministic, resume, "
                        "no_clean_labels, ranges, masked")
    _json_flag(c)
    _plugin_flag(c)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 10_000:
        raise argparse.ArgumentTypeError(f"expects a whole number from 1 to 10000, got '{text}'")
    return n


def _add_verify(sub) -> None:
    v = sub.add_parser("verify", help="re-derive recorded numbers: retrain finished runs from their config.json "
                                      "in a temporary store and compare every metric",
                       description="Retrains the chosen finished runs in a temporary store (the store given "
                                   "is only read) and compares every metric of every epoch and every final "
                                   "figure, times and memory left out: bit for bit where this machine's "
                                   "numerics (settings, torch, CPU/GPU kernel set) equal the run's, else "
                                   "within 1e-5, and it says which. Exit 1 lists the figures that differ.")
    _runs_flag(v)
    v.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="the runs to verify (default: --sample 3)")
    v.add_argument("--sample", type=_positive, metavar="N",
                   help="verify N finished runs of the current code drawn at random (the same N for the same "
                        "store every time), 1 to 10000; default 3 when no RUN_ID is given")
    _data_dir_flag(v)
    _json_flag(v)
    _plugin_flag(v)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="runner.py", description="Benchmark suite for learning with noisy labels.", epilog=LISTING)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for add in (_add_run, _add_grid, _add_noise, _add_tune, _add_worker, _add_report, _add_bench, _add_ls,
                _add_merge, _add_pack, _add_check, _add_verify):
        add(sub)
    return ap


def base_from_args(a: argparse.Namespace) -> dict:
    """The run-config fields the command line sets (flags left out are absent)."""
    base: dict = {}
    for flag, key in (("dataset", "dataset"), ("model", "model"), ("method", "method"),
                      ("seed", "seed"), ("epochs", "epochs"), ("subset", "subset"),
                      ("device", "device"), ("data_dir", "data_dir")):
        v = getattr(a, flag, None)
        if v is not None:
            base[key] = v
    noise = {}
    for flag, key in (("noise_kind", "kind"), ("rate", "rate"), ("human_set", "human_set"),
                      ("noise_mode", "mode"), ("allow_unlearnable", "allow_unlearnable"),
                      ("noise_file", "file")):
        v = getattr(a, flag, None)
        if v is not None:
            noise[key] = v
    if noise.get("kind") in ("none", "human", "twin") and "rate" not in noise:
        noise["rate"] = 0.0
    if noise:
        base["noise"] = noise
    return base
