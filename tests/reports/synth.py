"""Synthetic run stores in exactly the loader's shape (long frame + runs dict), for report tests."""
from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

COLUMNS = ["run_id", "method", "dataset", "model", "noise", "rate", "noise_label", "seed", "protocol",
           "epoch", "metric", "value"]


def noise_label(kind: str, rate: float | None, human_set: str = "") -> str:
    return f"human-{human_set}" if kind in ("human", "twin") else f"{kind}-{round(100 * rate)}%"


def transition(kind: str, rate: float, C: int, rng: np.random.Generator) -> np.ndarray:
    """A realised-looking row-stochastic matrix (row = true class)."""
    T = np.zeros((C, C))
    for i in range(C):
        if kind == "pairflip":
            T[i, (i + 1) % C] = rate
        else:
            T[i] = rate / (C - 1)
        T[i, i] = 1 - rate
    T = np.clip(T + rng.normal(0, 0.005, T.shape) * (T > 0), 0, None)
    return T / T.sum(1, keepdims=True)


def make_store(*, methods=("ce", "gce", "gce+obd"), settings=(("sym", 0.2, ""), ("sym", 0.5, ""),
               ("pairflip", 0.45, ""), ("human", None, "worst")), seeds=(0, 1, 2),
               protocol="fmnist-cnn", dataset="fashion_mnist", model="cnn", epochs=5, C=10,
               select_methods=("coteaching",), device="cpu", val_frac=0.1, seed=0):
    """(df, runs) with per-epoch curves (peak then memorisation dip), final metrics, noise
    artifacts with transition matrices, mask sparsity for '+obd' methods and select/* metrics for
    ``select_methods`` (only if they are in ``methods``)."""
    rng = np.random.default_rng(seed)
    rows, runs = [], {}
    skill = {m: 0.02 * i for i, m in enumerate(sorted(methods))}
    for kind, rate, hset in settings:
        label = noise_label(kind, rate, hset)
        r_eff = 0.4 if rate is None else rate
        for s in seeds:
            art_rng = np.random.default_rng([seed, s, len(label)])
            T = transition(kind if kind != "human" else "sym", r_eff, C, art_rng)
            actual = float(r_eff + art_rng.normal(0, 0.003))
            key = f"{dataset}|{label}|{'fixed' if kind == 'human' else s}"
            sha = hashlib.sha256(key.encode()).hexdigest()
            for m in methods:
                rid = hashlib.sha256(f"{protocol}|{m}|{label}|{s}".encode()).hexdigest()[:16]
                base = 0.9 - 0.5 * r_eff + skill[m]
                curve = []
                for ep in range(1, epochs + 1):
                    peak = base + 0.05 * math.exp(-((ep - 2) ** 2))  # early-learning peak, then dip
                    curve.append(min(peak - 0.01 * ep * r_eff + rng.normal(0, 0.005), 1.0))
                key_cols = {"run_id": rid, "method": m, "dataset": dataset, "model": model,
                            "noise": kind, "rate": math.nan if rate is None else rate,
                            "noise_label": label, "seed": s, "protocol": protocol}
                for ep, acc in enumerate(curve, 1):
                    per = {"train/loss": 2.0 / ep, "train/acc": 0.5 + 0.08 * ep,
                           "val_noisy/acc": acc * (1 - r_eff) + rng.normal(0, 0.002),
                           "test/acc": acc, "memo/noisy_fit": min(0.1 * ep * r_eff + 0.05, 1.0),
                           "memo/true_fit": max(0.6 - 0.05 * ep, 0.0), "time/epoch_s": 1.5}
                    per["grad/err_fc_unmasked"] = 0.5 + r_eff - 0.02 * ep
                    per["grad/err_feat_unmasked"] = 0.8 + r_eff
                    if "obd" in m:  # the mask intercepts part of the noisy gradient
                        per["grad/err_fc_masked"] = 0.7 * per["grad/err_fc_unmasked"]
                        per["grad/err_feat_masked"] = 0.9 * per["grad/err_feat_unmasked"]
                    if m in select_methods:
                        per["select/precision"] = 0.8 + 0.02 * ep
                        per["select/recall"] = 0.9 - 0.01 * ep
                    rows += [{**key_cols, "epoch": ep, "metric": k, "value": float(v)} for k, v in per.items()]
                best_val_ep = int(np.argmax([acc * (1 - r_eff) for acc in curve]))
                final = {"test/acc_last": curve[-1], "test/acc_best": max(curve),
                         "test/acc_at_best_val": curve[best_val_ep] if val_frac > 0 else math.nan,
                         "noise/actual_rate": actual, "time/total_s": 1.5 * epochs + 3,
                         "time/samples_per_s": 4000.0, "mem/peak_mb": 512.0}
                rows += [{**key_cols, "epoch": pd.NA, "metric": k, "value": float(v)} for k, v in final.items()]
                config = {"method": m, "dataset": dataset, "model": model, "seed": s,
                          "noise": {"kind": kind, "rate": 0.0 if rate is None else rate,
                                    "mode": "bernoulli", "human_set": hset},
                          "optim": {"name": "sgd", "lr": 0.02, "momentum": 0.9, "weight_decay": 5e-4,
                                    "schedule": "cosine", "batch_size": 128},
                          "epochs": epochs, "val_frac": val_frac,
                          "protocol": {"name": protocol, "model": model, "epochs": epochs,
                                       "optimizer": "sgd", "lr": 0.02, "schedule": "cosine",
                                       "batch_size": 128, "val_frac": val_frac, "augment": "none",
                                       "noise_convention": "sym excludes the true class"},
                          "method_cfg": {}}
                if m.endswith("+obd"):
                    config["mask"] = {"sparsity": [0.1, 0.3, 0.5][s % 3], "score": "obd", "scope": "row"}
                result = {**final, "noise": {"label": label, "actual_rate": actual, "sha256": sha,
                                             "transition": T.tolist()}}
                meta = {"device": device, "git_sha": "0123abcd", "wall_s": 1.5 * epochs + 4,
                        "versions": {"torch": "2.14.1", "numpy": "2.4.6"}, "python": "3.12.3",
                        "platform": "Linux-x86_64"}
                runs[rid] = {"config": config, "result": result, "meta": meta}
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["epoch"] = df["epoch"].astype("Int64")
    df["value"] = df["value"].astype(float)
    return df, runs


def toy_run_id(method, seed, protocol="p", dataset="d", label="sym-40%") -> str:
    """The run id toy_frame gives a (method, seed) in a cell; shared by all metrics of the run."""
    return f"{protocol}/{dataset}/{label}/{method}/{seed}"


def toy_frame(values: dict, *, protocol="p", dataset="d", noise="sym", rate=0.4, label="sym-40%",
              metric="test/acc_last") -> pd.DataFrame:
    """Final-result rows only: values = {method: [value per seed]} (seed = position)."""
    rows = []
    for m, vs in values.items():
        for s, v in enumerate(vs):
            rows.append({"run_id": toy_run_id(m, s, protocol, dataset, label), "method": m, "dataset": dataset, "model": "cnn",
                         "noise": noise, "rate": rate, "noise_label": label, "seed": s,
                         "protocol": protocol, "epoch": pd.NA, "metric": metric, "value": v})
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["epoch"] = df["epoch"].astype("Int64")
    return df
