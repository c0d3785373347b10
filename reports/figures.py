"""Seaborn/matplotlib figures from the long results frame; each function writes PNG + SVG.

Every function takes the long frame (and ``runs`` where configs or meta are needed), an output
directory and an optional ``palette`` (method -> colour, see :func:`method_palette`; pass the same
one to every figure so a method keeps its colour everywhere). It returns the list of files written
and writes nothing when it has no data (a figure is skipped, never drawn empty). One figure per
protocol: rows of different protocols are never drawn in the same axes.

Figures are built on ``matplotlib.figure.Figure`` objects (no pyplot state, Agg backend), sized
for a paper column (7 inches wide) with readable fonts. Names that come from configs are shown
verbatim (a ``$`` is escaped so that mathtext never interprets it).
"""
from __future__ import annotations

import hashlib
import math
import re
import textwrap
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from reports import stats  # noqa: E402
from reports.tables import _column_sort_key, method_order  # noqa: E402

WIDTH_IN = 7.0
DPI = 160
MAX_FACETS = 16


# ----- helpers ---------------------------------------------------------------------------------

def slug(text: Any) -> str:
    """A file-name-safe version of ``text``; a short hash is appended whenever characters had to
    be replaced, so different names never collide."""
    s = str(text)
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-.") or "x"
    if out != s:
        out += "-" + hashlib.sha1(s.encode()).hexdigest()[:6]
    return out[:80]


def _t(text: Any) -> str:
    """Text for matplotlib: '$' escaped so names are never parsed as mathtext."""
    return str(text).replace("$", r"\$")


def method_palette(methods: Iterable[str]) -> dict[str, str]:
    """Fixed colours keyed by the *sorted* method names: seaborn's colour-blind palette (10
    colours), then evenly spaced HUSL colours. Pass every method of a report at once so that each
    method keeps one colour in all figures."""
    ms = sorted({str(m) for m in methods})
    colours = list(sns.color_palette("colorblind", 10))
    if len(ms) > len(colours):
        colours += list(sns.color_palette("husl", len(ms) - len(colours)))
    return {m: to_hex(c) for m, c in zip(ms, colours)}


def _style():
    """Context manager for the figures' look (whitegrid, paper context, larger fonts)."""
    rc = {"svg.hashsalt": "noisy-label-benchmark", "svg.fonttype": "none", "axes.titlesize": 10, "axes.labelsize": 9.5,
          "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "legend.fontsize": 8.5,
          "figure.titlesize": 11}
    return _Combined(sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.2),
                     matplotlib.rc_context(rc))


class _Combined:
    def __init__(self, *ctx):
        self.ctx = ctx

    def __enter__(self):
        for c in self.ctx:
            c.__enter__()
        return self

    def __exit__(self, *exc):
        for c in reversed(self.ctx):
            c.__exit__(*exc)
        return False


def _new_figure(**kw) -> Figure:
    """A Figure with an Agg canvas attached (without one, every text measurement re-renders)."""
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return [png, svg]


def _palette(df: pd.DataFrame, palette: dict | None) -> dict[str, str]:
    pal = dict(palette or {})
    missing = [m for m in df["method"].unique() if str(m) not in pal] if not df.empty else []
    if missing:
        extra = method_palette(list(pal) + missing)
        for m in missing:
            pal[str(m)] = extra[str(m)]
    return pal


def _grid(n: int, ncols_max: int = 4, height: float = 2.3) -> tuple[Figure, np.ndarray]:
    ncols = min(n, ncols_max)
    nrows = math.ceil(n / ncols)
    width = min(WIDTH_IN, max(4.8, 1.4 + 2.0 * ncols))  # one panel: about a paper column
    fig = _new_figure(figsize=(width, 0.9 + height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes


def _suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (about 12 characters per inch)."""
    fig.suptitle(textwrap.fill(_t(text), width=max(30, int(fig.get_figwidth() * 12))))


def _legend(fig: Figure, methods: list[str], pal: dict[str, str], *, extra: list | None = None):
    handles = [Line2D([], [], color=pal[m], lw=2, marker="o", ms=4, label=_t(m)) for m in methods]
    handles += extra or []
    if fig.get_figwidth() < 5.5:  # a one-column figure: legend on the right, one entry per line
        fig.legend(handles=handles, loc="outside right center", ncols=1, frameon=False)
    else:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), frameon=False)


def _facet_name(dataset: str, label: str, multi: bool) -> str:
    return f"{dataset} · {label}" if multi else str(label)


def _per_epoch(df: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    rows = df[df["metric"].isin(list(metrics)) & df["epoch"].notna() & df["value"].notna()].copy()
    if not rows.empty:
        rows["epoch"] = rows["epoch"].astype("int64")
    return rows


def _final(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    return stats._final_values(df, metric)


def _sorted_facets(frame: pd.DataFrame) -> list[tuple[str, str]]:
    f = frame[["dataset", "noise", "rate", "noise_label"]].drop_duplicates()
    keys = sorted(f.itertuples(index=False), key=lambda r: _column_sort_key(*r))
    seen, out = set(), []
    for r in keys:
        k = (str(r.dataset), str(r.noise_label))
        if k not in seen:
            seen.add(k)
            out.append(k)
    return out


def _protocols(df: pd.DataFrame) -> list[str]:
    return sorted(df["protocol"].astype(str).unique()) if not df.empty else []


# ----- accuracy vs noise rate -----------------------------------------------------------------

def accuracy_vs_rate(df: pd.DataFrame, out_dir: Path, *, metric: str | None = None,
                     palette: dict | None = None) -> list[Path]:
    """Mean accuracy vs nominal noise rate per method, with 95% Student-t CIs over seeds.

    One panel per (dataset, noise kind) that has at least two nominal rates (human/twin noise has
    no nominal rate and is left out); one figure per protocol. ``metric`` defaults to the
    protocol's headline accuracy (:func:`reports.stats.headline_metric`).
    """
    paths: list[Path] = []
    pal = _palette(df, palette)
    for proto in _protocols(df):
        d = df[df["protocol"] == proto]
        m = metric or stats.headline_metric(d)
        s = stats.cell_summary(d, m)
        if s.empty:
            continue
        s = s[s["rate"].notna()]
        groups = [(k, g) for k, g in s.groupby(["dataset", "noise"], sort=True) if g["rate"].nunique() >= 2]
        if not groups:
            continue
        groups = groups[:MAX_FACETS]
        methods = method_order(pd.concat([g for _, g in groups])["method"].unique())
        with _style():
            fig, axes = _grid(len(groups), 3, 2.5)
            for ax, ((ds, noise), g) in zip(axes.ravel(), groups):
                for meth in methods:
                    mg = g[g["method"] == meth].sort_values("rate")
                    if mg.empty:
                        continue
                    x, y = 100 * mg["rate"].to_numpy(float), 100 * mg["mean"].to_numpy(float)
                    lo = 100 * mg["ci_lo"].to_numpy(float)
                    hi = 100 * mg["ci_hi"].to_numpy(float)
                    ax.plot(x, y, color=pal[meth], marker="o", ms=4, lw=1.6)
                    ax.fill_between(x, lo, hi, color=pal[meth], alpha=0.18, lw=0)
                    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="none", ecolor=pal[meth], elinewidth=1,
                                capsize=2)
                ax.set_title(_t(f"{ds} · {noise}"))
                ax.set_xlabel("nominal noise rate (%)")
                if ax.get_subplotspec().is_first_col():
                    ax.set_ylabel("test accuracy (%)")
            _suptitle(fig, f"{proto}: {m} vs noise rate (mean, 95% Student-t CI over seeds)")
            _legend(fig, methods, pal)
            paths += _save(fig, out_dir, f"acc_vs_rate_{slug(proto)}")
    return paths


# ----- per-epoch curves ------------------------------------------------------------------------

def _epoch_figure(d: pd.DataFrame, metrics: list[tuple[str, str]], pal: dict, title: str,
                  out_dir: Path, stem: str, *, ncols: int = 4) -> list[Path]:
    """Rows = metrics (or a wrapped grid for one metric), columns = settings; mean ± sd over seeds."""
    facets = _sorted_facets(d)[:MAX_FACETS]
    if not facets:
        return []
    multi = d["dataset"].nunique() > 1
    methods = method_order(d["method"].unique())
    agg = (d.groupby(["dataset", "noise_label", "method", "metric", "epoch"])["value"]
           .agg(["mean", "std", "count"]).reset_index())
    with _style():
        if len(metrics) == 1:
            fig, axes = _grid(len(facets), ncols, 2.3)
            cells = [(ax, f, metrics[0]) for ax, f in zip(axes.ravel(), facets)]
        else:
            cols = min(len(facets), ncols)
            facets = facets[:cols]
            fig = _new_figure(figsize=(min(WIDTH_IN, max(4.8, 1.4 + 2.0 * cols)), 0.9 + 2.2 * len(metrics)),
                              layout="constrained")
            axes = fig.subplots(len(metrics), cols, squeeze=False, sharex="col")
            cells = [(axes[i, j], facets[j], metrics[i]) for i in range(len(metrics)) for j in range(cols)]
        for ax, (ds, label), (metric, ylabel) in cells:
            a = agg[(agg["dataset"] == ds) & (agg["noise_label"] == label) & (agg["metric"] == metric)]
            for meth in methods:
                g = a[a["method"] == meth].sort_values("epoch")
                if g.empty:
                    continue
                x, y = g["epoch"].to_numpy(), 100 * g["mean"].to_numpy(float)
                ax.plot(x, y, color=pal[meth], lw=1.6, marker="o" if len(x) < 3 else None, ms=3)
                sd = 100 * g["std"].fillna(0).to_numpy(float)
                if (g["count"] > 1).any():
                    ax.fill_between(x, y - sd, y + sd, color=pal[meth], alpha=0.18, lw=0)
            if a.empty:
                ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes,
                        color="0.5")
            ax.set_title(_t(_facet_name(ds, label, multi)))
            ax.set_xlabel("epoch")
            if ax.get_subplotspec().is_first_col():
                ax.set_ylabel(_t(ylabel))
        _suptitle(fig, title)
        _legend(fig, [m for m in methods if m in set(d["method"])], pal)
        return _save(fig, out_dir, stem)


def test_accuracy_curves(df: pd.DataFrame, out_dir: Path, *, palette: dict | None = None) -> list[Path]:
    """Test accuracy per epoch per method (mean ± sd over seeds), one panel per noise setting: the
    early-learning peak and the memorisation dip are visible. One figure per protocol."""
    paths: list[Path] = []
    pal = _palette(df, palette)
    for proto in _protocols(df):
        d = _per_epoch(df[df["protocol"] == proto], ["test/acc"])
        if d.empty:
            continue
        paths += _epoch_figure(d, [("test/acc", "test accuracy (%)")], pal,
                               f"{proto}: test accuracy per epoch (mean ± sd over seeds)", out_dir,
                               f"test_curves_{slug(proto)}")
    return paths


# The function name starts with "test"; keep pytest from collecting it if imported in a test.
test_accuracy_curves.__test__ = False  # type: ignore[attr-defined]


def memorisation_curves(df: pd.DataFrame, out_dir: Path, *, palette: dict | None = None) -> list[Path]:
    """memo/noisy_fit (share of mislabelled training samples predicted as their *noisy* label) and
    memo/true_fit (predicted as their true label) per epoch. One figure per protocol; up to four
    settings per figure (the first four in table order)."""
    paths: list[Path] = []
    pal = _palette(df, palette)
    ms = [("memo/noisy_fit", "fits noisy label (%)"), ("memo/true_fit", "predicts true label (%)")]
    for proto in _protocols(df):
        d = _per_epoch(df[df["protocol"] == proto], [m for m, _ in ms])
        if d.empty:
            continue
        present = [x for x in ms if x[0] in set(d["metric"])]
        paths += _epoch_figure(d, present, pal,
                               f"{proto}: memorisation of the mislabelled training samples",
                               out_dir, f"memorisation_{slug(proto)}")
    return paths


def selection_curves(df: pd.DataFrame, out_dir: Path, *, palette: dict | None = None) -> list[Path]:
    """Precision and recall of the clean-sample selection per epoch, only for methods that record
    select/precision or select/recall. One figure per protocol."""
    paths: list[Path] = []
    pal = _palette(df, palette)
    ms = [("select/precision", "selection precision (%)"), ("select/recall", "selection recall (%)")]
    for proto in _protocols(df):
        d = _per_epoch(df[df["protocol"] == proto], [m for m, _ in ms])
        if d.empty:
            continue
        present = [x for x in ms if x[0] in set(d["metric"])]
        paths += _epoch_figure(d, present, pal, f"{proto}: clean-sample selection quality", out_dir,
                               f"selection_{slug(proto)}")
    return paths


# ----- mask sparsity ---------------------------------------------------------------------------

def mask_sparsity_of(config: dict) -> float | None:
    """The configured mask sparsity of a run: hp_resolved.mask.sparsity, config.mask.sparsity, else a ``sparsity`` /
    ``mask_sparsity`` / ``mask.sparsity`` entry of the method hyperparameters (hp or method_cfg)."""
    if not isinstance(config, dict):
        return None
    cands = []
    resolved = config.get("hp_resolved")  # the run's resolved settings, defaults filled in
    if isinstance(resolved, dict) and isinstance(resolved.get("mask"), dict):
        cands.append(resolved["mask"].get("sparsity"))
    mask = config.get("mask")
    if isinstance(mask, dict):
        cands.append(mask.get("sparsity"))
    for sec in ("hp", "method_cfg"):
        h = config.get(sec)
        if isinstance(h, dict):
            cands += [h.get("sparsity"), h.get("mask_sparsity"), h.get("mask.sparsity")]
            if isinstance(h.get("mask"), dict):
                cands.append(h["mask"].get("sparsity"))
    for v in cands:
        if v is None or isinstance(v, bool):
            continue
        try:
            return float(v)
        except (TypeError, ValueError):
            continue
    return None


def mask_sparsity(df: pd.DataFrame, runs: dict, out_dir: Path, *, metric: str | None = None,
                  palette: dict | None = None) -> list[Path]:
    """Accuracy vs the configured mask sparsity (one point per run, line through the per-sparsity
    means), one panel per noise setting, one figure per protocol. Skipped when no run has a mask
    sparsity in its config."""
    sp = {rid: mask_sparsity_of(((r or {}).get("config") or {})) for rid, r in (runs or {}).items()}
    sp = {k: v for k, v in sp.items() if v is not None}
    if not sp or df.empty:
        return []
    paths: list[Path] = []
    pal = _palette(df, palette)
    for proto in _protocols(df):
        d = df[df["protocol"] == proto]
        m = metric or stats.headline_metric(d)
        vals = _final(d, m)
        vals = vals[vals["run_id"].isin(sp)].copy()
        if vals.empty:
            continue
        vals["sparsity"] = vals["run_id"].map(sp)
        facets = _sorted_facets(vals)[:MAX_FACETS]
        multi = vals["dataset"].nunique() > 1
        methods = method_order(vals["method"].unique())
        with _style():
            fig, axes = _grid(len(facets), 3, 2.5)
            for ax, (ds, label) in zip(axes.ravel(), facets):
                v = vals[(vals["dataset"] == ds) & (vals["noise_label"] == label)]
                for meth in methods:
                    g = v[v["method"] == meth]
                    if g.empty:
                        continue
                    ax.scatter(g["sparsity"], 100 * g["value"], color=pal[meth], s=14, alpha=0.6)
                    mean = g.groupby("sparsity")["value"].mean()
                    ax.plot(mean.index, 100 * mean.to_numpy(), color=pal[meth], lw=1.6)
                ax.set_title(_t(_facet_name(ds, label, multi)))
                ax.set_xlabel("mask sparsity (config)")
                if ax.get_subplotspec().is_first_col():
                    ax.set_ylabel("test accuracy (%)")
            _suptitle(fig, f"{proto}: {m} vs mask sparsity (points: runs, line: mean)")
            _legend(fig, methods, pal)
            paths += _save(fig, out_dir, f"mask_sparsity_{slug(proto)}")
    return paths


# ----- gradient error on the probe batch -------------------------------------------------------

def gradient_error_methods(methods: Iterable[str], max_methods: int = 6) -> list[str]:
    """The methods a gradient-error figure shows: masked methods with the default mask settings
    (labels without a bracket, e.g. ``obd``, ``gce+obd``) and their unmasked bases; when no such
    label exists, the first ``max_methods`` masked labels and their bases."""
    ms = sorted({str(m) for m in methods})
    masked = [m for m in ms if stats.mask_base(m) is not None]
    plain = [m for m in masked if "[" not in m] or masked[:max_methods]
    bases = {stats.mask_base(m) for m in plain}
    return method_order([m for m in ms if m in plain or m in bases])


def gradient_error(df: pd.DataFrame, out_dir: Path, *, palette: dict | None = None) -> list[Path]:
    """The paper's claim, per epoch: relative gradient error of the noisy labels on the probe batch
    (``grad/err_fc_*`` top row, ``grad/err_feat_*`` bottom row), solid with the current mask, dashed
    without it (same network, same epoch), mean over seeds; one column per noise setting (first
    four). Methods: see :func:`gradient_error_methods`. Skipped when no masked run records them."""
    paths: list[Path] = []
    pal = _palette(df, palette)
    kinds = [("fc", "classifier-weight gradient error"), ("feat", "feature gradient error")]
    for proto in _protocols(df):
        d = _per_epoch(df[df["protocol"] == proto], stats.GRAD_ERRORS)
        if d.empty or not (d["metric"].str.endswith("_masked")).any():
            continue
        methods = gradient_error_methods(d["method"].unique())
        d = d[d["method"].isin(methods)]
        facets = _sorted_facets(d)[:4]
        multi = d["dataset"].nunique() > 1
        agg = d.groupby(["dataset", "noise_label", "method", "metric", "epoch"])["value"].mean().reset_index()
        with _style():
            cols = len(facets)
            fig = _new_figure(figsize=(min(WIDTH_IN, max(4.8, 1.4 + 2.0 * cols)), 0.9 + 2.2 * len(kinds)),
                              layout="constrained")
            axes = fig.subplots(len(kinds), cols, squeeze=False, sharex="col")
            for i, (kind, ylabel) in enumerate(kinds):
                for j, (ds, label) in enumerate(facets):
                    ax = axes[i, j]
                    a = agg[(agg["dataset"] == ds) & (agg["noise_label"] == label)]
                    for meth in methods:
                        for which, ls in (("masked", "-"), ("unmasked", "--")):
                            g = a[(a["method"] == meth) & (a["metric"] == f"grad/err_{kind}_{which}")]
                            g = g.sort_values("epoch")
                            if not g.empty:
                                ax.plot(g["epoch"], g["value"], color=pal[meth], ls=ls, lw=1.5)
                    ax.set_title(_t(_facet_name(ds, label, multi)))
                    if i == len(kinds) - 1:
                        ax.set_xlabel("epoch")
                    if j == 0:
                        ax.set_ylabel(_t(ylabel))
            _suptitle(fig, f"{proto}: ||G(noisy) - G(clean)|| / ||G(clean)|| on the probe batch "
                           "(solid: with the mask, dashed: without; mean over seeds)")
            styles = [Line2D([], [], color="0.3", ls="-", lw=1.5, label="with mask"),
                      Line2D([], [], color="0.3", ls="--", lw=1.5, label="without mask")]
            _legend(fig, methods, pal, extra=styles)
            paths += _save(fig, out_dir, f"gradient_error_{slug(proto)}")
    return paths


# ----- realised transition matrices -----------------------------------------------------------

def noise_artifacts(runs: dict) -> list[dict]:
    """One entry per distinct noise artifact (by labels SHA-256, else by matrix) that records a
    realised transition matrix: dataset, label, seed, actual_rate, sha256, matrix (C x C)."""
    seen: set[str] = set()
    out = []
    for rid in sorted(runs or {}):
        run = runs[rid] or {}
        cfg, res = run.get("config") or {}, run.get("result") or {}
        noise = res.get("noise") if isinstance(res.get("noise"), dict) else {}
        T = noise.get("transition")
        if T is None:
            continue
        try:
            M = np.asarray(T, dtype=float)
        except (TypeError, ValueError):
            continue
        if M.ndim != 2 or M.shape[0] != M.shape[1] or M.size == 0:
            continue
        sha = str(noise.get("sha256") or hashlib.sha256(M.tobytes()).hexdigest())
        if sha in seen:
            continue
        seen.add(sha)
        rate = noise.get("actual_rate", res.get("noise/actual_rate"))
        out.append({"run_id": rid, "dataset": str(cfg.get("dataset", "")),
                    "label": str(noise.get("label") or (cfg.get("noise") or {}).get("kind", "")),
                    "seed": cfg.get("seed"), "actual_rate": rate, "sha256": sha, "matrix": M})
    out.sort(key=lambda a: (a["dataset"], a["label"], str(a["seed"]), a["sha256"]))
    return out


def transition_matrices(runs: dict, out_dir: Path, *, max_artifacts: int = 48) -> list[Path]:
    """A heatmap of each noise artifact's realised transition matrix T[i, j] = P(noisy = j |
    true = i) (rows: true class, row-stochastic), titled with dataset, label, seed, measured flip
    rate and the labels' SHA-256 prefix. At most ``max_artifacts`` figures."""
    paths: list[Path] = []
    for art in noise_artifacts(runs)[:max_artifacts]:
        M = art["matrix"]
        C = M.shape[0]
        small = C <= 10
        with _style():
            size = 3.6 if small else 5.2
            fig = _new_figure(figsize=(size, size * 0.88), layout="constrained")
            ax = fig.subplots()
            annot = np.where(M >= 0.005, np.char.mod("%.2f", M), "") if small else False
            sns.heatmap(M, ax=ax, vmin=0, vmax=1, cmap="rocket_r", square=True, annot=annot,
                        fmt="", annot_kws={"size": 6}, cbar_kws={"shrink": 0.8, "label": "P(noisy | true)"},
                        xticklabels=small or "auto", yticklabels=small or "auto", rasterized=not small)
            ax.tick_params(axis="y", labelrotation=0)
            ax.set_xlabel("noisy label j")
            ax.set_ylabel("true class i")
            rate = art["actual_rate"]
            rtxt = f"{100 * float(rate):.1f}%" if isinstance(rate, (int, float)) and not math.isnan(rate) else "n/a"
            ax.set_title(_t(f"{art['dataset']} · {art['label']} · seed {art['seed']}\n"
                            f"measured flip rate {rtxt} · sha256 {art['sha256'][:10]}"), fontsize=8.5)
            stem = f"transition_{slug(art['dataset'])}_{slug(art['label'])}_{art['sha256'][:12]}"
            paths += _save(fig, out_dir, slug(stem))
    return paths


# ----- compute ---------------------------------------------------------------------------------

def device_label(device: Any) -> str:
    """'CPU' for cpu devices, 'GPU (<name>)' otherwise, 'unknown device' when not recorded."""
    d = str(device or "").strip()
    if not d:
        return "unknown device"
    if d.lower().startswith("cpu"):
        return "CPU"
    return f"GPU ({d})"


def compute_cost(df: pd.DataFrame, runs: dict, out_dir: Path, *, palette: dict | None = None) -> list[Path]:
    """Total device hours per method (sum of time/total_s, else meta.wall_s), one panel per
    device (CPU hours and GPU hours are never added up), bars annotated with the run count and the
    mean minutes per run. One figure per protocol."""
    paths: list[Path] = []
    pal = _palette(df, palette)
    for proto in _protocols(df):
        d = df[df["protocol"] == proto]
        per_run = d.drop_duplicates("run_id")[["run_id", "method"]].set_index("run_id")
        t = _final(d, "time/total_s").set_index("run_id")["value"]
        secs = per_run.index.to_series().map(t)
        for rid in per_run.index[secs.isna()]:
            w = (((runs or {}).get(rid) or {}).get("meta") or {}).get("wall_s")
            if isinstance(w, (int, float)) and not isinstance(w, bool):
                secs[rid] = float(w)
        per_run["seconds"] = secs
        per_run["device"] = [device_label((((runs or {}).get(r) or {}).get("meta") or {}).get("device"))
                             for r in per_run.index]
        per_run = per_run[per_run["seconds"].notna()]
        if per_run.empty:
            continue
        devices = sorted(per_run["device"].unique())
        with _style():
            methods_all = method_order(per_run["method"].unique())
            fig = _new_figure(figsize=(WIDTH_IN, 0.9 + 0.32 * len(methods_all)), layout="constrained")
            axes = fig.subplots(1, len(devices), squeeze=False)[0]
            for ax, dev in zip(axes, devices):
                g = per_run[per_run["device"] == dev].groupby("method")["seconds"].agg(["sum", "count", "mean"])
                ms = [m for m in methods_all if m in g.index]
                hours = [g.loc[m, "sum"] / 3600 for m in ms]
                y = np.arange(len(ms))
                ax.barh(y, hours, color=[pal[m] for m in ms])
                ax.set_yticks(y, [_t(m) for m in ms])
                ax.invert_yaxis()
                for yi, m, h in zip(y, ms, hours):
                    ax.annotate(f" {int(g.loc[m, 'count'])} runs, {g.loc[m, 'mean'] / 60:.1f} min/run",
                                (h, yi), va="center", fontsize=7.5)
                ax.set_xlim(0, max(hours) * 1.6 if max(hours) > 0 else 1)
                kind = "CPU" if dev == "CPU" else ("GPU" if dev.startswith("GPU") else "device")
                ax.set_xlabel(f"{kind} hours")
                ax.set_title(_t(dev))
            _suptitle(fig, f"{proto}: compute per method")
            paths += _save(fig, out_dir, f"compute_{slug(proto)}")
    return paths
