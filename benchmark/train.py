"""The one training function: ``run(config) -> result``.

Every method goes through this loop, so every method sees the same data, noise artifact, split,
model, evaluation and store. Clean labels live here only; the method is handed a RunContext
holding the noisy labels.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmark import env, optim, runtime
from benchmark.config import AUGMENTS, OPTIM_NEW_DEFAULTS, RunConfig, check_config, sub_seed
from benchmark.data import DatasetArrays, load_dataset
from benchmark.data.augment import Augmenter, StrongAugmenter
from benchmark.data.files.streaming import FileReader, decode_mode, take
from benchmark.diagnostics import correction_quality, memorisation, selection_quality
from benchmark.errors import RunInterrupted, TrainingDiverged, UsageError
from benchmark.grad_error import probe_metrics
from benchmark.models import build_model
from benchmark.store import Store, Tracker, noise_for, resolve_mode, summarise
from methods import RunContext, get_method, resolve_hp, revisions_of
from methods.params import ConfigError
from noise import NoiseArtifact

HARNESS_REVISION = 1
"""The version of the training loop's numbers (data order, evaluation, selection): bumped when a
change to the harness moves pinned results (tests/fingerprints.json); part of every run id from 2."""
PROBE_SIZE = 512
"""Training samples in the fixed probe batch of the gradient diagnostics."""


@dataclass
class Prepared:
    """A resolved run: config, ids and the data it trains on (clean labels included: runner only)."""

    cfg: RunConfig
    run_id: str
    data: DatasetArrays
    artifact: NoiseArtifact
    train_idx: np.ndarray
    """(N_train,) indices into the dataset's training set."""
    val_idx: np.ndarray
    """(N_val,) indices of the noisy validation split."""
    hp: Any
    protocol: dict[str, Any]
    device: torch.device
    numerics: dict[str, Any]
    """The numerical setting the run is computed under (benchmark/runtime.py)."""


def split_indices(n: int, subset: int, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded subset and train / noisy-validation split of range(n); both returned sorted.

    Returns (train (n_train,), val (n_val,)) int64 with n_val = round(val_frac * m), m = subset or n.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if subset:
        perm = perm[:subset]
    n_val = int(round(val_frac * len(perm)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def protocol_of(cfg: RunConfig, augment: str) -> dict[str, Any]:
    """The fields that define a protocol: rows of a table are compared only within one."""
    o = cfg.optim
    proto = {"dataset": cfg.dataset, "model": cfg.model, "epochs": cfg.epochs, "optimizer": o.name,
             "lr": o.lr, "momentum": o.momentum, "weight_decay": o.weight_decay,
             "schedule": o.schedule, "milestones": list(o.milestones), "decay_start": o.decay_start,
             "batch_size": cfg.batch_size, "val_frac": cfg.val_frac, "subset": cfg.subset,
             "test_subset": cfg.test_subset,
             "augment": augment}
    if cfg.precision != "fp32":  # left out at fp32 so that earlier protocols keep their ids
        proto["precision"] = cfg.precision
    if cfg.test_every != 1:  # likewise: the test set scored every epoch is the default
        proto["test_every"] = cfg.test_every
    for k, default in OPTIM_NEW_DEFAULTS.items():  # likewise, at their defaults
        if getattr(o, k) != default:
            proto[k] = getattr(o, k)
    if o.schedule == "step" and o.gamma != 0.1:  # likewise: x0.1 at each milestone is the default
        proto["gamma"] = o.gamma
    pid = hashlib.sha256(json.dumps(proto, sort_keys=True).encode()).hexdigest()[:8]
    proto["id"] = pid
    proto["name"] = cfg.protocol_name or f"{cfg.dataset}-{cfg.model}"
    proto["selection"] = "test accuracy at the epoch of best noisy-validation accuracy"
    return proto


def resolve_augment(cfg: RunConfig, data: DatasetArrays) -> str:
    if cfg.augment not in AUGMENTS:
        raise UsageError(f"unknown augment '{cfg.augment}'. Valid: {', '.join(AUGMENTS)}")
    if cfg.augment != "auto":
        return cfg.augment
    parts = (["crop"] if data.crop_pad else []) + (["flip"] if data.hflip else [])
    return "+".join(parts) or "none"


def make_augmenter(aug: str, data: DatasetArrays, channels_last: bool = False) -> Augmenter:
    rotate = float(aug.split("rotate")[1]) if "rotate" in aug else 0.0
    if data.crop_size:  # stored larger than the network's input: a random window, not padding
        return Augmenter(data.mean, data.std, crop_size=data.crop_size, random_window="crop" in aug,
                         hflip="flip" in aug, channels_last=channels_last, rotate=rotate)
    pad = data.crop_pad or max(2, data.image_shape[-1] // 8)
    return Augmenter(data.mean, data.std, crop_pad=pad if "crop" in aug else 0, hflip="flip" in aug,
                     channels_last=channels_last, rotate=rotate)


def autocast(cfg: RunConfig, dev: torch.device):
    """The forward-pass precision context of a run: bf16 autocast, or a no-op at fp32.

    Losses are safe under it: the methods cast logits to fp32 before every softmax and
    per-sample loss (see methods/common.py), and optimiser steps run on fp32 weights.
    The weight-cast cache is off: the context spans a whole epoch, and a cached bf16 copy of a
    weight would go stale after the first optimiser step (training would then never move).
    """
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16",
                          cache_enabled=False)


def prepare(cfg: RunConfig, store: Store) -> Prepared:
    """Validate everything and build the noise artifact; no training. Raises UsageError early.

    Every field of the config and every hyperparameter of the method is checked against its
    declared range here, so a grid refuses a bad cell before its first run trains.
    """
    dev, hp = validate(cfg)
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir or None)
    check_model_fits(cfg.model, data)
    if data.verified is not None and cfg.noise.kind != "none":
        raise UsageError(f"dataset {cfg.dataset} carries real noisy labels: run it with noise kind none "
                         f"(synthetic noise on top would be judged against the verification of the "
                         f"original labels), got '{cfg.noise.kind}'")
    streams = cfg.streams()
    artifact = noise_for(cfg, data, streams["noise"], store.root)
    if cfg.subset > len(data.train_y):
        raise UsageError(f"subset {cfg.subset} exceeds the {len(data.train_y)} training samples")
    train_idx, val_idx = split_indices(len(data.train_y), cfg.subset, cfg.val_frac, streams["split"])
    if len(train_idx) < 2:
        raise UsageError("fewer than 2 training samples after the split")
    revisions = run_revisions(cfg.method)
    run_id = cfg.run_id(artifact.sha256, asdict(hp), revisions)
    numerics = runtime.numerics(cfg.threads, cfg.precision, dev)
    if (data.streamed and isinstance(data.train_x.reader, FileReader)
            and decode_mode(dev) != "pil"):  # nvJPEG's pixels are not Pillow's (a pack is not decoded)
        numerics["decode"] = decode_mode(dev)
    return Prepared(cfg, run_id, data, artifact, train_idx, val_idx, hp,
                    protocol_of(cfg, resolve_augment(cfg, data)), dev, numerics)


_FITS: dict[tuple, None] = {}


def check_model_fits(model: str, data: DatasetArrays) -> None:
    """Build the backbone once on the meta device (no memory, no compute) for this dataset's
    image shape: a model that cannot take the images (cnn9 on 8x8 digits, a 3-channel ResNet on
    grey images) is a usage error here, before a noise artifact or a run folder is written. A
    pretrained backbone also reads and verifies its weights here, so missing weights stop a grid
    before its first run."""
    c, h, _w = data.input_shape
    key = (model, c, h, data.num_classes)
    if key in _FITS:
        return
    try:
        with torch.device("meta"):
            build_model(model, num_classes=data.num_classes, in_channels=c, image_size=h)
    except ValueError as e:
        raise UsageError(f"model '{model}' cannot take {data.name}'s {c}x{h}x{_w} images: {e}") from None
    _FITS[key] = None


def validate(cfg: RunConfig) -> tuple[torch.device, Any]:
    """Every check that needs no data: field ranges, names, device, the method's hyperparameters.

    Returns (device, resolved hyperparameters). A grid runs this on every cell before it loads
    any data or writes any noise artifact, so a bad cell leaves nothing behind.
    """
    check_config(cfg)
    check_names(cfg)
    dev = resolve_device(cfg.device)
    try:
        hp = resolve_hp(cfg.method, cfg.hp, cfg.mask)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    mask = getattr(hp, "mask", None)
    if cfg.classifier == "kan" and mask is not None and mask.score == "magnitude":
        raise UsageError("mask.score = magnitude needs a linear classifier (a KAN edge is a function, "
                         "not one weight). Valid with classifier = kan: obd, actstd, random")
    return dev, hp


def check_names(cfg: RunConfig) -> None:
    """Unknown dataset/model/method names are usage errors that list the valid ones."""
    from benchmark.data import list_datasets
    from benchmark.models import list_models
    from methods import list_methods
    for what, value, valid in (("dataset", cfg.dataset, list_datasets()),
                               ("model", cfg.model, list_models()),
                               ("method", cfg.method, list_methods())):
        if what == "dataset" and value.startswith(("folder:", "list:")):
            continue  # a path: checked when the data are read (DatasetNotFound, exit code 2)
        if value not in valid:
            extra = ", folder:PATH, list:FILE" if what == "dataset" else ""
            raise UsageError(f"unknown {what} '{value}'. Valid: {', '.join(valid)}{extra}")


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``device`` setting (auto: cuda when available); UsageError if unusable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device '{name}'. Valid: auto, cpu, cuda, cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("device cuda requested but no CUDA device is available")
    return dev


@torch.no_grad()
def predict(method, x: torch.Tensor, normalise: Callable, batch: int) -> torch.Tensor:
    """(M, C, H, W) uint8 on device -> (M,) int64 predicted classes."""
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for s in range(0, x.shape[0], batch):
        out[s:s + batch] = method.predict_logits(normalise(x[s:s + batch])).argmax(1)
    return out


@torch.no_grad()
def predict_with(net: torch.nn.Module, x: torch.Tensor, normalise: Callable, batch: int) -> torch.Tensor:
    """Predictions of one network (eval mode, restored afterwards): (M,) int64."""
    was_training = net.training
    net.eval()
    out = torch.cat([net(normalise(x[s:s + batch])).argmax(1) for s in range(0, x.shape[0], batch)])
    net.train(was_training)
    return out


def run(cfg: RunConfig, runs_dir: str | Path = "runs", *, stop_after: int | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        wandb: str | None = None,
        epoch_context: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """Train one run (or return its stored result if it already finished).

    wandb: offline, online or disabled (default: $WANDB_MODE, else offline); see tracking.py.
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
        return _run_locked(cfg, prep, store, meter, stop_after, progress, wandb, epoch_context)


def run_revisions(method: str) -> dict[str, int]:
    """The revisions a run's numbers depend on: the harness's and the method's (and the mask's)."""
    return {"harness": HARNESS_REVISION, **revisions_of(method)}


def _config_record(cfg: RunConfig, prep: Prepared) -> dict[str, Any]:
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
    settings = [k for k in set(theirs) | set(numerics) if k not in runtime.MACHINE_KEYS]
    if not theirs or any(theirs.get(k) != numerics.get(k) for k in settings) \
            or not runtime.same_machine(theirs, numerics):
        found = ckpt.get("numerics") or "not recorded"
        for name in ("checkpoint.pt", "checkpoint.prev.pt"):
            if (store.run_dir(rid) / name).is_file():
                store.set_aside(rid, name, f"written under numerical setting {found}, this process "
                                           f"runs {numerics}")
        return None
    return ckpt


def _run_locked(cfg: RunConfig, prep: Prepared, store: Store, meter: runtime.ResourceMeter,
                stop_after: int | None, progress: Callable[[dict[str, Any]], None] | None,
                wandb: str | None, epoch_context: Callable[[int], Any] | None = None) -> dict[str, Any]:
    rid = prep.run_id
    if store.is_finished(rid):
        store.check_numerics(rid, prep.numerics)
        res = dict(store.result(rid))
        res.update(run_dir=str(store.run_dir(rid)), run_id=rid, cached=True)
        return res
    store.clean_stale(rid)  # temporary files of a process that died mid-write (we hold the lock)

    data, art = prep.data, prep.artifact
    dev = prep.device
    streams = cfg.streams()
    config_json = _config_record(cfg, prep)
    store.write_json(rid, "config.json", config_json)
    (store.run_dir(rid) / "stopped.json").unlink(missing_ok=True)
    tracker = Tracker(resolve_mode(wandb), store.root)
    tracker.start(config_json, rid, store.run_dir(rid))

    # ----- data on the device --------------------------------------------------------------
    noisy_all = torch.as_tensor(art.noisy_labels)
    clean_all = torch.as_tensor(data.train_y)
    tr = torch.as_tensor(prep.train_idx)
    va = torch.as_tensor(prep.val_idx)
    # a streamed dataset stays on disk: take() gives views that read one batch at a time
    x_train = take(data.train_x, tr, dev)
    noisy_train = noisy_all[tr].to(dev)
    clean_train = clean_all[tr].to(dev)        # runner only: diagnostics
    x_val, noisy_val = take(data.train_x, va, dev), noisy_all[va].to(dev)
    te = _test_indices(len(data.test_y), cfg.test_subset)
    x_test, y_test = take(data.test_x, te, dev), torch.as_tensor(data.test_y)[te].to(dev)
    extra_tests = {name: (take(x, torch.arange(len(y)), dev), torch.as_tensor(y).to(dev))
                   for name, (x, y) in (data.extra_tests or {}).items()}
    aug = make_augmenter(prep.protocol["augment"], data, cfg.channels_last)
    truth = _Truth(data, tr, noisy_train, clean_train, cfg.memo_samples, streams["split"])
    memo_idx = truth.memo_idx
    probe = _probe_indices(len(tr), PROBE_SIZE, streams["split"]).to(dev)
    # fixed probe batch for the gradient diagnostics, and the truth the diagnostics compare with:
    # constant over the run, so built once here rather than every epoch
    x_probe, noisy_probe, clean_probe = aug.normalise(x_train[probe]), noisy_train[probe], clean_train[probe]

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

    ctx = RunContext(
        train_x=x_train, noisy_labels=noisy_train, num_classes=data.num_classes,
        epochs=cfg.epochs, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
        device=dev, noise_rate=float(cfg.noise.rate), noise_kind=cfg.noise.kind,
        build_model=build,
        make_optimizer=lambda p, weight_decay=None: optim.build_optimizer(cfg.optim, p, weight_decay),
        set_epoch_lr=set_epoch_lr, augment=aug.augment, normalise=aug.normalise, generator=gen,
        noise_transition=torch.as_tensor(np.asarray(art.transition), dtype=torch.float32, device=dev),
        strong_view=lambda spec: StrongAugmenter(aug, spec))
    method = get_method(cfg.method)()
    method.setup(ctx, prep.hp)

    rows: list[dict[str, float]] = []
    start = 1
    before: dict[str, Any] = {}
    best = _BestVal()
    ckpt = _resume_state(store, rid, prep.numerics)
    if ckpt is not None:
        try:
            method.load_state_dict(ckpt["method"])
        except Exception as e:  # noqa: BLE001 - a state this code cannot load: start over
            for name in ("checkpoint.pt", "checkpoint.prev.pt"):
                if (store.run_dir(rid) / name).is_file():
                    store.set_aside(rid, name, f"does not load into {cfg.method}: {e}")
            method = get_method(cfg.method)()
            method.setup(ctx, prep.hp)
        else:
            rows = ckpt["rows"]
            start = ckpt["epoch"] + 1
            before = ckpt.get("resources", {})
            best = _BestVal.from_state(ckpt.get("best"))
            for r in rows:  # the W&B mirror of a resumed run holds every epoch, not just the new ones
                tracker.log_epoch(r)
    train_time = sum(r["time/epoch_s"] for r in rows)
    book_time = float(before.get("bookkeeping_s", 0.0))
    saved = {"epoch": start - 1, "at": time.monotonic()}

    def checkpoint(epoch: int) -> None:
        store.save_checkpoint(rid, {"epoch": epoch, "method": method.state_dict(), "rows": rows,
                                    "numerics": prep.numerics, "best": best.state(),
                                    "resources": {**meter.totals(before), "bookkeeping_s": book_time}})
        saved.update(epoch=epoch, at=time.monotonic())

    norm, eb = aug.normalise, cfg.eval_batch_size
    try:
        for epoch in range(start, cfg.epochs + 1):
            torch.manual_seed(sub_seed(streams["init"], 10_000 + epoch))  # dropout etc., resumable
            t0 = time.perf_counter()
            with autocast(cfg, dev), (epoch_context(epoch) if epoch_context else contextlib.nullcontext()):
                metrics = method.train_epoch(epoch)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            dt = time.perf_counter() - t0
            train_time += dt
            bad = [k for k, v in metrics.items() if not math.isfinite(v) and "loss" in k]
            if bad:
                store.write_metrics(rid, rows)
                store.fail(rid, f"non-finite {', '.join(bad)} at epoch {epoch}", epoch)
                tracker.finish({"state": "failed", "failed_epoch": epoch}, exit_code=1)
                raise TrainingDiverged(f"run {rid}: non-finite {', '.join(bad)} at epoch {epoch}; "
                                       f"recorded in {store.run_dir(rid) / 'failure.json'}")
            t1 = time.perf_counter()
            row: dict[str, float] = {"epoch": epoch, **metrics}
            tested = epoch % cfg.test_every == 0 or epoch == cfg.epochs or epoch > cfg.epochs - cfg.test_last
            with autocast(cfg, dev):
                row["val_noisy/acc"] = _acc(predict(method, x_val, norm, eb), noisy_val) if len(va) else math.nan
                if tested:
                    row.update(_evaluate(cfg, method, aug, x_test, y_test, x_train, noisy_train,
                                         clean_train, memo_idx, epoch, truth.known_truth))
                    for name, (xe, ye) in extra_tests.items():
                        row[f"test_{name}/acc"] = _acc(predict(method, xe, norm, eb), ye)
            row.update(truth.selection(method.selected(), method.clean_scores()))
            if truth.known_truth:  # without clean labels these would compare the labels with themselves
                row.update(correction_quality(method.corrected_labels(), noisy_train, clean_train))
            row.update(method.extra_metrics())
            if tested and truth.known_truth:
                row.update(probe_metrics(method, x_probe, noisy_probe, clean_probe))
            best.offer(epoch, row, method)
            row["time/epoch_s"] = dt
            row["time/samples_per_s"] = len(tr) / dt if dt > 0 else math.nan
            rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()})
            store.write_metrics(rid, rows)
            if (epoch == cfg.epochs or (stop_after is not None and epoch >= stop_after)
                    or time.monotonic() - saved["at"] >= cfg.checkpoint_s):
                checkpoint(epoch)
            tracker.log_epoch(rows[-1])
            book_time += time.perf_counter() - t1
            if progress:
                try:
                    progress(rows[-1])
                except BaseException as e:  # e.g. a tuning trial pruned here
                    if saved["epoch"] != epoch:
                        checkpoint(epoch)
                    store.write_json(rid, "stopped.json", {"epoch": epoch, "reason": f"stopped by its "
                                     f"caller: {type(e).__name__}: {e}"})
                    tracker.finish({"state": "interrupted", "stopped_epoch": epoch}, exit_code=1)
                    raise
            if stop_after is not None and epoch >= stop_after and epoch < cfg.epochs:
                store.write_json(rid, "stopped.json", {"epoch": epoch, "reason": "stop_after"})
                tracker.finish({"state": "stopped", "stopped_epoch": epoch})
                return {"run_id": rid, "run_dir": str(store.run_dir(rid)), "finished": False,
                        "epoch": epoch}
    except KeyboardInterrupt:
        tracker.finish({"state": "interrupted", "stopped_epoch": len(rows)}, exit_code=130)
        raise RunInterrupted(rid, str(store.run_dir(rid)), saved["epoch"]) from None

    t1 = time.perf_counter()
    # the epoch chosen by noisy validation, tested with the networks kept from that epoch when
    # the test schedule skipped it: the selected number is exact whatever test_every is
    if best.pending and rows:
        with autocast(cfg, dev):
            rows[best.epoch - 1]["test/acc"] = best.test(method, x_test, y_test, norm, eb)
        store.write_metrics(rid, rows)
    result = summarise(rows)
    result["noise/actual_rate"] = float((noisy_train != clean_train).float().mean())
    result["noise/actual_rate_full"] = art.actual_rate
    result["time/total_s"] = train_time
    result["time/samples_per_s"] = len(tr) * len(rows) / train_time if train_time > 0 else math.nan
    book_time += time.perf_counter() - t1
    totals = meter.totals(before)
    result["mem/peak_mb"] = totals["peak_mb"]
    result["time/wall_s"] = totals["wall_s"]
    result["time/bookkeeping_s"] = book_time
    result["time/bookkeeping_share"] = book_time / totals["wall_s"] if totals["wall_s"] > 0 else math.nan
    result["noise"] = {"label": art.spec.label(), "actual_rate": art.actual_rate,
                       "sha256": art.sha256, "transition": np.asarray(art.transition).tolist()}
    meta = env.describe(dev)
    meta.update(wall_s=totals["wall_s"], processes=totals["processes"], peak_mb=totals["peak_mb"],
                peak_memory=totals["peak_kind"], numerics=prep.numerics, data_source=data.source)
    store.finish(rid, result, meta)
    tracker.finish({**result, "state": "finished"})
    return {**result, "run_id": rid, "run_dir": str(store.run_dir(rid)), "finished": True,
            "cached": False}


class _Truth:
    """What the runner knows about which training labels are right (never shown to a method).

    With clean labels (every synthetic noise, CIFAR-N) that is all of them. With a dataset's
    human verification flags instead (``DatasetArrays.verified``: Food-101N, Clothing1M) it is
    the verified samples only: selection quality is computed on them, and memorisation on the
    samples verified wrong (their noisy fit; their true class is unknown). Without any verified
    sample (WebVision, Animal-10N) there are no selection, memorisation, correction or
    gradient-error figures: nothing to compare with.
    """

    def __init__(self, data: DatasetArrays, tr: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor,
                 memo_cap: int, seed: int):
        dev = noisy.device
        if data.verified is None:
            self.rows = None
            self.is_clean = noisy == clean
            self.memo_idx = _memo_indices(noisy != clean, memo_cap, seed)
            self.known_truth = True
            return
        v = torch.as_tensor(np.asarray(data.verified)[tr.numpy()], device=dev)
        self.rows = torch.nonzero(v >= 0).squeeze(1)
        self.is_clean = v[self.rows] == 1
        self.memo_idx = _memo_indices(v == 0, memo_cap, seed)
        self.known_truth = False

    def selection(self, selected: torch.Tensor | None, scores: torch.Tensor | None) -> dict[str, float]:
        if self.rows is None:
            return selection_quality(selected, scores, self.is_clean)
        if not len(self.rows):
            return {}
        out = selection_quality(None if selected is None else selected.to(self.rows.device)[self.rows],
                                None if scores is None else scores.to(self.rows.device)[self.rows],
                                self.is_clean)
        if selected is not None:  # the share kept of all the samples divided, not of the verified
            scored = (torch.ones_like(selected, dtype=torch.bool) if scores is None
                      else torch.isfinite(scores).to(selected.device))
            out["select/fraction"] = float(selected[scored].float().mean()) if scored.any() else math.nan
        return out


class _BestVal:
    """The epoch of best noisy-validation accuracy (earliest on ties) and, when the test schedule
    did not test that epoch, a copy of the networks as they were then (tested at the end).

    predict_logits of every method depends only on the state of ``method.networks()`` (the
    method contract), so their state dicts are all that is kept.
    """

    def __init__(self, epoch: int = 0, val: float = -math.inf, nets: list | None = None):
        self.epoch, self.val, self.nets = epoch, val, nets

    @property
    def pending(self) -> bool:
        return self.nets is not None

    def offer(self, epoch: int, row: dict[str, float], method) -> None:
        val = row.get("val_noisy/acc", math.nan)
        if not math.isfinite(val) or val <= self.val:
            return
        self.epoch, self.val = epoch, val
        self.nets = None if "test/acc" in row else [
            {k: (v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v))
             for k, v in net.state_dict().items()} for net in method.networks()]

    def test(self, method, x, y, norm, batch) -> float:
        """Test accuracy of the kept networks (loaded into the method: call after training)."""
        for net, state in zip(method.networks(), self.nets, strict=True):
            net.load_state_dict(state)
        return _acc(predict(method, x, norm, batch), y)

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "val": self.val,
                "nets": None if self.nets is None else [
                    {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in n.items()} for n in self.nets]}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "_BestVal":
        if not state:
            return cls()
        return cls(int(state["epoch"]), float(state["val"]), state.get("nets"))


def _evaluate(cfg: RunConfig, method, aug: Augmenter, x_test, y_test, x_train, noisy_train,
              clean_train, memo_idx, epoch: int, known_truth: bool = True) -> dict[str, float]:
    """The runner's evaluation on a tested epoch (test accuracy, memorisation; each network's test
    accuracy at the last epoch), in the caller's precision context. Clean labels enter here only,
    never the method."""
    out: dict[str, float] = {}
    norm, eb = aug.normalise, cfg.eval_batch_size
    out["test/acc"] = _acc(predict(method, x_test, norm, eb), y_test)
    if len(memo_idx):
        pred = predict(method, x_train[memo_idx], norm, eb)
        memo = memorisation(pred, noisy_train[memo_idx], clean_train[memo_idx])
        if not known_truth:  # samples verified wrong, true class unknown: only the fit of the noise
            memo.pop("memo/true_fit")
        out.update(memo)
    nets = method.networks()
    if len(nets) > 1 and epoch == cfg.epochs:
        # two-network methods: each network's own test accuracy, at the last epoch only
        # (one more test pass per network and epoch would double evaluation time)
        for k, net in enumerate(nets, 1):
            out[f"test/acc_net{k}"] = _acc(predict_with(net, x_test, norm, eb), y_test)
    return out


def _acc(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).float().mean()) if y.numel() else math.nan


def _memo_indices(wrong: torch.Tensor, cap: int, seed: int) -> torch.Tensor:
    """Indices of up to ``cap`` of the training samples where ``wrong`` ((N,) bool: label known
    to be wrong) holds, a fixed seeded sample."""
    idx = torch.nonzero(wrong).squeeze(1).cpu().numpy()
    if cap and len(idx) > cap:
        idx = np.sort(np.random.default_rng(seed + 1).choice(idx, cap, replace=False))
    return torch.as_tensor(idx, dtype=torch.long, device=wrong.device)


def _test_indices(n: int, subset: int) -> torch.Tensor:
    """All test indices, or a fixed subset (seed 0: the same for every run, so runs compare)."""
    if not subset or subset >= n:
        return torch.arange(n)
    return torch.as_tensor(np.sort(np.random.default_rng(0).choice(n, subset, replace=False)))


def _probe_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """A fixed seeded sample of min(n, size) training indices (the same every epoch)."""
    rng = np.random.default_rng(seed + 2)
    return torch.as_tensor(np.sort(rng.choice(n, min(n, size), replace=False)), dtype=torch.long)
