"""The contract every method meets, as checks a built-in method's tests and ``runner.py check`` share.

``runner.py check METHOD [--plugin ...]`` runs them on a tiny dataset (scikit-learn's digits, the
small CNN, 300 samples, 40% symmetric noise) in a temporary store, in a minute or two, and prints
what failed and why; tests/methods/test_conformance.py runs the same functions on every registered
method. The checks:

- ``declared``: registered, a dataclass Config whose every field is documented, a method card;
- ``one_epoch``: one epoch finishes with finite metrics and accuracies in [0, 1];
- ``deterministic``: the same seed gives the same numbers, another seed other ones;
- ``resume``: a run stopped after an epoch and resumed equals an uninterrupted one;
- ``no_clean_labels``: other clean labels behind the same noisy labels change nothing it does;
- ``ranges``: every declared setting refuses a value outside its range;
- ``masked``: X+obd trains with its classifier's edges masked.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import math
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import numpy as np

from benchmark.config import RunConfig, build_config
from benchmark.data import load_dataset
from benchmark.errors import RunFault, UsageError
from benchmark.store import Store
from benchmark.training import run
from methods import get_method, list_methods, resolve_hp
from methods.params import ConfigError, field_check
from noise import NoiseSpec, build_artifact, save_artifact

__all__ = ["CHECKS", "Outcome", "check", "run_checks", "tiny_config"]


def tiny_config(method: str = "ce", **overrides: Any) -> RunConfig:
    """A run small enough for a check: digits, the small CNN, 2 epochs, 300 samples, sym 40%."""
    base = {"dataset": "digits", "model": "cnn", "method": method, "epochs": 2, "subset": 300,
            "batch_size": 64, "eval_batch_size": 256, "device": "cpu",
            "noise": {"kind": "sym", "rate": 0.4}, "optim": {"lr": 0.05}}
    return build_config(base, [f"{k}={v}" for k, v in overrides.items()])


@dataclass
class Outcome:
    """One check of one method."""

    check: str
    method: str
    ok: bool
    detail: str
    """Why it failed, or what was verified."""
    seconds: float = 0.0


class Failed(RunFault, AssertionError):
    """A check's finding (the message says what differs and where): a fault of the method under
    check (exit 1 if it ever escaped), and an assertion failure where pytest runs the checks."""


def _rows(runs_dir: Path, res: dict[str, Any]) -> list[dict[str, float]]:
    rows = Store(runs_dir).read_metrics(res["run_id"])
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def _same_rows(a: list[dict], b: list[dict], what: str) -> None:
    if len(a) != len(b):
        raise Failed(f"{what}: {len(a)} epochs against {len(b)}")
    for ra, rb in zip(a, b):
        for k in sorted(set(ra) | set(rb)):
            x, y = ra.get(k), rb.get(k)
            if not ((x is not None and y is not None and math.isnan(x) and math.isnan(y)) or x == y):
                raise Failed(f"{what}: epoch {int(ra.get('epoch', 0))} {k} is {x!r} against {y!r}")


# ----- the checks ----------------------------------------------------------------------------------

def check_declared(method: str, tmp: Path) -> str:
    cls = get_method(method)
    if not dataclasses.is_dataclass(cls.Config):
        raise Failed(f"{cls.__name__}.Config is not a dataclass")
    module = sys.modules.get(cls.__module__)
    if "Method card" not in (getattr(module, "__doc__", "") or ""):
        raise Failed(f"module {cls.__module__} has no method card in its docstring (a 'Method card' "
                     f"section: paper, official code checked, defaults and their source, deviations)")
    config = cls.Config
    if getattr(cls, "masked", False):
        config = cls.base_method.Config
    try:
        body = ast.parse(inspect.getsource(config)).body[0].body
    except (OSError, TypeError):
        return "registered; the Config's source is not readable, its docstrings were not checked"
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            nxt = body[i + 1] if i + 1 < len(body) else None
            if not (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)):
                raise Failed(f"{config.__name__}.{node.target.id} has no docstring (say what it does and "
                             f"where its default comes from)")
    return "registered, Config documented, method card present"


def check_one_epoch(method: str, tmp: Path) -> str:
    res = run(tiny_config(method, epochs=1), tmp, wandb="disabled")
    if not res.get("finished"):
        raise Failed("the run did not finish")
    row = _rows(tmp, res)[0]
    for k in ("train/loss", "test/acc", "val_noisy/acc", "memo/noisy_fit", "memo/true_fit"):
        if k not in row or not math.isfinite(row[k]):
            raise Failed(f"{k} is {row.get(k)!r} after one epoch (must be finite)")
    for k in ("test/acc_last", "test/acc_best", "test/acc_at_best_val"):
        if not 0.0 <= res[k] <= 1.0:
            raise Failed(f"{k} = {res[k]!r} is not an accuracy in [0, 1]")
    return f"one epoch: finite metrics, test/acc_last {res['test/acc_last']:.3f}"


def check_deterministic(method: str, tmp: Path) -> str:
    a = run(tiny_config(method), tmp / "a", wandb="disabled")
    b = run(tiny_config(method), tmp / "b", wandb="disabled")
    _same_rows(_rows(tmp / "a", a), _rows(tmp / "b", b), "the same seed twice")
    c = run(tiny_config(method, seed=1), tmp / "c", wandb="disabled")
    if _rows(tmp / "c", c)[-1]["train/loss"] == _rows(tmp / "a", a)[-1]["train/loss"]:
        raise Failed("seed 1 gave exactly seed 0's training loss: the seed does not reach the method")
    return "same seed, same numbers in every figure of every epoch; another seed, other numbers"


def check_resume(method: str, tmp: Path) -> str:
    full = run(tiny_config(method, epochs=3), tmp / "full", wandb="disabled")
    part = run(tiny_config(method, epochs=3), tmp / "part", stop_after=1, wandb="disabled")
    if part.get("finished") or not (tmp / "part" / part["run_id"] / "checkpoint.pt").is_file():
        raise Failed("stop_after=1 left no checkpoint")
    resumed = run(tiny_config(method, epochs=3), tmp / "part", wandb="disabled")
    if resumed["run_id"] != full["run_id"]:
        raise Failed("the resumed run has another run id")
    _same_rows(_rows(tmp / "full", full), _rows(tmp / "part", resumed),
               "stopped after epoch 1 and resumed, against uninterrupted (state_dict / load_state_dict "
               "must hold everything the method carries between epochs)")
    meta = json.loads((tmp / "part" / resumed["run_id"] / "meta.json").read_text())
    if meta.get("processes") != 2 or list((tmp / "part" / resumed["run_id"]).glob("*.bad")):
        raise Failed("the checkpoint was not resumed (it was set aside or the run started over)")
    return "stopped after epoch 1 and resumed: the same numbers as an uninterrupted run"


def check_no_clean_labels(method: str, tmp: Path) -> str:
    """The same noisy labels over other clean labels must give the same training: nothing of the
    clean labels may reach the method (prepare() is where the data and the noise are looked up)."""
    prepare_mod = importlib.import_module("benchmark.training.prepare")
    data = load_dataset("digits")
    art = build_artifact(NoiseSpec("sym", 0.4), data.train_y, dataset="digits", num_classes=10, seed=3)
    f = tmp / "noise.npz"
    save_artifact(art, f)
    a = run(tiny_config(method, **{"noise.file": str(f)}), tmp / "a", wandb="disabled")
    fake = dataclasses.replace(data, train_y=np.asarray(art.noisy_labels).copy())
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(prepare_mod, "load_dataset", lambda *a, **k: fake))
        # the import check would (rightly) refuse a file whose clean labels are not the data's
        stack.enter_context(mock.patch.object(prepare_mod, "noise_for", lambda *a, **k: art))
        b = run(tiny_config(method, **{"noise.file": str(f)}), tmp / "b", wandb="disabled")
    if not (b["noise/actual_rate"] == 0.0 and a["noise/actual_rate"] > 0.3):
        raise Failed("the clean labels were not swapped (internal: the patch missed)")
    for x, y in zip(_rows(tmp / "a", a), _rows(tmp / "b", b)):
        for k in x:
            if k.startswith(("train/", "test/acc", "val_noisy/")) and x[k] != y.get(k):
                raise Failed(f"other clean labels changed {k} at epoch {int(x['epoch'])} ({x[k]!r} against "
                             f"{y.get(k)!r}): something of the clean labels reaches the method")
    return "other clean labels behind the same noisy labels change nothing the method does"


def _bad_value(chk) -> Any:
    """A value outside a declared range (None when the declaration admits every value of its type)."""
    if chk.choices:
        return "not-a-choice"
    if chk.kind is bool:
        return "maybe"
    if chk.kind not in (int, float, list):
        return None
    step = 1 if (chk.kind is int or chk.item is int) else 0.5
    candidates = []  # just outside each bound, then further out (past any special value)
    for k in range(1, 4):
        if chk.ge is not None:
            candidates.append(chk.ge - k * step)
        if chk.gt is not None:
            candidates.append(chk.gt - (k - 1) * step)
        if chk.le is not None:
            candidates.append(chk.le + k * step)
        if chk.lt is not None:
            candidates.append(chk.lt + (k - 1) * step)
    for v in candidates:
        if v not in chk.also:
            return [v] if chk.kind is list else v
    return "not-a-number" if candidates else None


def check_ranges(method: str, tmp: Path) -> str:
    cls = get_method(method)
    base = cls.base_method if getattr(cls, "masked", False) else cls
    tried = 0
    for f in dataclasses.fields(base.Config):
        chk = field_check(f)
        if chk is None:
            continue
        bad = _bad_value(chk)
        if bad is None:
            continue
        tried += 1
        try:
            resolve_hp(method, {f.name: bad}, {})
        except ConfigError:
            continue
        raise Failed(f"hp.{f.name} = {bad!r} was accepted, but the field declares {chk.describe()}")
    return f"{tried} declared setting(s) refuse a value outside their range" if tried else \
        "no setting declares a range (nothing to refuse)"


def check_masked(method: str, tmp: Path) -> str:
    name = method if getattr(get_method(method), "masked", False) else (
        "obd" if method == "ce" else f"{method}+obd")
    if name not in list_methods():
        raise Failed(f"{name} is not registered (methods.obd.register_masked_variants was not run after "
                     f"{method} was registered)")
    res = run(tiny_config(name, epochs=1), tmp, wandb="disabled")
    row = _rows(tmp, res)[0]
    if not math.isfinite(row.get("train/loss", math.nan)):
        raise Failed(f"{name}: train/loss is {row.get('train/loss')!r}")
    if not row.get("mask/sparsity", 0.0) > 0.0:
        raise Failed(f"{name}: no classifier edge was masked (mask/sparsity {row.get('mask/sparsity')!r}); "
                     f"does every network come from ctx.build_model and keep its `classifier`?")
    return f"{name}: one epoch with {100 * row['mask/sparsity']:.0f}% of the classifier's edges masked"


CHECKS: dict[str, Callable[[str, Path], str]] = {
    "declared": check_declared, "one_epoch": check_one_epoch, "deterministic": check_deterministic,
    "resume": check_resume, "no_clean_labels": check_no_clean_labels, "ranges": check_ranges,
    "masked": check_masked,
}
"""The checks, in the order ``runner.py check`` runs them."""


def check(name: str, method: str, tmp: Path | None = None) -> Outcome:
    """Run one check of ``method`` in ``tmp`` (a fresh temporary folder by default): its Outcome,
    ok or not, with the reason. A check that raises anything fails with that exception named."""
    t0 = time.perf_counter()
    with ExitStack() as stack:
        where = Path(tmp) if tmp is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        try:
            detail, ok = CHECKS[name](method, where), True
        except Failed as e:
            detail, ok = str(e), False
        except Exception as e:  # noqa: BLE001 - the method's own code failed: say how
            detail, ok = f"raised {type(e).__name__}: {e}", False
    return Outcome(name, method, ok, detail, time.perf_counter() - t0)


def run_checks(method: str, names: list[str] | None = None,
               log: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Every check (or ``names``) of ``method``, each in its own temporary store."""
    if method not in list_methods():
        raise UsageError(f"unknown method '{method}'. Valid: {', '.join(list_methods())} (a plugin's "
                         f"method needs --plugin or an installed entry point)")
    out = []
    for name in names or list(CHECKS):
        o = check(name, method)
        out.append(o)
        if log:
            log(o)
    return out
