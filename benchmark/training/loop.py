"""The one training function: ``run(config) -> result``.

Every method goes through this loop, so every method sees the same data, noise artifact, split,
model, evaluation and store. Clean labels live here only; the method is handed a RunContext
holding the noisy labels.

A run, read top to bottom (:func:`run`): prepare it (prepare.py) and take its lock; return the
stored result of a finished run; else set it up (:class:`_Loop`: the config record, the data on
the device, the method), resume from its checkpoint, then per epoch train (:meth:`_Loop.train`),
evaluate and record (:meth:`_Loop.record`), hand the row to the caller and maybe stop early; at
the end write the result (:meth:`_Loop.finish`).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmark import plugins
from benchmark.config import RunConfig, sub_seed
from benchmark.data.augment import Augmenter, StrongAugmenter
from benchmark.data.files import take
from benchmark.errors import RunInterrupted, TrainingDiverged
from benchmark.models import build_model
from benchmark.store import Store, Tracker, resolve_mode, summarise
from benchmark.store.layout import CHECKPOINTS, MACHINE_KEYS
from benchmark.training import optim, provenance, runtime
from benchmark.training.diagnostics import correction_quality, probe_metrics
from benchmark.training.evaluate import BestVal, Truth, accuracy, evaluate, predict, probe_indices, test_indices
from benchmark.training.prepare import Prepared, make_augmenter, prepare, run_revisions
from benchmark.training.runtime import autocast
from methods import Method, RunContext, get_method

__all__ = ["run", "PROBE_SIZE"]

PROBE_SIZE = 512
"""Training samples in the fixed probe batch of the gradient diagnostics."""


def run(cfg: RunConfig, runs_dir: str | Path = "runs", *, stop_after: int | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        wandb: str | None = None,
        epoch_context: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """Train one run (or return its stored result if it already finished).

    wandb: offline, online or disabled (default: $WANDB_MODE, else offline); see store/mirror.py.
    stop_after: stop after this epoch, leaving a checkpoint (for preemptible jobs and the
    resume test); the returned dict then has ``"finished": False``.
    progress: called with each epoch's metrics row.
    epoch_context: epoch -> a context manager entered around that epoch's training only (the
    speed benchmark counts FLOPs with torch.utils.flop_counter this way).
    Raises RunInterrupted on Ctrl-C (the last checkpoint is kept; the same call resumes).
    """
    store = Store(runs_dir)
    t0 = time.time()
    prep = prepare(cfg, store)
    with store.lock(prep.run_id), runtime.pinned(cfg.threads):
        meter = runtime.ResourceMeter(prep.device, t0)
        if store.is_finished(prep.run_id):
            return _stored_result(store, prep)
        loop = _Loop(cfg, prep, store, meter, wandb)
        loop.resume()
        try:
            loop.prepare()
            for epoch in range(loop.start, cfg.epochs + 1):
                metrics, dt = loop.train(epoch, epoch_context)
                row = loop.record(epoch, metrics, dt, stop_after)
                loop.hand_over(epoch, row, progress)
                if stop_after is not None and epoch >= stop_after and epoch < cfg.epochs:
                    return loop.stop(epoch)
        except KeyboardInterrupt:
            loop.tracker.finish({"state": "interrupted", "stopped_epoch": len(loop.rows)}, exit_code=130)
            raise RunInterrupted(loop.rid, str(store.run_dir(loop.rid)), loop.saved_epoch) from None
        return loop.finish()


def _stored_result(store: Store, prep: Prepared) -> dict[str, Any]:
    """A finished run's result from the store, after checking it was computed under this
    numerical setting (StoreError otherwise)."""
    rid = prep.run_id
    store.check_numerics(rid, prep.numerics)
    res = dict(store.result(rid))
    res.update(run_dir=str(store.run_dir(rid)), run_id=rid, cached=True)
    return res


def _config_record(cfg: RunConfig, prep: Prepared) -> dict[str, Any]:
    """config.json: the config, its derived seeds, protocol, resolved hyperparameters, revisions,
    numerical setting and noise summary."""
    art = prep.artifact
    return {**cfg.to_dict(), "run_id": prep.run_id, "streams": cfg.streams(),
            "protocol": prep.protocol, "noise_label": art.spec.label(),
            "hp_resolved": asdict(prep.hp), "revisions": run_revisions(cfg.method), "numerics": prep.numerics,
            "noise_artifact": {k: v for k, v in art.summary().items() if k != "transition"},
            "n_train": int(len(prep.train_idx)), "n_val": int(len(prep.val_idx))}


def _resume_state(store: Store, rid: str, numerics: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None. One made under another numerical setting is set
    aside: resuming it would give numbers that neither setting produces."""
    ckpt = store.load_checkpoint(rid)
    if ckpt is None:
        return None
    theirs = ckpt.get("numerics") or {}
    settings = [k for k in set(theirs) | set(numerics) if k not in MACHINE_KEYS]
    if not theirs or any(theirs.get(k) != numerics.get(k) for k in settings) \
            or not runtime.same_machine(theirs, numerics):
        found = ckpt.get("numerics") or "not recorded"
        _set_aside(store, rid, f"written under numerical setting {found}, this process runs {numerics}")
        return None
    return ckpt


def _set_aside(store: Store, rid: str, why: str) -> None:
    for name in CHECKPOINTS:
        if (store.run_dir(rid) / name).is_file():
            store.set_aside(rid, name, why)


@dataclass
class _OnDevice:
    """The run's data on its device. Images are (N, C, H, W) uint8 tensors, or StreamedImages
    views that read one batch at a time; labels are (N,) int64."""

    tr: torch.Tensor
    """(N_train,) indices into the dataset's training set (CPU)."""
    x_train: Any
    noisy_train: torch.Tensor
    clean_train: torch.Tensor
    """Runner only: the diagnostics."""
    x_val: Any
    noisy_val: torch.Tensor
    x_test: Any
    y_test: torch.Tensor
    extra_tests: dict[str, tuple[Any, torch.Tensor]]


def _on_device(cfg: RunConfig, prep: Prepared) -> _OnDevice:
    data, art, dev = prep.data, prep.artifact, prep.device
    noisy_all = torch.as_tensor(art.noisy_labels)
    clean_all = torch.as_tensor(data.train_y)
    tr = torch.as_tensor(prep.train_idx)
    va = torch.as_tensor(prep.val_idx)
    # a streamed dataset stays on disk: take() gives views that read one batch at a time
    x_train = take(data.train_x, tr, dev)
    noisy_train = noisy_all[tr].to(dev)
    clean_train = clean_all[tr].to(dev)        # runner only: diagnostics
    x_val, noisy_val = take(data.train_x, va, dev), noisy_all[va].to(dev)
    te = test_indices(len(data.test_y), cfg.test_subset)
    x_test, y_test = take(data.test_x, te, dev), torch.as_tensor(data.test_y)[te].to(dev)
    extra_tests = {name: (take(x, torch.arange(len(y)), dev), torch.as_tensor(y).to(dev))
                   for name, (x, y) in (data.extra_tests or {}).items()}
    return _OnDevice(tr, x_train, noisy_train, clean_train, x_val, noisy_val, x_test, y_test, extra_tests)


def _context(cfg: RunConfig, prep: Prepared, d: _OnDevice, aug: Augmenter) -> RunContext:
    """What the method may see: the noisy labels only, and seeded makers of models, optimisers,
    learning rates, augmentations and data-order generators (pure functions of their keys, so a
    resumed run rebuilds exactly what an uninterrupted one has)."""
    data, dev, streams = prep.data, prep.device, cfg.streams()

    def build(k: int) -> torch.nn.Module:
        torch.manual_seed(sub_seed(streams["init"], k))
        c, h, _w = data.input_shape
        m = build_model(cfg.model, num_classes=data.num_classes, in_channels=c, image_size=h,
                        classifier=cfg.classifier)
        return m.to(dev, memory_format=torch.channels_last) if cfg.channels_last else m.to(dev)

    def gen(epoch: int, stream: int) -> torch.Generator:
        return torch.Generator(device=dev).manual_seed(sub_seed(streams["order"], epoch, stream))

    def set_epoch_lr(opt, epoch: int, epochs: int | None = None) -> float:
        lr = optim.lr_at(cfg.optim, epoch, epochs or cfg.epochs)
        optim.set_lr(opt, lr)
        return lr

    return RunContext(
        train_x=d.x_train, noisy_labels=d.noisy_train, num_classes=data.num_classes,
        epochs=cfg.epochs, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
        device=dev, noise_rate=float(cfg.noise.rate), noise_kind=cfg.noise.kind,
        build_model=build,
        make_optimizer=lambda p, weight_decay=None: optim.build_optimizer(cfg.optim, p, weight_decay),
        set_epoch_lr=set_epoch_lr, augment=aug.augment, normalise=aug.normalise, generator=gen,
        noise_transition=torch.as_tensor(np.asarray(prep.artifact.transition), dtype=torch.float32, device=dev),
        strong_view=lambda spec: StrongAugmenter(aug, spec))


class _Loop:
    """One run being trained, under its lock: its state between the steps of :func:`run`."""

    def __init__(self, cfg: RunConfig, prep: Prepared, store: Store, meter: runtime.ResourceMeter,
                 wandb: str | None):
        self.cfg, self.prep, self.store, self.meter = cfg, prep, store, meter
        self.rid, self.dev, self.streams = prep.run_id, prep.device, cfg.streams()
        store.clean_stale(self.rid)  # temporary files of a process that died mid-write (we hold the lock)
        config_json = _config_record(cfg, prep)
        store.write_json(self.rid, "config.json", config_json)
        (store.run_dir(self.rid) / "stopped.json").unlink(missing_ok=True)
        self.tracker = Tracker(resolve_mode(wandb), store.root)
        self.tracker.start(config_json, self.rid, store.run_dir(self.rid))

        self.d = d = _on_device(cfg, prep)
        self.aug = make_augmenter(prep.protocol["augment"], prep.data, cfg.channels_last)
        self.truth = Truth(prep.data, d.tr, d.noisy_train, d.clean_train, cfg.memo_samples, self.streams["split"])
        probe = probe_indices(len(d.tr), PROBE_SIZE, self.streams["split"]).to(self.dev)
        # fixed probe batch for the gradient diagnostics, and the truth the diagnostics compare with:
        # constant over the run, so built once here rather than every epoch
        self.probe = (self.aug.normalise(d.x_train[probe]), d.noisy_train[probe], d.clean_train[probe])
        self.ctx = _context(cfg, prep, d, self.aug)
        self.method = self._new_method()

        self.rows: list[dict[str, float]] = []
        self.start = 1
        self.prepared = 0
        """Preparation epochs done (Method.preparation_epochs: Confident Learning's folds)."""
        self.prepare_time = 0.0
        self.before: dict[str, Any] = {}
        """Resources of the processes that worked on the run before this one (from its checkpoint)."""
        self.best = BestVal()
        self.train_time = self.book_time = 0.0
        self.saved_epoch, self.saved_at = 0, time.monotonic()

    def _new_method(self) -> Method:
        method = get_method(self.cfg.method)()
        method.setup(self.ctx, self.prep.hp)
        return method

    def resume(self) -> None:
        """Continue from the run's checkpoint, if one loads under this numerical setting; one that
        does not load into the method is set aside and the run starts over."""
        ckpt = _resume_state(self.store, self.rid, self.prep.numerics)
        if ckpt is not None:
            try:
                self.method.load_state_dict(ckpt["method"])
            except Exception as e:  # noqa: BLE001 - a state this code cannot load: start over
                _set_aside(self.store, self.rid, f"does not load into {self.cfg.method}: {e}")
                self.method = self._new_method()
            else:
                self.rows = ckpt["rows"]
                self.start = ckpt["epoch"] + 1
                self.prepared = int(ckpt.get("prepared", 0))
                self.before = ckpt.get("resources", {})
                self.best = BestVal.from_state(ckpt.get("best"))
                for r in self.rows:  # the W&B mirror of a resumed run holds every epoch, not just the new ones
                    self.tracker.log_epoch(r)
        self.prepare_time = float(self.before.get("prepare_s", 0.0))
        self.train_time = sum(r["time/epoch_s"] for r in self.rows) + self.prepare_time
        self.book_time = float(self.before.get("bookkeeping_s", 0.0))
        self.saved_epoch, self.saved_at = self.start - 1, time.monotonic()

    def checkpoint(self, epoch: int) -> None:
        self.store.save_checkpoint(self.rid, {
            "epoch": epoch, "prepared": self.prepared, "method": self.method.state_dict(), "rows": self.rows,
            "numerics": self.prep.numerics, "best": self.best.state(),
            "resources": {**self.meter.totals(self.before), "bookkeeping_s": self.book_time,
                          "prepare_s": self.prepare_time}})
        self.saved_epoch, self.saved_at = epoch, time.monotonic()

    def prepare(self) -> None:
        """The method's preparation epochs (Confident Learning's cross-validation), before its
        first training epoch: checkpointed like epochs (every ``checkpoint_s``), nothing
        evaluated or recorded per step. A non-finite loss fails the run as an epoch's would."""
        cfg, dev = self.cfg, self.dev
        for step in range(self.prepared + 1, self.method.preparation_epochs() + 1):
            torch.manual_seed(sub_seed(self.streams["init"], 20_000 + step))
            t0 = time.perf_counter()
            with autocast(cfg, dev):
                figures = self.method.prepare_epoch(step)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            dt = time.perf_counter() - t0
            self.prepare_time += dt
            self.train_time += dt
            bad = [k for k, v in figures.items() if not math.isfinite(v) and "loss" in k]
            if bad:
                self.store.fail(self.rid, f"non-finite {', '.join(bad)} in preparation epoch {step}", 0)
                self.tracker.finish({"state": "failed", "failed_epoch": 0}, exit_code=1)
                raise TrainingDiverged(f"run {self.rid}: non-finite {', '.join(bad)} in preparation epoch "
                                       f"{step}; recorded in {self.store.run_dir(self.rid) / 'failure.json'}")
            self.prepared = step
            if time.monotonic() - self.saved_at >= cfg.checkpoint_s:
                self.checkpoint(0)

    def train(self, epoch: int, epoch_context: Callable[[int], Any] | None) -> tuple[dict[str, float], float]:
        """One epoch of the method's training: (its metrics, seconds). A non-finite loss records
        the run as failed and raises TrainingDiverged."""
        cfg, dev = self.cfg, self.dev
        torch.manual_seed(sub_seed(self.streams["init"], 10_000 + epoch))  # dropout etc., resumable
        t0 = time.perf_counter()
        with autocast(cfg, dev), (epoch_context(epoch) if epoch_context else contextlib.nullcontext()):
            metrics = self.method.train_epoch(epoch)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        self.train_time += dt
        bad = [k for k, v in metrics.items() if not math.isfinite(v) and "loss" in k]
        if bad:
            self.store.write_metrics(self.rid, self.rows)
            self.store.fail(self.rid, f"non-finite {', '.join(bad)} at epoch {epoch}", epoch)
            self.tracker.finish({"state": "failed", "failed_epoch": epoch}, exit_code=1)
            raise TrainingDiverged(f"run {self.rid}: non-finite {', '.join(bad)} at epoch {epoch}; "
                                   f"recorded in {self.store.run_dir(self.rid) / 'failure.json'}")
        return metrics, dt

    def record(self, epoch: int, metrics: dict[str, float], dt: float, stop_after: int | None) -> dict[str, float]:
        """The runner's evaluation of the epoch (noisy validation every epoch; test set,
        memorisation and gradient probe on tested epochs; selection and correction quality), the
        row written to metrics.csv, a checkpoint when due, the W&B log. Returns the row."""
        cfg, d, method, truth = self.cfg, self.d, self.method, self.truth
        t1 = time.perf_counter()
        norm, eb = self.aug.normalise, cfg.eval_batch_size
        row: dict[str, float] = {"epoch": epoch, **metrics}
        tested = epoch % cfg.test_every == 0 or epoch == cfg.epochs or epoch > cfg.epochs - cfg.test_last
        with autocast(cfg, self.dev):
            row["val_noisy/acc"] = (accuracy(predict(method, d.x_val, norm, eb), d.noisy_val)
                                    if len(self.prep.val_idx) else math.nan)
            if tested:
                row.update(evaluate(cfg, method, self.aug, d.x_test, d.y_test, d.x_train, d.noisy_train,
                                    d.clean_train, truth.memo_idx, epoch, truth.known_truth))
                for name, (xe, ye) in d.extra_tests.items():
                    row[f"test_{name}/acc"] = accuracy(predict(method, xe, norm, eb), ye)
        row.update(truth.selection(method.selected(), method.clean_scores()))
        if truth.known_truth:  # without clean labels these would compare the labels with themselves
            row.update(correction_quality(method.corrected_labels(), d.noisy_train, d.clean_train))
        row.update(method.extra_metrics())
        if tested and truth.known_truth:
            row.update(probe_metrics(method, *self.probe))
        self.best.offer(epoch, row, method)
        row["time/epoch_s"] = dt
        row["time/samples_per_s"] = len(d.tr) / dt if dt > 0 else math.nan
        self.rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()})
        self.store.write_metrics(self.rid, self.rows)
        if (epoch == cfg.epochs or (stop_after is not None and epoch >= stop_after)
                or time.monotonic() - self.saved_at >= cfg.checkpoint_s):
            self.checkpoint(epoch)
        self.tracker.log_epoch(self.rows[-1])
        self.book_time += time.perf_counter() - t1
        return self.rows[-1]

    def hand_over(self, epoch: int, row: dict[str, float], progress: Callable[[dict[str, Any]], None] | None) -> None:
        """Give the row to the caller's ``progress``; if that raises (a tuning trial pruned here),
        the run is checkpointed and recorded as stopped before the exception goes on."""
        if not progress:
            return
        try:
            progress(row)
        except BaseException as e:
            if self.saved_epoch != epoch:
                self.checkpoint(epoch)
            self.store.write_json(self.rid, "stopped.json", {"epoch": epoch, "reason": f"stopped by its "
                                  f"caller: {type(e).__name__}: {e}"})
            self.tracker.finish({"state": "interrupted", "stopped_epoch": epoch}, exit_code=1)
            raise

    def stop(self, epoch: int) -> dict[str, Any]:
        """Stop early on purpose (``stop_after``): the checkpoint stays, the run is resumable."""
        self.store.write_json(self.rid, "stopped.json", {"epoch": epoch, "reason": "stop_after"})
        self.tracker.finish({"state": "stopped", "stopped_epoch": epoch})
        return {"run_id": self.rid, "run_dir": str(self.store.run_dir(self.rid)), "finished": False,
                "epoch": epoch}

    def finish(self) -> dict[str, Any]:
        """Test the selected epoch's networks when the schedule skipped it, then write the result
        (summary.summarise plus the noise, time and memory figures) and meta.json."""
        cfg, d, art, rows = self.cfg, self.d, self.prep.artifact, self.rows
        t1 = time.perf_counter()
        # the epoch chosen by noisy validation, tested with the networks kept from that epoch when
        # the test schedule skipped it: the selected number is exact whatever test_every is
        if self.best.pending and rows:
            with autocast(cfg, self.dev):
                rows[self.best.epoch - 1]["test/acc"] = self.best.test(self.method, d.x_test, d.y_test,
                                                                       self.aug.normalise, cfg.eval_batch_size)
            self.store.write_metrics(self.rid, rows)
        result = summarise(rows)
        result["noise/actual_rate"] = float((d.noisy_train != d.clean_train).float().mean())
        result["noise/actual_rate_full"] = art.actual_rate
        result["time/total_s"] = self.train_time
        if self.prepare_time:
            result["time/prepare_s"] = self.prepare_time
        result["time/samples_per_s"] = (len(d.tr) * len(rows) / self.train_time if self.train_time > 0
                                        else math.nan)
        self.book_time += time.perf_counter() - t1
        totals = self.meter.totals(self.before)
        result["mem/peak_mb"] = totals["peak_mb"]
        result["time/wall_s"] = totals["wall_s"]
        result["time/bookkeeping_s"] = self.book_time
        result["time/bookkeeping_share"] = (self.book_time / totals["wall_s"] if totals["wall_s"] > 0
                                            else math.nan)
        result["noise"] = {"label": art.spec.label(), "actual_rate": art.actual_rate,
                           "sha256": art.sha256, "transition": np.asarray(art.transition).tolist()}
        meta = provenance.describe(self.dev)
        if plugins.loaded():  # what produced the run includes the plugins loaded in its process
            meta["plugins"] = plugins.loaded()
        meta.update(wall_s=totals["wall_s"], processes=totals["processes"], peak_mb=totals["peak_mb"],
                    peak_memory=totals["peak_kind"], numerics=self.prep.numerics, data_source=self.prep.data.source)
        self.store.finish(self.rid, result, meta)
        self.tracker.finish({**result, "state": "finished"})
        return {**result, "run_id": self.rid, "run_dir": str(self.store.run_dir(self.rid)), "finished": True,
                "cached": False}
