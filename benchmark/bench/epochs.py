"""Speed benchmark: what each method's epoch costs in time and in FLOPs, against CE and against a
bare training loop, the bookkeeping share of a run, and the data pipeline against the per-sample
DataLoader pipeline that the official Co-teaching / DivideMix code uses.

    python runner.py bench --dataset fashion_mnist --model lenet --methods ce,gce,coteaching,dividemix
    python runner.py bench --dataset synthetic_cifar10 --model preact_resnet18 --subset 0 --val-frac 0 \
        --methods ce,coteaching,dividemix --epochs 4 --device cuda --precision bf16 --channels-last

Per method, one run of ``epochs`` epochs: epoch 1 is left out (warm-up of caches and, for
DivideMix, its CE warm-up), the middle epochs are timed (median), and the last epoch runs under
``torch.utils.flop_counter.FlopCounterMode``, which counts the floating-point operations of every
matmul and convolution, forward and backward, of that real training epoch (evaluation excluded;
element-wise work such as pooling and activations is not counted by PyTorch's counter). Figures go
to stdout (one JSON object with --json); record them, with the command, in docs/BENCHMARKS.md.
Nothing here is a test: timings depend on the machine.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmark.config import build_config, load_preset
from benchmark.data import load_dataset
from benchmark.data.augment import Augmenter, StrongAugmenter
from benchmark.models import build_model
from benchmark.store import Store
from benchmark.errors import UsageError
from benchmark.training import autocast, optim, resolve_device, run, runtime, split_indices
from methods.base import StrongSpec


@dataclass
class BenchOptions:
    """What ``runner.py bench`` times (its flags; see cli/parser.py for each one's meaning)."""

    methods: list[str]
    preset: str | None = None
    dataset: str = "fashion_mnist"
    model: str = "lenet"
    subset: int | None = None
    epochs: int = 5
    batch_size: int = 128
    device: str = "auto"
    threads: int = 1
    sets: list[str] = field(default_factory=list)
    rounds: int = 1
    loader_workers: int = 2
    precision: str = "fp32"
    channels_last: bool = False
    val_frac: float | None = None
    loader: bool = True
    strong: bool = False
    tmp: str | None = None


def bench(o: BenchOptions) -> dict[str, Any]:
    """Time every method's epochs (``rounds`` times, see :func:`time_rounds`) in a fresh temporary
    store, then the data pipeline against the per-sample DataLoader and, with ``strong``, the
    strong views; returns the figures (``methods``, ``bare``, ``loader``, ``strong``, ``threads``)."""
    if o.preset:
        base = dict(load_preset(o.preset).get("base", {}))
        base.pop("protocol_name", None)
    else:
        base = {"dataset": o.dataset, "model": o.model, "subset": 10000, "batch_size": o.batch_size}
    base.update({"device": o.device, "precision": o.precision, "channels_last": o.channels_last,
                 "threads": o.threads, "noise": {"kind": "sym", "rate": 0.4}})
    if o.val_frac is not None:
        base["val_frac"] = o.val_frac
    if not o.preset:
        # only training epochs are timed; smaller evaluation sets just shorten the command (a
        # preset keeps its own, so that its bookkeeping share is the real one)
        base.update({"test_subset": 1000, "memo_samples": 1000})
    if o.subset is not None:
        base["subset"] = o.subset
    if o.epochs < 3:
        raise UsageError("bench needs --epochs >= 3 (the first is left out, the last counts FLOPs)")
    # timings need fresh runs, never cached ones: a new directory of its own, removed afterwards
    # (nothing the user already had is touched)
    if o.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    runs = tempfile.mkdtemp(prefix="nlb-bench-", dir=o.tmp)
    try:
        out: dict[str, Any] = time_rounds(o.methods, base, o.epochs, runs, o.sets, o.rounds)
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    if o.loader:
        # the protocol's dataset, subset and batch size (a preset's when one is given)
        data = load_dataset(base["dataset"])
        subset = base.get("subset") or 0
        n = min(subset or len(data.train_y), len(data.train_y))
        out["loader"] = time_loaders(base["dataset"], n, base.get("batch_size", o.batch_size),
                                     data.crop_pad or 2, True, o.loader_workers)
    if o.strong:
        data = load_dataset(base["dataset"])
        n = min(base.get("subset") or len(data.train_y), len(data.train_y))
        dev = "cpu" if o.device == "auto" and not torch.cuda.is_available() else (
            "cuda" if o.device == "auto" else o.device)
        out["strong"] = time_strong_views(base["dataset"], n, base.get("batch_size", o.batch_size),
                                          data.crop_pad or 2, o.loader_workers, dev, base["threads"])
    out["threads"] = base["threads"]
    return out


def time_methods(methods: list[str], base: dict[str, Any], epochs: int, runs_dir: str,
                 sets: list[str] | None = None) -> list[dict[str, Any]]:
    """Train each method (fresh store): median seconds of epochs 2..E-1, FLOPs of epoch E, and the
    run's bookkeeping share (evaluation, writes, checkpoints over its wall time)."""
    if epochs < 3:
        raise ValueError("bench needs at least 3 epochs (1 left out, >= 1 timed, 1 counted)")
    return _ratios([_time_one(m, base, epochs, runs_dir, sets) for m in methods])


def _time_one(m: str, base: dict[str, Any], epochs: int, runs_dir: str,
              sets: list[str] | None) -> dict[str, Any]:
    """One method's timing row (no ratios): see :func:`time_methods`."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = build_config({**base, "method": m, "epochs": epochs}, sets)
    counter = FlopCounterMode(display=False)

    def context(epoch: int):
        return counter if epoch == epochs else contextlib.nullcontext()

    res = run(cfg, f"{runs_dir}/{m}", wandb="disabled", epoch_context=context)
    rows = Store(f"{runs_dir}/{m}").read_metrics(res["run_id"])
    times = [r["time/epoch_s"] for r in rows[1:-1]]
    n_train = rows[0]["time/samples_per_s"] * rows[0]["time/epoch_s"]
    return {"method": m, "epoch_s_median": float(np.median(times)), "epoch_s_first": rows[0]["time/epoch_s"],
            "flops_per_epoch": float(counter.get_total_flops()),
            "samples_per_s": n_train / float(np.median(times)),
            "bookkeeping_share": res.get("time/bookkeeping_share"),
            "peak_mb": res["mem/peak_mb"], "subset": cfg.subset, "device": cfg.device,
            "precision": cfg.precision, "channels_last": cfg.channels_last}


def _ratios(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add time and FLOP ratios to CE (or to the first method when CE is not timed), in place."""
    ce = next((r for r in out if r["method"] == "ce"), out[0])
    for r in out:
        r["time_ratio"] = r["epoch_s_median"] / ce["epoch_s_median"]
        r["flop_ratio"] = r["flops_per_epoch"] / ce["flops_per_epoch"] if ce["flops_per_epoch"] else float("nan")
        r["time_over_flops"] = r["time_ratio"] / r["flop_ratio"] if r["flop_ratio"] else float("nan")
    return out


def time_rounds(methods: list[str], base: dict[str, Any], epochs: int, runs_dir: str,
                sets: list[str] | None = None, rounds: int = 1) -> dict[str, Any]:
    """``time_methods`` (and, when CE is timed, ``bare_loop`` right before CE) ``rounds`` times, the
    method order rotated each round, so that a slow minute of a shared machine falls on every
    method alike.

    Per method: the median over rounds of the per-round medians, and ``spread``, the range of the
    per-round medians over their median (how far one round's figure can be trusted). Ratios are
    taken within a round, then their median over rounds.
    """
    per_round: list[list[dict[str, Any]]] = []
    bares: list[float] = []
    for r in range(rounds):
        order = methods[r % len(methods):] + methods[:r % len(methods)]
        rows = []
        for m in order:
            if m == "ce":  # right before CE's run, so that the two see the same minute of the machine
                bares.append(bare_loop(base, sets)["bare_epoch_s"])
            rows.append(_time_one(m, base, epochs, f"{runs_dir}/round{r}", sets))
        _ratios(rows)
        per_round.append(sorted(rows, key=lambda row: methods.index(row["method"])))
    out_rows = []
    for i, m in enumerate(methods):
        rows = [rr[i] for rr in per_round]
        secs = np.array([row["epoch_s_median"] for row in rows])
        merged = dict(rows[0])
        for key in ("epoch_s_median", "samples_per_s", "time_ratio", "time_over_flops",
                    "bookkeeping_share", "peak_mb"):
            vals = [row[key] for row in rows if row.get(key) is not None]
            merged[key] = float(np.median(vals)) if vals else None
        merged["rounds"] = rounds
        merged["spread"] = float((secs.max() - secs.min()) / np.median(secs))
        out_rows.append(merged)
    out: dict[str, Any] = {"methods": out_rows}
    if bares:
        ce = [rr[methods.index("ce")]["epoch_s_median"] for rr in per_round]
        out["bare"] = {"bare_epoch_s": float(np.median(bares)),
                       "ce_speed_vs_bare": float(np.median([b / c for b, c in zip(bares, ce)]))}
    return out


def bare_loop(base: dict[str, Any], sets: list[str] | None = None, epochs: int = 3) -> dict[str, float]:
    """Seconds per epoch of the plainest loop over the same training tensors, model and optimiser:
    normalised float images prepared once, a random permutation cut into batches, forward, CE,
    zero_grad, backward, step. No augmentation call, no metrics, nothing else. The harness's CE
    epoch is compared with it (goal: at least 0.9 of its speed). It runs under the run's numerical
    setting (runtime.pinned: threads, deterministic flags) and precision, as the harness's CE does."""
    cfg = build_config({**base, "method": "ce"}, sets)
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir or None)
    dev = resolve_device(cfg.device)
    tr, _ = split_indices(len(data.train_y), cfg.subset, cfg.val_frac, 0)
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    x = ((data.train_x[torch.as_tensor(tr)].float() / 255 - mean) / std).to(dev)
    y = torch.as_tensor(data.train_y[tr]).to(dev)
    c, h, _ = data.image_shape
    torch.manual_seed(0)
    model = build_model(cfg.model, num_classes=data.num_classes, in_channels=c, image_size=h).to(dev)
    if cfg.channels_last:  # the same memory layout as the harness's run
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = optim.build_optimizer(cfg.optim, model.parameters())
    gen = torch.Generator(device=dev).manual_seed(0)
    times = []
    with runtime.pinned(cfg.threads):
        with torch.no_grad():
            model(x[: cfg.batch_size])  # one-time allocator and kernel warm-up, as the harness's first epoch
        for _ in range(epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(len(y), generator=gen, device=dev)
            with autocast(cfg, dev):
                for s in range(0, len(y), cfg.batch_size):
                    idx = perm[s:s + cfg.batch_size]
                    loss = torch.nn.functional.cross_entropy(model(x[idx]).float(), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - t0)
    return {"bare_epoch_s": float(np.median(times[1:] if len(times) > 1 else times))}


def time_loaders(dataset: str, n: int, batch_size: int, crop_pad: int, hflip: bool,
                 workers: int) -> dict[str, float]:
    """Seconds to produce one epoch of augmented, normalised batches of ``n`` images.

    ours: uint8 tensor held in memory, index slices of a permutation, batched crop/flip.
    per-sample: a torch Dataset returning one PIL image at a time through torchvision transforms,
    batched by a DataLoader with ``workers`` processes (the official code's pipeline).
    """
    import torchvision.transforms as T
    from PIL import Image

    data = load_dataset(dataset)
    x, y = data.train_x[:n], torch.as_tensor(data.train_y[:n])
    aug = Augmenter(data.mean, data.std, crop_pad=crop_pad, hflip=hflip)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen)
    for s in range(0, n, batch_size):
        idx = perm[s:s + batch_size]
        xb, yb = aug.augment(x[idx], gen), y[idx]
    ours = time.perf_counter() - t0

    c, h, _ = data.image_shape
    tf = [T.RandomCrop(h, padding=crop_pad)] if crop_pad else []
    tf += [T.RandomHorizontalFlip()] if hflip else []
    tf += [T.ToTensor(), T.Normalize(data.mean, data.std)]
    transform = T.Compose(tf)
    arr = x.permute(0, 2, 3, 1).numpy()

    class PerSample(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            img = Image.fromarray(arr[i, :, :, 0] if c == 1 else arr[i])
            return transform(img), int(y[i])

    loader = torch.utils.data.DataLoader(PerSample(), batch_size=batch_size, shuffle=True,
                                         num_workers=workers)
    t0 = time.perf_counter()
    for xb, yb in loader:
        pass
    per_sample = time.perf_counter() - t0
    return {"ours_s": ours, "per_sample_loader_s": per_sample, "speedup": per_sample / ours,
            "images": n, "loader_workers": workers}


def time_strong_views(dataset: str, n: int, batch_size: int, crop_pad: int, workers: int,
                      device: str = "cpu", threads: int = 1) -> list[dict[str, Any]]:
    """Seconds to produce one epoch of strong views of ``n`` images, ours against torchvision's.

    ours: benchmark/data/augment/strong.py on uint8 batches held on ``device`` (per-image operations,
    one Kornia call per distinct operation in a batch). torchvision: crop + flip + the policy on
    one PIL image at a time (``T.AutoAugment(CIFAR10)`` / ``T.RandAugment(2, 9)``), batched by a
    DataLoader with ``workers`` processes, the pipeline of the official code. Ours runs with
    ``threads`` torch threads (a run's setting), restored afterwards.
    """
    import torchvision.transforms as T
    from PIL import Image

    data = load_dataset(dataset)
    dev = torch.device(device)
    x = data.train_x[:n].to(dev)
    weak = Augmenter(data.mean, data.std, crop_pad=crop_pad, hflip=True)
    c, h, _ = data.image_shape
    arr = data.train_x[:n].permute(0, 2, 3, 1).numpy()
    out = []
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name, spec, policy in (("autoaugment", StrongSpec("autoaugment"), T.AutoAugment(T.AutoAugmentPolicy.CIFAR10)),
                                   ("randaugment", StrongSpec("randaugment", "disc", 2, 10), T.RandAugment(2, 9))):
            strong = StrongAugmenter(weak, spec)
            gen = torch.Generator(device=dev).manual_seed(0)
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen, device=dev)
            for s in range(0, n, batch_size):
                strong(x[perm[s:s + batch_size]], gen)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            ours = time.perf_counter() - t0
            transform = T.Compose([T.RandomCrop(h, padding=crop_pad), T.RandomHorizontalFlip(), policy,
                                   T.ToTensor(), T.Normalize(data.mean, data.std)])

            class PerSample(torch.utils.data.Dataset):
                def __len__(self):
                    return n

                def __getitem__(self, i):
                    return transform(Image.fromarray(arr[i, :, :, 0] if c == 1 else arr[i]))

            loader = torch.utils.data.DataLoader(PerSample(), batch_size=batch_size, shuffle=True,
                                                 num_workers=workers)
            t0 = time.perf_counter()
            for _ in loader:
                pass
            theirs = time.perf_counter() - t0
            out.append({"policy": name, "ours_s": ours, "torchvision_s": theirs, "speedup": theirs / ours,
                        "images": n, "loader_workers": workers, "device": str(dev)})
    finally:
        torch.set_num_threads(before)
    return out
