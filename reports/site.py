"""The leaderboard site: one self-contained directory with index.html, tables, figures and runs.

Layout of ``out_dir``::

    index.html                      the page (CSS inline, no JavaScript, nothing fetched)
    tables/{selected,last,oracle}_<protocol>.{md,tex,html,csv}
    tables/summary_<protocol>.csv   every number behind the tables (tidy)
    tables/select_{precision,recall,auc}_<protocol>.{md,csv}   methods that select clean samples
    tables/mask_effect_{selected,last}_<protocol>.{md,tex,html,csv}, mask_effect_<protocol>.csv,
    tables/gradient_error_<protocol>.{md,csv}   masked methods against their unmasked base
    figures/*.png, figures/*.svg
    runs/<run_id>.json              each run's config, result and meta, linked from its row

Every string that comes from a config, a name or the environment goes through ``html.escape``.
The page states the protocol of every table, the selection rule (which accuracy is the headline,
that best-epoch is an oracle, that selection uses the noisy validation split), the seed counts and
the software/hardware the runs used. Rows of different protocols are never mixed.
"""
from __future__ import annotations

import html
import json
import math
import platform
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from reports import figures as figs
from reports import stats, tables
from reports.figures import slug
from reports.tables import ACCURACIES, DASH, PM, method_order, pct

e = html.escape

COLUMNS = ["run_id", "method", "dataset", "model", "noise", "rate", "noise_label", "seed", "protocol",
           "epoch", "metric", "value"]

FIGURE_TEXT = {
    "acc_vs_rate": "Headline accuracy vs nominal noise rate; shaded bands and bars: 95% Student-t CI over seeds (none for one seed).",
    "test_curves": "Test accuracy per epoch (mean ± sd over seeds). A peak followed by a dip is "
                   "memorisation of the noisy labels; the last-epoch number sits after the dip.",
    "memorisation": "Mislabelled training samples: share predicted as their noisy label (memorised) "
                    "and as their true label, per epoch.",
    "selection": "Precision and recall of the clean-sample selection per epoch (methods that select).",
    "mask_sparsity": "Accuracy vs the configured mask sparsity (points: runs; line: mean per value).",
    "compute": "Device hours per method; CPU and GPU hours are shown separately, never added.",
    "gradient_error": "The mask's claim on a fixed probe batch: how far the noisy labels move the "
                      "classifier-weight gradient (top) and the gradient sent to the features (bottom) "
                      "from the clean-label gradient; solid with the current mask, dashed without.",
}

#: Per-epoch metrics shown as methods x settings tables (value at each run's last epoch).
MEMORISATION = {"memo_noisy_fit": ("memo/noisy_fit", "Memorisation at the last epoch: mislabelled training "
                                                    "images predicted as their noisy label"),
                "memo_true_fit": ("memo/true_fit", "Mislabelled training images predicted as their true "
                                                   "label, last epoch")}

SELECTION = {"select_precision": ("select/precision", "Selection precision (last epoch)"),
             "select_recall": ("select/recall", "Selection recall (last epoch)"),
             "select_auc": ("select/auc", "Selection AUC of P(clean) (last epoch)")}


# ----- small helpers -------------------------------------------------------------------------

def _json_safe(x: Any) -> Any:
    """NaN/inf -> None (strict JSON), tuples -> lists, unknown objects -> str."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if x is None or isinstance(x, (str, int, bool)):
        return x
    try:
        import numpy as np
        if isinstance(x, np.generic):
            return _json_safe(x.item())
        if isinstance(x, np.ndarray):
            return _json_safe(x.tolist())
    except ImportError:  # pragma: no cover
        pass
    return str(x)


def _normalise_frame(df: pd.DataFrame | None) -> pd.DataFrame:
    """A copy with every schema column present (missing ones empty), epoch nullable Int64."""
    df = pd.DataFrame(columns=COLUMNS) if df is None else df.copy()
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA
    df["epoch"] = pd.array(df["epoch"], dtype="Int64")
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    df["rate"] = pd.to_numeric(df["rate"], errors="coerce").astype(float)
    for c in ("run_id", "method", "dataset", "model", "noise", "noise_label", "protocol", "metric"):
        df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    return df


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _fmt_pp(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    return f"{100 * x:+.1f}"


def _fmt_num(x: Any, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    return f"{x:.{nd}f}"


def _kv_table(rows: list[tuple[str, str]], cls: str = "kv") -> str:
    if not rows:
        return "<p class=\"muted\">not recorded</p>"
    warn = ' class="warn"'
    body = "".join(
        f'<tr><th scope="row">{e(str(k))}</th><td{warn if str(v).startswith("MIXED") else ""}>'
        f"{e(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="{cls}"><tbody>{body}</tbody></table>'


def _figure_html(paths: list[Path], root: Path, kind: str, alt: str) -> str:
    out = []
    for p in paths:
        if p.suffix != ".png":
            continue
        svg = p.with_suffix(".svg")
        src = e(_rel(p, root))
        links = f'<a href="{src}">PNG</a>' + (f' · <a href="{e(_rel(svg, root))}">SVG</a>' if svg.exists() else "")
        out.append(f'<figure><a href="{e(_rel(svg if svg.exists() else p, root))}">'
                   f'<img src="{src}" alt="{e(alt)}"></a>'
                   f'<figcaption>{e(FIGURE_TEXT.get(kind, alt))} <span class="links">{links}</span>'
                   f"</figcaption></figure>")
    return "\n".join(out)


# ----- environment -------------------------------------------------------------------------------

def environment_rows(runs: dict, env: dict | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(hardware/software of the runs, from their meta) and (the report's own environment + env)."""
    dev, py, plat, sha = Counter(), Counter(), Counter(), Counter()
    versions: dict[str, Counter] = defaultdict(Counter)
    plugin_rows: dict[str, Counter] = defaultdict(Counter)
    for run in (runs or {}).values():
        meta = (run or {}).get("meta") or {}
        if not isinstance(meta, dict):
            continue
        for counter, key in ((dev, "device"), (py, "python"), (plat, "platform"), (sha, "git_sha")):
            v = meta.get(key)
            if v not in (None, ""):
                counter[str(v)] += 1
        vs = meta.get("versions")
        if isinstance(vs, dict):
            for k, v in vs.items():
                versions[str(k)][str(v)] += 1
        for p in meta.get("plugins") or []:  # recorded by the run; nothing of the plugin is imported here
            if isinstance(p, dict):
                what = p.get("version") or f"sha256 {str(p.get('sha256', ''))[:12]}"
                plugin_rows[str(p.get("module", "?"))][f"{what} ({p.get('kind', '?')})"] += 1

    def show(c: Counter) -> str:
        if not c:
            return "not recorded"
        return ", ".join(f"{k} ({n} run{'s' if n != 1 else ''})" for k, n in sorted(c.items()))

    runs_rows = [("devices", show(dev)), ("python", show(py)), ("platform", show(plat)),
                 ("git commit", show(sha))]
    runs_rows += [(f"package {k}", show(versions[k])) for k in sorted(versions)]
    runs_rows += [(f"plugin {k}", show(plugin_rows[k])) for k in sorted(plugin_rows)]
    report_rows: list[tuple[str, str]] = [("python", sys.version.split()[0]),
                                          ("platform", platform.platform())]
    for mod in ("numpy", "pandas", "matplotlib", "seaborn"):
        m = sys.modules.get(mod)
        if m is not None:
            report_rows.append((mod, str(getattr(m, "__version__", "?"))))
    for k, v in (env or {}).items():
        report_rows.append((str(k), v if isinstance(v, str) else json.dumps(_json_safe(v), sort_keys=True)))
    return runs_rows, report_rows


# ----- per-protocol pieces -----------------------------------------------------------------

def _ranking_html(lb: pd.DataFrame, proto: str, metric: str, n_cells: int) -> str:
    def iv(v, lo, hi, fmt, single: bool) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return DASH
        if math.isnan(lo):  # a single run per setting has no spread to resample
            return f'{fmt(v)} <span class="ci">(n = 1)</span>' if single else fmt(v)
        return f'{fmt(v)} <span class="ci">[{fmt(lo)}, {fmt(hi)}]</span>'
    rows = []
    for i, r in enumerate(lb.itertuples(index=False), 1):
        single = r.max_seeds <= 1
        seeds = str(r.min_seeds) if r.min_seeds == r.max_seeds else f"{r.min_seeds}–{r.max_seeds}"
        rows.append(
            f'<tr data-method="{e(str(r.method))}"><td>{i}</td><th scope="row">{e(str(r.method))}</th>'
            f"<td>{_fmt_num(r.mean_rank)}</td><td>{r.n_cells}</td>"
            f"<td>{iv(r.iqm, r.iqm_lo, r.iqm_hi, pct, single)}</td>"
            f"<td>{_fmt_pp(r.mean_diff)}</td><td>{iv(r.poi, r.poi_lo, r.poi_hi, _fmt_num, single)}</td>"
            f"<td>{e(seeds)}</td></tr>")
    return (f'<table class="ranking" data-protocol="{e(proto)}">'
            f"<caption>Overall ranking for protocol <code>{e(proto)}</code>: mean rank of "
            f"<code>{e(metric)}</code> over the {n_cells} noise setting{'s' if n_cells != 1 else ''} "
            f"of this protocol (1 = best; ties share the average rank). IQM: interquartile mean of "
            f"every run's score over runs x settings; P(improvement over CE): the chance that a run "
            f"of the method beats a run of CE in the same setting, averaged over settings (both as "
            f"defined by rliable, Agarwal et al. 2021), with [95% stratified-bootstrap intervals]."
            f"</caption>"
            "<thead><tr><th>#</th><th>method</th><th>mean rank</th><th>settings</th>"
            "<th>IQM over runs × settings (%)</th><th>mean Δ vs CE (pp)</th><th>P(improvement over CE)</th>"
            "<th>seeds per setting</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _paired_html(paired: pd.DataFrame, summary: pd.DataFrame, proto: str) -> str:
    if paired.empty:
        return ('<p class="muted">No paired comparison: the baseline CE has no run sharing a seed '
                "with another method in this protocol.</p>")
    t = tables.paper_table(summary, protocol=proto, published=False)
    cols = [c for c in t.columns]
    multi = summary["dataset"].nunique() > 1
    methods = method_order(paired["method"].unique())
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    body = []
    for m in methods:
        cells = []
        for c in cols:
            if multi:
                ds, label = c.split(" / ", 1)
                p = paired[(paired["method"] == m) & (paired["dataset"] == ds) & (paired["noise_label"] == label)]
            else:
                p = paired[(paired["method"] == m) & (paired["noise_label"] == c)]
            if p.empty:
                cells.append(f"<td>{DASH}</td>")
                continue
            r = p.iloc[0]
            cls = "pos" if r.ci_lo > 0 else ("neg" if r.ci_hi < 0 else "")
            band = (f'<span class="ci">[{_fmt_pp(r.ci_lo)}, {_fmt_pp(r.ci_hi)}]</span>'
                    if not math.isnan(r.ci_lo) else '<span class="ci">(n = 1)</span>')
            mde = "" if math.isnan(r.mde) else f", MDE {100 * r.mde:.1f}"
            cells.append(f'<td class="{cls}">{_fmt_pp(r.mean_diff)} {band}<br>'
                         f'<span class="ci">P={r.prob_improvement:.2f}, n={int(r.n_pairs)}{mde}</span></td>')
        body.append(f'<tr data-method="{e(m)}"><th scope="row">{e(m)}</th>{"".join(cells)}</tr>')
    return ('<table class="paired"><caption>Paired difference to CE on the same noise realisation '
            "(same seed = same noisy labels and split), percentage points: mean [95% Student-t "
            "interval; none for a single pair]; P = share of paired seeds where the method beats CE "
            "(ties count ½); MDE = the smallest true difference these pairs would detect with 80% "
            "power (two-sided paired t-test at 5%, from the spread of the differences). Green: "
            "interval above 0; red: below."
            f"</caption><thead><tr><th>method</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _seeds_html(summary: pd.DataFrame, proto: str) -> str:
    t = tables.paper_table(summary, protocol=proto, published=False)
    s = summary[summary["protocol"] == proto]
    multi = s["dataset"].nunique() > 1
    head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
    body = []
    for m in t.index:
        cells = []
        for c in t.columns:
            ds, label = c.split(" / ", 1) if multi else (None, c)
            r = s[(s["method"] == m) & (s["noise_label"] == label) & ((s["dataset"] == ds) if multi else True)]
            n = int(r["n_seeds"].iloc[0]) if not r.empty else 0
            cells.append(f'<td class="{"warn" if 0 < n < 3 else ""}">{n if n else DASH}</td>')
        body.append(f'<tr data-method="{e(str(m))}"><th scope="row">{e(str(m))}</th>{"".join(cells)}</tr>')
    return ('<table class="seeds"><caption>Seeds per setting (runs with a value for the headline '
            "accuracy). Fewer than 3 seeds are highlighted.</caption>"
            f"<thead><tr><th>method</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _runs_html(dfp: pd.DataFrame, runs: dict, root: Path, run_files: dict[str, str]) -> str:
    finals = dfp[dfp["epoch"].isna()]
    piv = finals.pivot_table(index="run_id", columns="metric", values="value", aggfunc="last")
    first = dfp.drop_duplicates("run_id").set_index("run_id")
    order = first.sort_values(["dataset", "noise_label", "method", "seed"]).index
    rows = []
    for rid in order:
        r = first.loc[rid]
        meta = ((runs or {}).get(rid) or {}).get("meta") or {}

        def acc(metric: str) -> str:
            return pct(piv.at[rid, metric]) if (metric in piv.columns and rid in piv.index) else DASH
        secs = piv.at[rid, "time/total_s"] if ("time/total_s" in piv.columns and rid in piv.index) else math.nan
        link = (f'<a href="{e(run_files[rid])}"><code>{e(rid)}</code></a>' if rid in run_files
                else f"<code>{e(rid)}</code>")
        rows.append(
            f'<tr data-run="{e(rid)}"><td>{link}</td><td>{e(r["method"])}</td><td>{e(r["dataset"])}</td>'
            f'<td>{e(r["noise_label"])}</td><td>{e(str(r["seed"]))}</td>'
            f"<td>{acc('test/acc_at_best_val')}</td><td>{acc('test/acc_last')}</td>"
            f"<td>{acc('test/acc_best')}</td><td>{acc('noise/actual_rate')}</td>"
            f"<td>{e(str(meta.get('device', DASH)))}</td>"
            f"<td>{DASH if math.isnan(secs) else f'{secs / 60:.1f}'}</td></tr>")
    return ("<details class=\"runs\"><summary>All runs of this protocol "
            f"({len(order)}): each run id links to its config, result and meta (JSON)</summary>"
            '<table class="runlist"><thead><tr><th>run</th><th>method</th><th>dataset</th><th>noise</th>'
            "<th>seed</th><th>selected (%)</th><th>last (%)</th><th>oracle (%)</th>"
            "<th>measured flip rate (%)</th><th>device</th><th>minutes</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></details>")


# ----- the page ----------------------------------------------------------------------------------

CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde1e8;--bg:#f6f7f9;--accent:#1f5fa8;--ok:#1c7c3f;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header.top{background:#18243a;color:#fff;padding:1.6em 0 1.3em}
header.top h1{margin:0 0 .2em;font-size:1.8em;font-weight:650}
header.top p{margin:.2em 0;color:#c9d3e3}
header.top a{color:#fff}
.wrap{max-width:1180px;margin:0 auto;padding:0 1.4em}
main section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1.2em 1.5em;margin:1.4em 0}
h2{margin:.1em 0 .6em;font-size:1.4em}
h3{margin:1.4em 0 .5em;font-size:1.1em}
nav.toc a{margin-right:1em}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em;background:#eef1f5;padding:0 .25em;border-radius:3px}
table{border-collapse:collapse;margin:.6em 0 1em;font-variant-numeric:tabular-nums;font-size:.92em}
caption{caption-side:top;text-align:left;color:var(--muted);padding-bottom:.4em;max-width:70em}
th,td{padding:.35em .75em;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
thead th{border-bottom:2px solid var(--fg);font-weight:600}
thead th:first-child,table.ranking thead th:nth-child(2){text-align:left}
table.ranking thead th{max-width:9em}
th[scope=row]{text-align:left;font-weight:600;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
tfoot th,tfoot td{color:var(--muted);font-style:italic;border-top:2px solid var(--line)}
table.kv th{text-align:left;color:var(--muted);font-weight:500}
table.kv td{text-align:left}
td.warn,.warn{color:var(--bad);font-weight:600}
td.pos{background:#e8f5ec}td.neg{background:#fbeaea}
.ci{color:var(--muted);font-size:.85em}
td.pub,th.pub{color:#6b4f00;background:#fff8e1}
.scroll{overflow-x:auto}
.notes{font-size:.85em;color:var(--muted)}
.muted{color:var(--muted)}
.badge{display:inline-block;font-size:.7em;font-weight:700;letter-spacing:.04em;padding:.15em .5em;border-radius:4px;vertical-align:middle;margin-left:.5em}
.badge.headline{background:#e3f0ff;color:var(--accent)}
.badge.oracle{background:#fde8e7;color:var(--bad)}
.tablebox.oracle{border-left:4px solid var(--bad);padding-left:1em}
.tablebox.headline{border-left:4px solid var(--accent);padding-left:1em}
.downloads{font-size:.85em;color:var(--muted)}
.rule{background:#fffbea;border:1px solid #f0d98c;border-radius:6px;padding:.8em 1.2em}
.rule li{margin:.25em 0}
.figs{display:grid;grid-template-columns:1fr;gap:1.4em;justify-items:start}
.figs figure{max-width:980px}
.figs.small{grid-template-columns:repeat(auto-fill,minmax(260px,1fr))}
figure{margin:0}
figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px;background:#fff}
figcaption{font-size:.85em;color:var(--muted)}
details summary{cursor:pointer;color:var(--accent);margin:.4em 0}
footer{color:var(--muted);font-size:.85em;padding:1em 0 3em}
"""


def _write_table(t: pd.DataFrame, root: Path, stem: str, written: dict, exts=("md", "tex", "html", "csv")) -> str:
    """Write ``t`` as tables/<stem>.<ext>; return the download links' HTML."""
    writers = {"md": tables.to_markdown, "tex": tables.to_latex, "html": tables.to_html, "csv": tables.to_csv}
    links = []
    for ext in exts:
        path = root / "tables" / f"{stem}.{ext}"
        writers[ext](t, path)
        written["tables"].append(_rel(path, root))
        links.append(f'<a href="{e(_rel(path, root))}">{ext.upper() if ext != "tex" else "LaTeX"}</a>')
    return f'<p class="downloads">Download: {" · ".join(links)}</p>'


def _selection_html(dfp: pd.DataFrame, proto: str, info: dict, root: Path, written: dict,
                    which: dict | None = None, heading: str = "Clean-sample selection") -> list[str]:
    """Methods x settings tables of a last-epoch diagnostic: selection precision / recall / AUC
    (methods that select samples) or memorisation."""
    parts = []
    for key, (metric, title) in (which or SELECTION).items():
        s = stats.cell_summary(dfp, metric)
        if s.empty:
            continue
        t = tables.paper_table(s, protocol=proto, published=False, info=info)
        t.attrs.update(title=title, rule_label="Measured", rule=f"{metric} against the clean labels (runner only)")
        if not parts:
            parts.append(f"<h3>{e(heading)}</h3>")
        parts.append(f'<div class="tablebox"><h3>{e(title)} <code>{e(metric)}</code></h3>')
        parts.append('<div class="scroll">' + tables.to_html(t, css_class="paper select") + "</div>")
        parts.append(_write_table(t, root, f"{key}_{slug(proto)}", written, ("md", "csv")) + "</div>")
    return parts


def _regime_html(dfp: pd.DataFrame) -> str:
    """One sentence per noise setting: does CE memorise here (the regime the methods are for)?"""
    r = stats.regime(dfp)
    if r.empty:
        return ('<p class="muted">Regime: no CE run in this protocol, so whether it is a memorisation '
                "regime cannot be said.</p>")
    items = []
    for x in r.itertuples(index=False):
        if x.band == "memorisation":
            verdict = "<strong>memorisation regime</strong>"
        elif x.band == "unknown":
            verdict = ("<strong>regime unknown</strong>: no memorisation probe was recorded "
                       "(memo_samples = 0), so whether CE fits the noisy labels cannot be said")
        elif x.band == "borderline":
            verdict = ('<strong class="warn">borderline</strong>: CE meets one criterion or comes close '
                       "to both; read a comparison here with both figures in mind")
        else:
            verdict = ('<strong class="warn">CE does not memorise here</strong>: a comparison in this '
                       "setting says little about robustness to label noise")
        fit = DASH if math.isnan(x.noisy_fit) else f"{100 * x.noisy_fit:.0f}%"
        items.append(f"<li><code>{e(str(x.noise_label))}</code>: CE's last epoch is {100 * x.drop:.1f} points "
                     f"below its best tested epoch and it fits {fit} of the mislabelled training images "
                     f"(n = {x.n_seeds}): {verdict}.</li>")
    return ('<div class="regime"><h3>Regime</h3><p class="muted">A setting is a memorisation regime when CE, '
            f"trained long enough, loses at least {100 * stats.REGIME_DROP:.0f} points after its best epoch "
            f"and fits at least {100 * stats.REGIME_FIT:.0f}% of the noisy labels; it clearly does not "
            f"when it loses under {50 * stats.REGIME_DROP:.0f} points and fits under "
            f"{50 * stats.REGIME_FIT:.0f}%; in between it is borderline.</p><ul>"
            + "".join(items) + "</ul></div>")


def _mask_html(dfp: pd.DataFrame, runs: dict, proto: str, info: dict, root: Path, written: dict) -> list[str]:
    """The masked methods against their own unmasked base: paired effect and gradient error."""
    if not any(stats.mask_base(str(m)) for m in dfp["method"].unique()):
        return []
    ps = slug(proto)
    parts = ["<h3>The mask against its unmasked base</h3>",
             '<p class="muted">Each masked method (<code>obd</code> = CE with the mask, <code>X+obd</code>) '
             "minus its own base on the same seed, hence the same noisy labels.</p>"]
    parts += _verdict_html(dfp, runs, proto, info, root, written)
    frames = []
    for key in ("selected", "last", "last10"):
        metric = ACCURACIES[key][0]
        eff = stats.mask_effect(dfp, metric, runs=runs)
        if eff.empty:
            continue
        frames.append(eff)
        t = tables.effect_table(eff, protocol=proto, info=info)
        parts.append(f'<div class="tablebox"><h3>{e(ACCURACIES[key][1])} <code>{e(metric)}</code></h3>')
        parts.append('<div class="scroll">' + tables.to_html(t, css_class="paper effect") + "</div>")
        parts.append(_write_table(t, root, f"mask_effect_{key}_{ps}", written) + "</div>")
        h = tables.host_table(stats.cell_summary(dfp, metric), eff, protocol=proto, info=info)
        if not h.empty:
            parts.append(f'<div class="tablebox"><h3>Hosts and +mask, {e(ACCURACIES[key][1])}</h3>')
            parts.append('<div class="scroll">' + tables.to_html(h, css_class="paper hosts") + "</div>")
            parts.append(_write_table(h, root, f"hosts_mask_{key}_{ps}", written) + "</div>")
    if frames:
        path = root / "tables" / f"mask_effect_{ps}.csv"
        tables.csv_safe_frame(pd.concat(frames, ignore_index=True)).to_csv(path, index=False)
        written["tables"].append(_rel(path, root))
    else:
        parts.append('<p class="muted">No masked run shares a seed with its unmasked base.</p>')
    g = stats.gradient_error_summary(dfp)
    if not g.empty and any(c.endswith("_masked_mean") for c in g.columns):
        t = tables.gradient_table(g, protocol=proto, info=info)
        parts.append('<div class="tablebox"><h3>Gradient error of the noisy labels</h3>')
        parts.append('<div class="scroll">' + tables.to_html(t, css_class="paper gradient") + "</div>")
        parts.append(_write_table(t, root, f"gradient_error_{ps}", written, ("md", "csv")) + "</div>")
    return parts


def _verdict_html(dfp: pd.DataFrame, runs: dict, proto: str, info: dict, root: Path, written: dict) -> list[str]:
    """Every variant against its base (the mask on each host, the KAN head against the linear
    one, each ablation of the mask against the mask it varies), with intervals, minimum
    detectable effects and the seeds a half-point would need."""
    sel, last = ACCURACIES["selected"][0], ACCURACIES["last"][0]
    effects = {m: pd.concat([f(dfp, m, runs=runs) for f in (stats.mask_effect, stats.classifier_effect,
                                                          stats.ablation_effect)],
                            ignore_index=True) for m in (sel, last)}
    if effects[sel].empty:
        return []
    t = tables.verdict_table(stats.cell_summary(dfp, sel), effects[sel], effects[last], protocol=proto,
                             regime=stats.regime(dfp), info=info)
    if t.empty:
        return []
    return ['<div class="tablebox"><h3>Verdict: each variant against its base</h3>',
            '<div class="scroll">' + tables.to_html(t, css_class="paper verdict") + "</div>",
            _write_table(t, root, f"verdict_{slug(proto)}", written) + "</div>"]


def _protocol_section(proto: str, dfp: pd.DataFrame, runs: dict, root: Path, palette: dict,
                      run_files: dict[str, str]) -> tuple[str, dict]:
    """HTML of one protocol's section and a small record of what was written."""
    ps = slug(proto)
    info = tables.protocol_info(runs, proto, dfp)
    fields = tables.resolved_protocol(runs, dfp, proto)
    headline = stats.headline_metric(dfp)
    head_key = next(k for k, v in ACCURACIES.items() if v[0] == headline)
    summaries = {k: stats.cell_summary(dfp, m) for k, (m, _, _) in ACCURACIES.items()}
    hs = summaries[head_key]
    paireds = {k: stats.paired_differences(dfp, m, runs=runs) for k, (m, _, _) in ACCURACIES.items()}
    paired = paireds[head_key]
    agg = stats.aggregates(dfp, headline)
    lb = stats.leaderboard(hs, paired, agg)
    n_cells = int(hs[list(stats.CELL_KEYS)].astype(str).drop_duplicates().shape[0]) if not hs.empty else 0
    written: dict[str, list[str]] = {"tables": [], "figures": []}

    # tidy numbers behind everything
    tidy = [s for s in summaries.values() if not s.empty]
    if tidy:
        path = root / "tables" / f"summary_{ps}.csv"
        tables.csv_safe_frame(pd.concat(tidy, ignore_index=True)).to_csv(path, index=False)
        written["tables"].append(_rel(path, root))
    # paired differences to CE for every accuracy (last epoch, selected, oracle), not only the
    # headline: in the memorisation regime the last epoch is where methods differ most
    every = [p for p in [paired] + [v for k, v in paireds.items() if k != head_key] if not p.empty]
    if every:
        path = root / "tables" / f"paired_vs_ce_{ps}.csv"
        tables.csv_safe_frame(pd.concat(every, ignore_index=True)).to_csv(path, index=False)
        written["tables"].append(_rel(path, root))

    measured = sorted({f"{lab}: {pct(v)}%" for lab, v in
                       hs.groupby("noise_label")["actual_rate"].mean().items() if not math.isnan(v)}) \
        if not hs.empty else []
    info_rows = list(info.items()) + [
        ("datasets", ", ".join(sorted(dfp["dataset"].unique()))),
        ("noise settings", ", ".join(tables.paper_table(hs, protocol=proto, published=False).columns)
         if not hs.empty else DASH),
        ("measured flip rate", "; ".join(measured) if measured else "not recorded"),
        ("headline accuracy", f"{ACCURACIES[head_key][1]} ({headline})"),
        ("runs", str(dfp["run_id"].nunique())),
    ]
    parts = [f'<section id="p-{e(ps)}" class="protocol"><h2>Protocol <code>{e(proto)}</code></h2>',
             '<div class="scroll">' + _kv_table(info_rows) + "</div>"]
    if headline != "test/acc_at_best_val":
        parts.append('<p class="warn">No noisy-validation selection is recorded for this protocol '
                     "(no validation split), so the headline is the last-epoch accuracy.</p>")
    parts.append(_regime_html(dfp))
    parts.append("<h3>Overall ranking</h3>")
    parts.append('<div class="scroll">' + (_ranking_html(lb, proto, headline, n_cells) if not lb.empty
                                          else '<p class="muted">No accuracy recorded yet.</p>') + "</div>")
    parts.append("<h3>Per-setting results</h3>")
    order = [head_key] + [k for k in ACCURACIES if k != head_key]
    for key in order:
        metric, title, rule = ACCURACIES[key]
        s = summaries[key]
        badge = ('<span class="badge headline">HEADLINE</span>' if key == head_key else "") + \
                ('<span class="badge oracle">ORACLE</span>' if key == "oracle" else "")
        cls = "oracle" if key == "oracle" else ("headline" if key == head_key else "")
        parts.append(f'<div class="tablebox {cls}"><h3>{e(title)} <code>{e(metric)}</code>{badge}</h3>')
        if s.empty:
            parts.append(f'<p class="muted">Not recorded by any run of this protocol ({e(rule)}).</p></div>')
            continue
        t = tables.paper_table(s, protocol=proto, info=info, fields=fields)
        links = []
        for ext, writer in (("md", tables.to_markdown), ("tex", tables.to_latex), ("html", tables.to_html),
                            ("csv", tables.to_csv)):
            path = root / "tables" / f"{key}_{ps}.{ext}"
            writer(t, path)
            written["tables"].append(_rel(path, root))
            links.append(f'<a href="{e(_rel(path, root))}">{ext.upper() if ext != "tex" else "LaTeX"}</a>')
        parts.append('<div class="scroll">' + tables.to_html(t, css_class=f"paper {key}") + "</div>")
        parts.append(f'<p class="downloads">Download: {" · ".join(links)}</p></div>')
    parts.append("<h3>Paired comparison with CE</h3>")
    parts.append('<div class="scroll">' + _paired_html(paired, hs, proto) + "</div>")
    parts += _selection_html(dfp, proto, info, root, written, MEMORISATION, "Memorisation")
    parts += _selection_html(dfp, proto, info, root, written)
    parts += _mask_html(dfp, runs, proto, info, root, written)
    if not hs.empty:
        parts.append("<h3>Seeds</h3>")
        parts.append('<div class="scroll">' + _seeds_html(hs, proto) + "</div>")

    # figures
    fig_dir = root / "figures"
    fig_calls = [
        ("acc_vs_rate", lambda: figs.accuracy_vs_rate(dfp, fig_dir, metric=headline, palette=palette)),
        ("test_curves", lambda: figs.test_accuracy_curves(dfp, fig_dir, palette=palette)),
        ("memorisation", lambda: figs.memorisation_curves(dfp, fig_dir, palette=palette)),
        ("selection", lambda: figs.selection_curves(dfp, fig_dir, palette=palette)),
        ("mask_sparsity", lambda: figs.mask_sparsity(dfp, runs, fig_dir, metric=headline, palette=palette)),
        ("compute", lambda: figs.compute_cost(dfp, runs, fig_dir, palette=palette)),
        ("gradient_error", lambda: figs.gradient_error(dfp, fig_dir, palette=palette)),
    ]
    fig_html = []
    for kind, call in fig_calls:
        paths = call()
        written["figures"] += [_rel(p, root) for p in paths]
        if paths:
            fig_html.append(_figure_html(paths, root, kind, f"{kind.replace('_', ' ')} for protocol {proto}"))
    if fig_html:
        parts.append("<h3>Figures</h3>")
        parts.append('<div class="figs">' + "\n".join(fig_html) + "</div>")
    parts.append(_runs_html(dfp, runs, root, run_files))
    parts.append("</section>")
    return "\n".join(parts), {"protocol": proto, "headline": headline, "leaderboard": lb, **written}


def _rule_html(heads: dict[str, str]) -> str:
    head_list = "".join(f"<li><code>{e(p)}</code>: {e(ACCURACIES[next(k for k, v in ACCURACIES.items() if v[0] == m)][1])}"
                        f" (<code>{e(m)}</code>)</li>" for p, m in heads.items())
    return f"""<section id="rules" class="rule"><h2>How to read these numbers</h2>
<ul>
<li><strong>Headline accuracy</strong> per protocol (used for the ranking):<ul>{head_list or "<li>none</li>"}</ul></li>
<li><strong>Selected by noisy validation</strong> (<code>test/acc_at_best_val</code>): test accuracy at the epoch with the
best accuracy on the <em>noisy validation split</em>, a held-out part of the noisy training set carrying the same
label noise. No clean label and no test label is used to choose the epoch.</li>
<li><strong>Last epoch</strong> (<code>test/acc_last</code>): test accuracy after the final epoch.</li>
<li><strong>Best epoch</strong> (<code>test/acc_best</code>) is an <strong class="warn">ORACLE</strong>: the epoch is chosen
on the test set. It is shown only because many papers report it; it is an upper bound, not a result.</li>
<li><strong>Uncertainty</strong>: cells are mean {PM} std over seeds (ddof = 1), "n = 1" where a single seed ran
(no spread, no interval). Per-setting means and paired differences carry 95% Student-t intervals
(mean {PM} t·s/√n; with 3 seeds t = 4.30, so intervals are wide, as they should be). Differences to CE are
paired: the seed fixes the noise realisation and the split, so both runs saw the same noisy labels; the
paired P is the share of seeds where the method beats CE (ties count ½). Across settings, the ranking table
gives the interquartile mean over runs × settings and the probability of improvement over CE as defined by
rliable (Agarwal et al., NeurIPS 2021), with 95% percentile intervals from a stratified bootstrap (runs
resampled within settings, 2000 resamples, seed 0). The ranking averages per-setting ranks within one
protocol only. One run per method and seed enters a number; a seed count is the number of runs
averaged.</li>
<li><strong>Noise rates</strong>: the column label gives the nominal rate; the measured flip rate (share of training
labels that differ from the clean label) is printed under every table. <code>sym</code> flips to another class
(measured rate = r); <code>sym_incl</code> draws from all classes including the true one (the DivideMix
convention, measured rate ≈ r(C−1)/C).</li>
<li><strong>Protocols are never mixed</strong>: each table and ranking covers one protocol (backbone, epochs,
optimiser, schedule, batch size, validation split, augmentation, noise convention). Published numbers
appear only for the same protocol, with their source.</li>
</ul></section>"""


def build_report(df: pd.DataFrame, runs: dict, out_dir: Path, *, title: str = "Noisy-label benchmark",
                 env: dict | None = None) -> Path:
    """Write the leaderboard site into ``out_dir`` and return the path of its index.html.

    df: the long frame (see docs/ARCHITECTURE.md, columns run_id ... value); runs: run_id ->
    {"config", "result", "meta"}. ``env`` adds rows to the environment section (e.g. a build
    time or host; never secrets). Works on an empty or one-run store and on runs missing optional
    metrics; nothing is read outside df/runs.
    """
    root = Path(out_dir)
    for sub in ("tables", "figures", "runs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    df = _normalise_frame(df)
    runs = dict(runs or {})

    run_files: dict[str, str] = {}
    for rid in sorted(set(runs) | set(df["run_id"].unique())):
        if rid not in runs:
            continue
        path = root / "runs" / f"{slug(rid)}.json"
        doc = {"run_id": rid, **{k: (runs[rid] or {}).get(k) for k in ("config", "result", "meta")}}
        path.write_text(json.dumps(_json_safe(doc), indent=2, sort_keys=True, allow_nan=False), encoding="utf-8")
        run_files[rid] = _rel(path, root)

    methods = sorted(set(df["method"].unique()) | {str(((r or {}).get("config") or {}).get("method", ""))
                                                  for r in runs.values()} - {""})
    palette = figs.method_palette(methods)
    protocols = sorted(p for p in df["protocol"].unique())
    sections, records = [], []
    for proto in protocols:
        html_part, rec = _protocol_section(proto, df[df["protocol"] == proto], runs, root, palette, run_files)
        sections.append(html_part)
        records.append(rec)
    heads = {r["protocol"]: r["headline"] for r in records}

    in_frame = set(df["run_id"].unique())
    trans = figs.transition_matrices({k: v for k, v in runs.items() if not in_frame or k in in_frame},
                                     root / "figures")
    trans_html = ""
    if trans:
        items = "\n".join(
            f'<figure><a href="{e(_rel(p.with_suffix(".svg"), root))}"><img src="{e(_rel(p, root))}" '
            f'alt="realised transition matrix {e(p.stem)}"></a></figure>' for p in trans if p.suffix == ".png")
        trans_html = (f'<section id="noise"><h2>Realised noise transition matrices</h2>'
                      "<p class=\"muted\">One per noise artifact (distinct noisy label vector): "
                      "T[i, j] = P(noisy label j | true class i), rows sum to 1, measured on the training set. "
                      f"{len(trans) // 2} artifact(s).</p>"
                      f'<details {"open" if len(trans) <= 24 else ""}><summary>show matrices</summary>'
                      f'<div class="figs small">{items}</div></details></section>')

    runs_env, report_env = environment_rows({k: v for k, v in runs.items()}, env)
    n_runs = df["run_id"].nunique()
    toc = " ".join(f'<a href="#p-{e(slug(p))}">{e(p)}</a>' for p in protocols)
    body_sections = "\n".join(sections) if sections else (
        '<section><h2>No results</h2><p class="muted">The store has no finished run with metrics yet.</p></section>')
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header class="top"><div class="wrap">
<h1>{e(title)}</h1>
<p>{n_runs} run{"s" if n_runs != 1 else ""} · {len(protocols)} protocol{"s" if len(protocols) != 1 else ""} ·
{len(df["method"].unique()) if not df.empty else 0} method(s). Accuracies in %, mean {PM} std over seeds.</p>
<nav class="toc"><a href="#rules">Reading guide</a> {toc} <a href="#noise">Noise</a> <a href="#env">Environment</a></nav>
</div></header>
<main class="wrap">
{_rule_html(heads)}
{body_sections}
{trans_html}
<section id="env"><h2>Environment</h2>
<h3>Runs (hardware and software, from each run's meta)</h3>
<div class="scroll">{_kv_table(runs_env)}</div>
<h3>This report</h3>
<div class="scroll">{_kv_table(report_env)}</div>
</section>
</main>
<footer class="wrap">Generated by the noisy-label benchmark's reports package. Self-contained: every file this page
uses lies in this directory. Tables: <code>tables/</code> · figures: <code>figures/</code> · runs: <code>runs/</code>.</footer>
</body>
</html>
"""
    index = root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
