"""From the store to the reports' long DataFrame: one row per (run, epoch, metric), and the label
each run gets in a table.

A row's label is the method, plus the classifier and mask settings that differ from their
defaults (:func:`method_label`: ``obd[sparsity=0.1]``), plus, when one (protocol, setting, method)
holds runs under different resolved hyperparameters, the ones that differ (:func:`hp_labels`:
``gce (q=0.59)``). reports/ (pure functions of the frame) never reads the store itself.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.config import is_tuning_run, stale_reason
from benchmark.errors import UsageError
from benchmark.store.layout import FINAL_METRICS
from benchmark.store.runs import Store
from methods.mask import MaskConfig

__all__ = ["method_label", "hp_labels", "protocol_labels", "load_frame", "load", "parse_filters", "FILTER_KEYS"]


def method_label(cfg: dict[str, Any]) -> str:
    """The method's name, plus the classifier and mask settings that differ from their defaults.

    "obd" for the default mask, "obd[sparsity=0.1]" for a sweep point, "ce[classifier=kan]" and
    "obd[classifier=kan,sparsity=0.3]" with the KAN head: cells of an ablation stay apart in
    reports instead of being averaged together.
    """
    tags = [f"classifier={cfg['classifier']}"] if cfg.get("classifier", "linear") != "linear" else []
    mask = (cfg.get("hp_resolved") or {}).get("mask")
    if isinstance(mask, dict):
        defaults = asdict(MaskConfig())
        # 4 significant digits (a tuned 0.5726252072680617 reads 0.5726); two settings that print
        # alike still get two rows: hp_labels then appends what differs
        tags += [f"{k}={_short(mask[k])}" for k in sorted(mask) if k in defaults and mask[k] != defaults[k]]
    return f"{cfg['method']}[{','.join(tags)}]" if tags else cfg["method"]


def hp_labels(runs: list[tuple[str, dict[str, Any], str]]) -> dict[str, str]:
    """A table label per run: runs that differ in resolved hyperparameters never share one.

    runs: (run_id, config, protocol label). Within one (protocol, dataset, noise setting,
    method_label) group, runs whose resolved hyperparameters differ get the settings that differ
    appended, e.g. ``gce (q=0.59)`` and ``gce (q=0.7)``; a group with one set of hyperparameters
    keeps the plain label. (After a tuning search the store holds one method under many settings;
    averaging them into one row would report a number no configuration produced.)
    """
    groups: dict[tuple, dict[str, dict[str, Any]]] = {}
    for rid, cfg, pname in runs:
        key = (pname, cfg.get("dataset"), cfg.get("noise_label"), method_label(cfg))
        groups.setdefault(key, {})[rid] = _flat_hp(cfg.get("hp_resolved") or {})
    out: dict[str, str] = {}
    for (_p, _d, _n, base), members in groups.items():
        sets = {json.dumps(h, sort_keys=True, default=str) for h in members.values()}
        if len(sets) == 1:
            out.update({rid: base for rid in members})
            continue
        differ = _differing(members.values())
        names = {}
        for rid, h in members.items():
            names[rid] = f"{base} ({', '.join(f'{k}={_short(h.get(k))}' for k in differ)})"
        # two settings that print alike (0.59 vs 0.5900001) still get two labels
        by_label: dict[str, set[str]] = {}
        for rid, label in names.items():
            by_label.setdefault(label, set()).add(json.dumps(members[rid], sort_keys=True, default=str))
        for rid, label in names.items():
            if len(by_label[label]) > 1:
                tag = hashlib.sha256(json.dumps(members[rid], sort_keys=True, default=str).encode()).hexdigest()[:6]
                label = f"{label[:-1]}, hp#{tag})"
            out[rid] = label
    return out


def _flat_hp(hp: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Resolved hyperparameters as flat names: a masked method's {"base": {...}, "mask": {...}}
    becomes q=..., mask.sparsity=...."""
    out: dict[str, Any] = {}
    for k, v in hp.items():
        name = "" if (not prefix and k == "base") else f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_hp(v, f"{name}." if name else ""))
        else:
            out[name] = v
    return out


def protocol_labels(protocols: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """A table label per (protocol name, protocol id): the name alone when one protocol bears it,
    else the name with the fields in which its protocols differ, e.g. ``obd-paper-fmnist
    (batch_size=16)`` next to ``obd-paper-fmnist (batch_size=32)`` (the id is appended where
    two would still print alike, or where no recorded field differs).

    protocols: the ``protocol`` dicts of the runs' configs (name, id and the protocol's fields).
    """
    by_name: dict[str, dict[str, dict[str, Any]]] = {}
    for p in protocols:
        by_name.setdefault(p.get("name", ""), {})[p.get("id", "")] = p
    out: dict[tuple[str, str], str] = {}
    for name, members in by_name.items():
        if len(members) == 1:
            out.update({(name, pid): name for pid in members})
            continue
        differ = [k for k in _differing(members.values()) if k not in ("name", "id")]
        if not differ:
            out.update({(name, pid): f"{name}-{pid}" for pid in members})
            continue
        labels = {pid: f"{name} ({', '.join(f'{k}={_short(p.get(k))}' for k in differ)})"
                  for pid, p in members.items()}
        for pid, label in labels.items():  # two that print alike (0.1 vs 0.10001) get their ids
            clash = sum(v == label for v in labels.values()) > 1
            out[(name, pid)] = f"{label[:-1]}, {pid})" if clash else label
    return out


def _differing(records) -> list[str]:
    """The keys, sorted, whose values are not the same in all of ``records`` (an iterable of
    dicts; a missing key counts as None)."""
    records = list(records)
    keys = sorted({k for r in records for k in r})
    return [k for k in keys if len({json.dumps(r.get(k), sort_keys=True, default=str) for r in records}) > 1]


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def load_frame(store: Store, finished: list[tuple[str, dict, dict, dict]] | None = None) -> pd.DataFrame:
    """Every finished run of ``store`` as one long DataFrame.

    Columns: run_id, method, dataset, model, noise, rate, noise_label, seed, protocol, epoch
    (nullable Int64; <NA> on final-result rows), metric, value. Accuracies are fractions.
    finished: the list(store.finished_runs()) a caller already read, so files are read once.
    """
    rows: list[dict[str, Any]] = []
    finished = list(store.finished_runs()) if finished is None else finished
    # a protocol name shared by runs of different protocols (an ablation's batch size, a preset
    # run with another --set epochs) gets what differs appended, so tables never mix them
    names = protocol_labels([cfg.get("protocol", {}) for _rid, cfg, _res, _meta in finished])
    def pname_of(cfg: dict) -> str:
        proto = cfg.get("protocol", {})
        return names.get((proto.get("name", ""), proto.get("id", "")), proto.get("name", ""))

    labels = hp_labels([(rid, cfg, pname_of(cfg)) for rid, cfg, _res, _meta in finished])
    for rid, cfg, res, _meta in finished:
        pname = pname_of(cfg)
        noise = cfg["noise"]
        rate = float(noise["rate"]) if noise["kind"] not in ("human", "twin") else math.nan
        key = {"run_id": rid, "method": labels[rid], "dataset": cfg["dataset"],
               "model": cfg["model"], "noise": noise["kind"], "rate": rate,
               "noise_label": cfg.get("noise_label", noise["kind"]), "seed": cfg["seed"],
               "protocol": pname}
        for m in store.read_metrics(rid):
            ep = int(m.pop("epoch"))
            rows += [{**key, "epoch": ep, "metric": k, "value": v} for k, v in m.items()]
        for k, v in res.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append({**key, "epoch": pd.NA, "metric": k, "value": float(v)})
            elif v is None and k in FINAL_METRICS:
                rows.append({**key, "epoch": pd.NA, "metric": k, "value": math.nan})
    cols = ["run_id", "method", "dataset", "model", "noise", "rate", "noise_label", "seed",
            "protocol", "epoch", "metric", "value"]
    df = pd.DataFrame(rows, columns=cols)
    df["epoch"] = df["epoch"].astype("Int64")
    df["value"] = df["value"].astype(float)
    return df


FILTER_KEYS = ("method", "dataset", "model", "noise", "noise_label", "protocol", "seed", "run_id")


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise UsageError(f"--filter expects KEY=VALUE with KEY in {', '.join(FILTER_KEYS)}; got '{item}'")
        out.setdefault(key, []).append(value)
    return out


def load(runs_dir: str | Path, filters: dict[str, list[str]] | None = None, run_ids: set[str] | None = None,
         include_stale: bool = False, include_tuning: bool = False) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """The long DataFrame and the runs dict (config, result, meta) of the selected finished runs.

    Runs made by an older revision of their method or of the training loop (config.stale_reason)
    are left out unless ``include_stale``: a table never mixes two versions of a method. The
    selected runs left out are in ``df.attrs["stale"]`` ({run id: which revisions moved}). Runs on
    tuning seeds (config.TUNE_SEED_BASE and above: a study's trials, chosen on noisy validation)
    are left out unless ``include_tuning``; ``df.attrs["tuning"]`` counts those the selection
    would have shown."""
    store = Store(runs_dir)
    finished = list(store.finished_runs())  # every config/result/meta read once
    stale = {} if include_stale else {rid: why for rid, cfg, _res, _meta in finished if (why := stale_reason(cfg))}
    tuning = set() if include_tuning else {rid for rid, cfg, _res, _meta in finished if is_tuning_run(cfg)}
    left_out = stale.keys() | tuning
    df = _select(load_frame(store, [f for f in finished if f[0] not in left_out]), filters, run_ids)
    keep = set(df.run_id)
    runs = {rid: {"config": cfg, "result": res, "meta": meta}
            for rid, cfg, res, meta in finished if rid in keep}
    df = df.reset_index(drop=True)
    # which of the runs left out the selection would have shown (their own frame: labels unmixed)
    shown = set(_select(load_frame(store, [f for f in finished if f[0] in left_out]), filters, run_ids).run_id) \
        if left_out else set()
    df.attrs["stale"] = {rid: why for rid, why in stale.items() if rid in shown}
    df.attrs["tuning"] = len(shown & tuning - stale.keys())
    return df, runs


def _select(df: pd.DataFrame, filters: dict[str, list[str]] | None, run_ids: set[str] | None) -> pd.DataFrame:
    if run_ids is not None:
        df = df[df.run_id.isin(run_ids)]
    for key, values in (filters or {}).items():
        col = df[key].astype(str)
        keep = col.isin(values)
        if key == "method":  # a name matches its labelled rows too: obd -> "obd[sparsity=0.57]", "gce (q=0.5)"
            keep |= col.str.split(r"\[| \(", n=1, regex=True).str[0].isin(values)
        if key == "protocol":  # a name matches each of its protocols: "p" -> "p (batch_size=16)"
            keep |= col.str.split(" (", n=1, regex=False).str[0].isin(values)
        df = df[keep]
    return df
