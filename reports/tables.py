"""Paper-layout tables (methods x noise settings) and their Markdown / LaTeX / HTML / CSV writers.

A table is built for *one protocol and one accuracy* from :func:`reports.stats.cell_summary`:
rows are methods (raw registry names such as ``gce+obd``), columns are noise settings
(``sym-20%``, ``pairflip-45%``, ``human-worst``; prefixed by the dataset when a protocol covers
several datasets), cells are ``mean ± std`` in percent with one decimal over seeds. Everything a
writer needs to say what the numbers are (protocol, accuracy, selection rule, seeds, measured flip
rates, published numbers and their sources, which cells are best) travels in ``table.attrs``, so
the writers are plain functions of the returned frame. No tabulate / jinja2.
"""
from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from reports import published as pub
from reports.stats import ablation_base, mask_base, seeds_for_half_width

#: The three accuracies a report shows, in display order: key -> (metric, title, rule).
ACCURACIES: dict[str, tuple[str, str, str]] = {
    "selected": ("test/acc_at_best_val", "Selected by noisy validation",
                 "test accuracy at the epoch with the best accuracy on the noisy validation split "
                 "(no clean label is used to choose)"),
    "last": ("test/acc_last", "Last epoch", "test accuracy after the last training epoch"),
    "last10": ("test/acc_last10_mean", "Mean of the last 10 epochs",
               "mean test accuracy over the last 10 training epochs (the rule of the SED, DISC and "
               "JoCoR tables)"),
    "oracle": ("test/acc_best", "Best epoch (ORACLE)",
               "ORACLE: the best test accuracy over all epochs; the epoch is chosen on the test "
               "set, so this is an upper bound, not a valid result"),
}

NOISE_ORDER = ["none", "sym", "sym_incl", "pairflip", "asym", "idn", "human", "twin"]
HUMAN_ORDER = ["clean", "aggre", "rand1", "rand2", "rand3", "worst", "noisy"]
DASH = "\u2013"
PM = "\u00b1"
NE = "\u2260"


# ----- ordering and formatting -----------------------------------------------------------------

def method_order(methods: Iterable[str], baseline: str = "ce") -> list[str]:
    """Baseline first, then alphabetical by family, each masked variant right after its base:
    ce, obd, obd[sparsity=0.1], coteaching, coteaching+obd, gce, gce+obd, ... (``obd`` is CE with
    the mask, so it sits in CE's family)."""
    def family(m: str) -> str:
        base = mask_base(m)
        return base.split("[")[0] if base else m.split("+")[0].split("[")[0]
    ms = sorted({str(m) for m in methods})
    return sorted(ms, key=lambda m: (family(m) != baseline, family(m), mask_base(m) is not None, m))


def _column_sort_key(dataset: str, noise: str, rate: float, label: str) -> tuple:
    kind = NOISE_ORDER.index(noise) if noise in NOISE_ORDER else len(NOISE_ORDER)
    r = -1.0 if rate is None or (isinstance(rate, float) and math.isnan(rate)) else float(rate)
    tail = label.split("-", 1)[-1]
    human = HUMAN_ORDER.index(tail) if tail in HUMAN_ORDER else len(HUMAN_ORDER)
    return (str(dataset), kind, str(noise), r, human, str(label))


def pct(x: float, decimals: int = 1) -> str:
    """A fraction as a percent string without the sign ('' handled by callers), NaN -> en dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    return f"{100.0 * float(x):.{decimals}f}"


def format_cell(mean: float, std: float, n: int, *, max_n: int | None = None, decimals: int = 1) -> str:
    """'85.3 ± 0.4'; a single seed gives '85.3 (n=1)'; fewer seeds than the table's most get '(n=k)'."""
    if mean is None or math.isnan(mean):
        return DASH
    if n <= 1 or std is None or math.isnan(std):
        return f"{pct(mean, decimals)} (n={n})"
    s = f"{pct(mean, decimals)} {PM} {pct(std, decimals)}"
    if max_n is not None and n < max_n:
        s += f" (n={n})"
    return s


# ----- protocol description ------------------------------------------------------------------

def _dig(d: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _first(cfg: dict, *paths: str) -> Any:
    for p in paths:
        v = _dig(cfg, p)
        if v not in (None, "", {}):
            return v
    return None


def _optimiser_text(cfg: dict) -> str | None:
    v = _first(cfg, "protocol.optimizer", "protocol.optimiser")
    if v is not None and not isinstance(v, dict):
        parts = [str(v)]
        for k, label in (("lr", "lr"), ("momentum", "momentum" if v == "sgd" else "beta1"),
                         ("weight_decay", "wd"), ("grad_clip", "gradient-norm clip"),
                         ("eta_min", "eta_min"), ("restart_every", "restart every")):
            val = _dig(cfg, f"protocol.{k}")
            if val is not None:
                parts.append(f"{label} {val}")
        return ", ".join(parts)
    o = cfg.get("optim") if isinstance(cfg.get("optim"), dict) else None
    if not o:
        return None
    parts = [str(o.get("name", "?"))]
    for k, label in (("lr", "lr"), ("momentum", "momentum"), ("weight_decay", "wd")):
        if o.get(k) is not None:
            parts.append(f"{label} {o[k]}")
    return ", ".join(parts)


PROTOCOL_FIELDS: list[tuple[str, Any]] = [
    ("backbone", lambda c: _first(c, "protocol.model", "model")),
    ("epochs", lambda c: _first(c, "protocol.epochs", "epochs")),
    ("optimiser", _optimiser_text),
    ("schedule", lambda c: _first(c, "protocol.schedule", "optim.schedule")),
    ("batch size", lambda c: _first(c, "protocol.batch_size", "optim.batch_size", "batch_size")),
    ("validation split", lambda c: (lambda v: None if v is None else
                                    f"{100 * float(v):g}% of the noisy training set (same noise)")(
        _first(c, "protocol.val_frac", "val_frac"))),
    ("augmentation", lambda c: _first(c, "protocol.augment", "augment")),
    ("noise convention", lambda c: _first(c, "protocol.noise_convention", "noise.mode")),
]


def protocol_info(runs: dict, protocol: str, df: pd.DataFrame | None = None) -> dict[str, str]:
    """What defines ``protocol``, read from the configs of its runs: field -> text.

    Fields: backbone, epochs, optimiser, schedule, batch size, validation split, augmentation,
    noise convention. When the runs of one protocol disagree on a field the text starts with
    'MIXED:' and lists every value, so a mixed protocol is visible rather than averaged away.
    ``df`` (optional) restricts to the run ids present in the frame.
    """
    ids = None
    if df is not None and not df.empty:
        ids = set(df.loc[df["protocol"] == protocol, "run_id"])
    cfgs = []
    for rid, run in (runs or {}).items():
        cfg = (run or {}).get("config") or {}
        name = _first(cfg, "protocol.name", "protocol_name")
        if isinstance(cfg.get("protocol"), str):
            name = cfg["protocol"]
        if (ids is not None and rid in ids) or (ids is None and str(name or "") == protocol):
            cfgs.append(cfg)
    out: dict[str, str] = {}
    for field, getter in PROTOCOL_FIELDS:
        vals = []
        for cfg in cfgs:
            try:
                v = getter(cfg)
            except Exception:  # a malformed config never breaks a report
                v = None
            if v is not None and str(v) not in vals:
                vals.append(str(v))
        if not vals:
            continue
        out[field] = vals[0] if len(vals) == 1 else "MIXED: " + " | ".join(vals)
    return out


# ----- the table -------------------------------------------------------------------------------

def resolved_protocol(runs: dict, df: pd.DataFrame, protocol: str) -> dict[str, Any]:
    """The protocol fields (config.json's ``protocol``) shared by the runs of ``protocol`` in ``df``.

    A field on which the runs disagree holds 'MIXED: a | b' (so it matches no published
    protocol); {} when no run records its protocol.
    """
    ids = set(df.loc[df["protocol"] == protocol, "run_id"]) if not df.empty else set()
    protos = [((runs.get(rid) or {}).get("config") or {}).get("protocol") for rid in sorted(ids)]
    protos = [p for p in protos if isinstance(p, dict)]
    out: dict[str, Any] = {}
    for key in sorted({k for p in protos for k in p}):
        vals = []
        for p in protos:
            if p.get(key) not in vals:
                vals.append(p.get(key))
        out[key] = vals[0] if len(vals) == 1 else "MIXED: " + " | ".join(map(str, vals))
    return out


def paper_table(summary: pd.DataFrame, *, protocol: str, published: bool = True, decimals: int = 1,
                info: dict[str, str] | None = None, baseline: str = "ce",
                fields: dict[str, Any] | None = None) -> pd.DataFrame:
    """Methods x noise settings for one protocol, cells 'mean ± std' (percent).

    summary: output of :func:`reports.stats.cell_summary` for one metric (rows of other protocols
    are ignored: a table never mixes protocols). Columns are noise labels ordered by kind then
    rate (``<dataset> / <label>`` when the protocol has several datasets). When ``published`` and
    :mod:`reports.published` has a number for this protocol, setting, method and accuracy, a
    ``<label> (published)`` column follows the setting. ``info`` (see :func:`protocol_info`) is
    kept for the writers' captions.

    ``table.attrs``: protocol, metric, title, rule, info, best {column: [methods]}, measured_rate
    {column: fraction or nan}, seeds (min, max), notes [str].
    """
    s = summary[summary["protocol"] == protocol] if not summary.empty else summary
    metric = str(s["metric"].iloc[0]) if not s.empty else ""
    key = next((k for k, (m, _, _) in ACCURACIES.items() if m == metric), None)
    title, rule = (ACCURACIES[key][1], ACCURACIES[key][2]) if key else (metric, metric)
    attrs: dict[str, Any] = {"protocol": protocol, "metric": metric, "title": title, "rule": rule,
                             "info": dict(info or {}), "best": {}, "measured_rate": {},
                             "seeds": (0, 0), "notes": []}
    if s.empty:
        t = pd.DataFrame()
        t.index.name = "method"
        t.attrs.update(attrs)
        return t

    settings = (s[["dataset", "noise", "rate", "noise_label"]].drop_duplicates()
                .assign(_k=lambda f: [_column_sort_key(*r) for r in
                                      f[["dataset", "noise", "rate", "noise_label"]].itertuples(index=False)])
                .sort_values("_k"))
    multi = s["dataset"].nunique() > 1
    methods = method_order(s["method"].unique(), baseline)
    max_n = int(s["n_seeds"].max())
    attrs["seeds"] = (int(s["n_seeds"].min()), max_n)

    data: dict[str, list[str]] = {}
    sources_used: list[str] = []
    mismatch_notes: dict[int, tuple[str, ...]] = {}
    for ds, noise, rate, label in settings[["dataset", "noise", "rate", "noise_label"]].itertuples(index=False):
        col = f"{ds} / {label}" if multi else str(label)
        cell = s[(s["dataset"] == ds) & (s["noise_label"] == label) & (s["noise"] == noise)]
        by_m = {r.method: r for r in cell.itertuples(index=False)}
        data[col] = [format_cell(by_m[m].mean, by_m[m].std, by_m[m].n_seeds, max_n=max_n,
                                 decimals=decimals) if m in by_m else DASH for m in methods]
        rounded = {m: round(100 * by_m[m].mean, decimals) for m in by_m if not math.isnan(by_m[m].mean)}
        if rounded:
            top = max(rounded.values())
            attrs["best"][col] = [m for m in methods if rounded.get(m) == top]
        rates = cell["actual_rate"].astype(float) if "actual_rate" in cell else pd.Series(dtype=float)
        attrs["measured_rate"][col] = float(rates.mean()) if rates.notna().any() else math.nan
        if published:
            found = {m: pub.match(fields, ds, label, m, metric) for m in methods}
            if any(found.values()):
                cells = []
                for m in methods:
                    mt = found[m]
                    if mt is None:
                        cells.append(DASH)
                        continue
                    p = mt.published
                    if p.source not in sources_used:
                        sources_used.append(p.source)
                    ref = sources_used.index(p.source) + 1
                    if mt.comparable:
                        cells.append(f"{p.text} [{ref}]")
                    else:
                        cells.append(f"{NE} protocol [{ref}]")
                        mismatch_notes.setdefault(ref, mt.mismatches)
                data[f"{col} (published)"] = cells
    t = pd.DataFrame(data, index=pd.Index(methods, name="method"))
    # selection precision/recall/AUC tables share this layout; only accuracies are accuracies
    unit = "accuracy in %" if key else f"{metric} in %"
    notes = [f"Mean {PM} std over seeds (ddof=1), {unit}; n = {max_n} seeds per cell"
             + (" unless marked (n=k)" if attrs["seeds"][0] < max_n else "")
             + "; best mean per column in bold. Intervals (tidy CSV): 95% Student-t, none for n = 1."]
    left = int(s["n_left_out"].sum()) if "n_left_out" in s else 0
    if left:
        notes.append(f"{left} run(s) left out: another run of the same label, cell and seed is "
                     f"counted (they differ only in settings that do not define a cell, e.g. threads).")
    notes += [f"[{i + 1}] {pub.SOURCES[src]}" for i, src in enumerate(sources_used)]
    notes += [f"{NE} protocol [{ref}]: the published number is not shown because this protocol "
              f"differs from the one it was produced under: {'; '.join(mm)}."
              for ref, mm in sorted(mismatch_notes.items())]
    attrs["notes"] = notes
    t.attrs.update(attrs)
    return t


def _is_pub(col: str) -> bool:
    return str(col).endswith(" (published)")


def _caption(t: pd.DataFrame) -> str:
    a = t.attrs
    info = a.get("info") or {}
    parts = [f"{a.get('title', '')} — protocol {a.get('protocol', '')}"]
    if info:
        parts.append("; ".join(f"{k}: {v}" for k, v in info.items()))
    parts.append(f"{a.get('rule_label', 'Selection rule')}: {a.get('rule', '')}.")
    return ". ".join(p for p in parts if p)


def _measured_row(t: pd.DataFrame) -> list[str] | None:
    mr = t.attrs.get("measured_rate") or {}
    if not mr or all(math.isnan(v) for v in mr.values()):
        return None
    return ["" if _is_pub(c) else (pct(mr.get(c, math.nan)) + "%" if not math.isnan(mr.get(c, math.nan))
                                   else DASH) for c in t.columns]


def _write(text: str, path: str | Path | None) -> str:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    return text


# ----- Markdown --------------------------------------------------------------------------------

_MD_SPECIAL = set("\\`*_{}[]<>()#+!|~")


_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_escape(s: Any) -> str:
    """Escape text for a Markdown cell: ``&``, ``<`` and ``>`` as HTML entities (no renderer
    turns an entity into a tag, whatever it does with raw HTML or backslashes), other Markdown
    punctuation backslash-escaped (CommonMark allows escaping any ASCII punctuation)."""
    return "".join(_MD_ENTITIES.get(ch) or ("\\" + ch if ch in _MD_SPECIAL else ch) for ch in str(s))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_LIKE = re.compile(r"[+-]?(\d|\.\d|nan\b|inf\b)", re.IGNORECASE)


def csv_safe(v: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with =, +, -, @, a tab or a carriage
    return gets a leading apostrophe (the usual neutralisation of formula injection), unless it
    reads as a number or a signed figure such as "+1.2 [-0.4, +2.8]". Non-text passes unchanged."""
    if not isinstance(v, str) or not v.startswith(_FORMULA_START) or _NUMBER_LIKE.match(v):
        return v
    return "'" + v


def csv_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell, column name and index label passed through :func:`csv_safe`."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(csv_safe)
    out.columns = [csv_safe(c) for c in out.columns]
    out.index = pd.Index([csv_safe(i) for i in out.index], name=out.index.name)
    return out


def to_markdown(table: pd.DataFrame, path: str | Path | None = None) -> str:
    """GitHub-flavoured Markdown: a caption line, the table (best in **bold**), the measured flip
    rate row and the notes. Returns the text; writes it to ``path`` if given."""
    cols = list(table.columns)
    best = table.attrs.get("best", {})
    lines = [f"**{md_escape(_caption(table))}**", ""]
    lines.append("| Method | " + " | ".join(md_escape(c) for c in cols) + " |")
    lines.append("|:--|" + "|".join("--:" for _ in cols) + "|")
    for m, row in table.iterrows():
        cells = []
        for c in cols:
            v = md_escape(row[c])
            cells.append(f"**{v}**" if m in best.get(c, []) else v)
        lines.append(f"| {md_escape(m)} | " + " | ".join(cells) + " |")
    mr = _measured_row(table)
    if mr is not None:
        lines.append("| *measured flip rate* | " + " | ".join(md_escape(v) for v in mr) + " |")
    lines.append("")
    lines += [md_escape(n) + "  " for n in table.attrs.get("notes", [])]
    return _write("\n".join(lines).rstrip() + "\n", path)


# ----- LaTeX -----------------------------------------------------------------------------------

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
        PM: r"$\pm$", DASH: "--", "\u2014": "---", NE: r"$\neq$"}


def tex_escape(s: Any) -> str:
    """Escape LaTeX special characters (and map ± and dashes to LaTeX)."""
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def to_latex(table: pd.DataFrame, path: str | Path | None = None, *, label: str | None = None) -> str:
    """A booktabs ``table`` environment: \\toprule/\\midrule/\\bottomrule, best mean per column in
    \\textbf{}, the measured flip rate row, the caption naming protocol and selection rule, notes
    below. Needs ``\\usepackage{booktabs}``."""
    cols = list(table.columns)
    best = table.attrs.get("best", {})
    lab = label or "tab:" + "".join(ch if ch.isalnum() else "-" for ch in
                                    f"{table.attrs.get('protocol', '')}-{table.attrs.get('metric', '')}")
    out = ["% requires \\usepackage{booktabs}", "\\begin{table}[t]", "\\centering", "\\small",
           f"\\caption{{{tex_escape(_caption(table))}}}", f"\\label{{{lab}}}",
           "\\begin{tabular}{l" + "c" * len(cols) + "}", "\\toprule",
           "Method & " + " & ".join(tex_escape(c) for c in cols) + " \\\\", "\\midrule"]
    for m, row in table.iterrows():
        cells = []
        for c in cols:
            v = tex_escape(row[c])
            cells.append(f"\\textbf{{{v}}}" if m in best.get(c, []) else v)
        out.append(tex_escape(m) + " & " + " & ".join(cells) + " \\\\")
    mr = _measured_row(table)
    if mr is not None:
        out += ["\\midrule", "\\textit{measured flip rate} & " + " & ".join(tex_escape(v) for v in mr)
                + " \\\\"]
    out += ["\\bottomrule", "\\end{tabular}"]
    notes = table.attrs.get("notes", [])
    if notes:
        out.append("\\par\\smallskip\\footnotesize " + " \\\\ ".join(tex_escape(n) for n in notes))
    out.append("\\end{table}")
    return _write("\n".join(out) + "\n", path)


# ----- HTML ------------------------------------------------------------------------------------

def to_html(table: pd.DataFrame, path: str | Path | None = None, *, caption: bool = True,
            css_class: str = "paper") -> str:
    """An HTML ``<table>`` fragment (every name html.escape'd), best cells in ``<strong>``, rows
    carrying ``data-method``; the notes follow in a ``<p class="notes">``. With ``path`` a minimal
    standalone page is written (no external resource)."""
    e = html.escape
    cols = list(table.columns)
    best = table.attrs.get("best", {})
    oracle = table.attrs.get("metric") == ACCURACIES["oracle"][0]
    out = [f'<table class="{e(css_class)}{" oracle" if oracle else ""}">']
    if caption:
        out.append(f"<caption>{e(_caption(table))}</caption>")
    pub_cls = ' class="pub"'
    out.append('<thead><tr><th scope="col">Method</th>' + "".join(
        f'<th scope="col"{pub_cls if _is_pub(c) else ""}>{e(str(c))}</th>' for c in cols)
        + "</tr></thead>")
    out.append("<tbody>")
    for m, row in table.iterrows():
        tds = []
        for c in cols:
            v = e(str(row[c]))
            cls = ' class="pub"' if _is_pub(c) else ""
            tds.append(f"<td{cls}><strong>{v}</strong></td>" if m in best.get(c, []) else f"<td{cls}>{v}</td>")
        out.append(f'<tr data-method="{e(str(m))}"><th scope="row">{e(str(m))}</th>{"".join(tds)}</tr>')
    out.append("</tbody>")
    mr = _measured_row(table)
    if mr is not None:
        out.append('<tfoot><tr><th scope="row">measured flip rate</th>'
                   + "".join(f"<td>{e(v)}</td>" for v in mr) + "</tr></tfoot>")
    out.append("</table>")
    notes = table.attrs.get("notes", [])
    if notes:
        out.append('<p class="notes">' + "<br>".join(e(n) for n in notes) + "</p>")
    frag = "\n".join(out)
    if path is not None:
        page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{e(str(table.attrs.get('title', 'table')))} — {e(str(table.attrs.get('protocol', '')))}</title>"
                "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
                "th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}"
                "th[scope=row]{text-align:left}caption{text-align:left;margin-bottom:.5em}"
                ".notes{font-size:.85em;color:#555}</style></head><body>\n" + frag + "\n</body></html>\n")
        _write(page, path)
    return frag


# ----- CSV -------------------------------------------------------------------------------------

def to_csv(table: pd.DataFrame, path: str | Path | None = None) -> str:
    """The displayed table as CSV (index column 'method'), plus a 'measured flip rate' row."""
    t = table.copy()
    mr = _measured_row(table)
    if mr is not None:
        t.loc["measured flip rate"] = mr
    t.index.name = "method"
    return _write(csv_safe_frame(t).to_csv(lineterminator="\n"), path)


# ----- the OBD mask: paired effect and gradient error ------------------------------------------

def _settings(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(column name, dataset, noise_label) in table order."""
    s = frame[["dataset", "noise", "rate", "noise_label"]].drop_duplicates()
    keys = sorted(s.itertuples(index=False), key=lambda r: _column_sort_key(*r))
    multi = frame["dataset"].nunique() > 1
    return [(f"{r.dataset} / {r.noise_label}" if multi else str(r.noise_label), r.dataset, r.noise_label)
            for r in keys]


def signed_pp(x: float, decimals: int = 1) -> str:
    """A difference of fractions in percentage points with its sign: +1.2, -0.4 (NaN -> dash)."""
    if x is None or math.isnan(x):
        return DASH
    return f"{100.0 * x:+.{decimals}f}"


def effect_table(effect: pd.DataFrame, *, protocol: str, info: dict[str, str] | None = None,
                 decimals: int = 1) -> pd.DataFrame:
    """Masked methods x noise settings: the paired difference to the unmasked base, in points.

    effect: output of :func:`reports.stats.mask_effect` (or paired_differences) for one metric.
    Cells are 'mean [ci_lo, ci_hi]' in percentage points; a column ``vs`` names each row's base.
    Cells whose interval excludes zero are marked in ``attrs['best']`` (bold in the writers).
    """
    e = effect[effect["protocol"] == protocol] if not effect.empty else effect
    metric = str(e["metric"].iloc[0]) if not e.empty else ""
    attrs: dict[str, Any] = {"protocol": protocol, "metric": metric, "info": dict(info or {}),
                             "title": f"Effect of the mask: masked minus unmasked base, {metric}",
                             "rule_label": "Pairing",
                             "rule": "on seed (same noise realisation and split); "
                                     "points of test accuracy", "best": {}, "measured_rate": {},
                             "notes": []}
    if e.empty:
        t = pd.DataFrame()
        t.index.name = "method"
        t.attrs.update(attrs)
        return t
    methods = [m for m in method_order(e["method"].unique()) if m in set(e["method"])]
    base = e.drop_duplicates("method").set_index("method")["baseline"]
    data: dict[str, list[str]] = {"vs": [str(base[m]) for m in methods]}
    n_pairs = set()
    for col, ds, label in _settings(e):
        cell = e[(e["dataset"] == ds) & (e["noise_label"] == label)].set_index("method")
        data[col] = [_diff_cell(cell.loc[m], decimals) if m in cell.index else DASH for m in methods]
        attrs["best"][col] = [m for m in methods if m in cell.index
                              and (cell.at[m, "ci_lo"] > 0 or cell.at[m, "ci_hi"] < 0)]
        n_pairs |= set(cell["n_pairs"].astype(int))
    attrs["notes"] = [f"Mean paired difference over seeds ({', '.join(map(str, sorted(n_pairs)))} pairs per cell) "
                      "in percentage points, [95% Student-t interval of the mean difference; none for "
                      "a single pair]; bold: the interval excludes zero.", MDE_NOTE]
    t = pd.DataFrame(data, index=pd.Index(methods, name="method"))
    t.attrs.update(attrs)
    return t


def host_table(summary: pd.DataFrame, effect: pd.DataFrame, *, protocol: str,
               info: dict[str, str] | None = None, decimals: int = 1) -> pd.DataFrame:
    """The OBD-mask paper's layout: each host method, then its masked row and a gain row under it.

    summary: :func:`reports.stats.cell_summary` for one metric; effect: :func:`reports.stats.mask_effect`
    for the same metric. Rows, for every base B that has a masked variant M: ``B`` ('mean ± std'),
    ``  M`` (the masked variant, 'mean ± std'; ``obd`` under ``ce``) and ``  gain (M)`` (paired M
    minus B on seeds, 'mean [95% interval]' in points). ``attrs['best']`` marks the gain cells
    whose interval excludes zero (bold in the writers).
    """
    s = summary[summary["protocol"] == protocol] if not summary.empty else summary
    e = effect[effect["protocol"] == protocol] if not effect.empty else effect
    metric = str(s["metric"].iloc[0]) if not s.empty else ""
    attrs: dict[str, Any] = {"protocol": protocol, "metric": metric, "info": dict(info or {}),
                             "title": f"Hosts with and without the mask, {metric}",
                             "rule_label": "Gain", "rule": "masked minus host, paired on seed (same "
                             "noisy labels); points of test accuracy", "best": {}, "measured_rate": {},
                             "notes": []}
    if s.empty or e.empty:
        t = pd.DataFrame()
        t.index.name = "method"
        t.attrs.update(attrs)
        return t
    masked = {m: mask_base(str(m)) for m in e["method"].unique()}
    hosts = [b for b in method_order({b for b in masked.values() if b}) if b in set(s["method"])]
    rows: list[tuple[str, str, str]] = []  # (row label, method, kind); labels are unique
    for b in hosts:
        rows.append((b, b, "host"))
        for m in sorted(k for k, v in masked.items() if v == b):
            rows += [(f"  {m}", m, "masked"), (f"  gain ({m})", m, "gain")]
    max_n = int(s["n_seeds"].max())
    data: dict[str, list[str]] = {}
    for col, ds, label in _settings(s):
        cell = s[(s["dataset"] == ds) & (s["noise_label"] == label)].set_index("method")
        gain = e[(e["dataset"] == ds) & (e["noise_label"] == label)].set_index("method")
        out = []
        for _name, m, kind in rows:
            if kind == "gain":
                out.append(_diff_cell(gain.loc[m], decimals) if m in gain.index else DASH)
            else:
                out.append(format_cell(cell.at[m, "mean"], cell.at[m, "std"], int(cell.at[m, "n_seeds"]),
                                       max_n=max_n, decimals=decimals) if m in cell.index else DASH)
        data[col] = out
        attrs["best"][col] = [name for name, m, kind in rows if kind == "gain" and m in gain.index
                              and (gain.at[m, "ci_lo"] > 0 or gain.at[m, "ci_hi"] < 0)]
    attrs["notes"] = [f"Host rows and their masked variants (indented; obd is CE with the mask): mean {PM} "
                      f"std over seeds (ddof=1), accuracy in %, n = {max_n} seeds per cell. Gain rows: mean "
                      "paired difference, masked minus host, in points [95% Student-t interval; none "
                      "for a single pair]; bold: the interval excludes zero.", MDE_NOTE]
    t = pd.DataFrame(data, index=pd.Index([r[0] for r in rows], name="method"))
    t.attrs.update(attrs)
    return t


def _diff_cell(r: pd.Series, decimals: int) -> str:
    """'+1.2 [-0.4, +2.8] MDE 2.1' (mean paired difference, its interval and the cell's minimum
    detectable effect, all in points), or '+1.2 (n = 1)' without an interval."""
    if math.isnan(r["ci_lo"]):
        return f"{signed_pp(r['mean_diff'], decimals)} (n = {int(r['n_pairs'])})"
    mde = r.get("mde", math.nan)
    tail = "" if mde is None or math.isnan(mde) else f" MDE {100.0 * mde:.{decimals}f}"
    return (f"{signed_pp(r['mean_diff'], decimals)} [{signed_pp(r['ci_lo'], decimals)}, "
            f"{signed_pp(r['ci_hi'], decimals)}]{tail}")


MDE_NOTE = ("MDE: the minimum detectable effect of the cell, the smallest true difference its "
            "paired seeds would detect with 80% power in a two-sided paired t-test at 5%, from "
            "the observed spread of the differences: a gain whose interval includes zero rules "
            "out effects larger than about the MDE, not smaller ones.")


VERDICT_HALF_WIDTH = 0.005
"""The resolution a verdict aims for: a 95% half-width of half a point (the size of the gains
the OBD-mask paper's reviewers describe)."""


def verdict_table(summary: pd.DataFrame, selected: pd.DataFrame, last: pd.DataFrame, *,
                  protocol: str, regime: pd.DataFrame | None = None, info: dict[str, str] | None = None,
                  decimals: int = 1, half_width: float = VERDICT_HALF_WIDTH) -> pd.DataFrame:
    """One row per (compared label, noise setting): what a paired comparison can and cannot say.

    summary: :func:`reports.stats.cell_summary` of the selected accuracy; selected, last: paired
    effects (mask_effect, classifier_effect, ...) of the selected and the last-epoch accuracy,
    ``baseline`` per row. Columns: ``vs`` (the base), ``setting``, ``pairs`` (seeds with both
    runs), ``base`` and ``with``
    ('mean ± std', selected), ``gain, selected`` and ``gain, last`` ('mean [95% interval] MDE m',
    points), ``half-width`` (of the selected gain's interval, points), ``seeds for ±H`` (pairs
    that would bring the half-width to ``half_width`` at the observed spread), ``regime`` (CE's
    in the setting) and ``verdict`` (helps / hurts / cannot be told apart, at what resolution).
    ``attrs['best']['verdict']`` marks the rows whose selected interval excludes zero.
    """
    sel = selected[selected["protocol"] == protocol] if not selected.empty else selected
    lst = last[last["protocol"] == protocol] if not last.empty else last
    s = summary[summary["protocol"] == protocol] if not summary.empty else summary
    attrs: dict[str, Any] = {"protocol": protocol, "metric": str(sel["metric"].iloc[0]) if not sel.empty else "",
                             "info": dict(info or {}), "title": "Verdict: each variant against its base",
                             "rule_label": "Pairing", "rule": "on seed (same noisy labels and split); "
                             "points of test accuracy", "best": {"verdict": []}, "measured_rate": {},
                             "notes": []}
    if sel.empty:
        t = pd.DataFrame()
        t.index.name = "compared"
        t.attrs.update(attrs)
        return t
    h = 100.0 * half_width
    bands = {}
    if regime is not None and not regime.empty:
        r = regime[regime["protocol"] == protocol]
        bands = {(x.dataset, x.noise_label): f"{x.band} (drop {100 * x.drop:.1f}, fit "
                 f"{DASH if math.isnan(x.noisy_fit) else f'{100 * x.noisy_fit:.0f}%'})"
                 for x in r.itertuples(index=False)}
    rows, index = [], []
    order = method_order(sel["method"].unique())

    def place(mb: tuple[str, str]) -> tuple:  # (label, base): an ablation right after the mask it varies
        root = ablation_base(mb[0])
        root = root if root in order else mb[0]
        return order.index(root), root != mb[0], mb[0], mb[1] != mask_base(mb[0]), mb[1]

    for col, ds, label in _settings(sel):
        cs = s[(s["dataset"] == ds) & (s["noise_label"] == label)].set_index("method")
        # a label may have several bases (an ablation of the mask: against the mask it varies and
        # against the unmasked host), hence one row per (label, base)
        ce = sel[(sel["dataset"] == ds) & (sel["noise_label"] == label)].drop_duplicates(["method", "baseline"]) \
            .set_index(["method", "baseline"])
        cl = lst[(lst["dataset"] == ds) & (lst["noise_label"] == label)].drop_duplicates(["method", "baseline"]) \
            .set_index(["method", "baseline"]) if not lst.empty else lst
        pairs = sorted(ce.index, key=place)
        for m, b in pairs:
            r = ce.loc[(m, b)]
            lo, hi = r["ci_lo"], r["ci_hi"]
            half = (hi - lo) / 2 if not math.isnan(lo) else math.nan
            need = seeds_for_half_width(r["sd_diff"], half_width)
            if math.isnan(lo):
                word = f"one pair: no interval (n = {int(r['n_pairs'])})"
            elif lo > 0:
                word = f"helps: {signed_pp(r['mean_diff'], decimals)} points, interval above zero"
            elif hi < 0:
                word = f"hurts: {signed_pp(r['mean_diff'], decimals)} points, interval below zero"
            else:
                word = (f"cannot be told apart from no effect; effects beyond ±{100 * r['mde']:.{decimals}f} "
                        "points would have been detected (80% power)")
            rows.append({
                "vs": b, "setting": col, "pairs": int(r["n_pairs"]),
                "base": _mean_std(cs, b, decimals), "with": _mean_std(cs, m, decimals),
                "gain, selected": _diff_cell(r, decimals),
                "half-width": DASH if math.isnan(half) else f"{100 * half:.{decimals + 1}f}",
                f"seeds for ±{h:g}": DASH if math.isnan(need) else (
                    f"{int(need)}" if need <= int(r["n_pairs"]) else f"{int(need)} (have {int(r['n_pairs'])})"),
                "gain, last": _diff_cell(cl.loc[(m, b)], decimals) if not cl.empty and (m, b) in cl.index else DASH,
                "regime": bands.get((ds, label), DASH),
                "verdict": word})
            one_base = sum(x == m for x, _ in pairs) == 1
            index.append(f"{m} · {col}" if one_base else f"{m} vs {b} · {col}")
            if not math.isnan(lo) and (lo > 0 or hi < 0):
                attrs["best"]["verdict"].append(index[-1])
    attrs["notes"] = [
        "Each row: a variant (the mask on a host, the KAN head, an ablation of the mask, ...) against "
        "its base on the same seeds (pairs: how many); base / with: accuracy at the epoch selected "
        f"by noisy validation, mean {PM} std in %. "
        "Gains: mean paired difference in points [95% Student-t interval] and the cell's MDE. "
        f"half-width: of the selected gain's interval; seeds for ±{h:g}: pairs that would bring "
        f"it to {h:g} points at the observed spread of the differences. Regime: CE's in the setting "
        "(drop = best minus last test accuracy, fit = mislabelled training images fitted).", MDE_NOTE]
    t = pd.DataFrame(rows, index=pd.Index(index, name="compared"))
    t.attrs.update(attrs)
    return t


def _mean_std(cells: pd.DataFrame, m: str, decimals: int) -> str:
    if m not in cells.index:
        return DASH
    r = cells.loc[m]
    return format_cell(r["mean"], r["std"], int(r["n_seeds"]), decimals=decimals)


def gradient_table(summary: pd.DataFrame, *, protocol: str, info: dict[str, str] | None = None) -> pd.DataFrame:
    """Methods x (noise setting, fc | feat): probe-batch gradient errors 'masked / unmasked (-r%)'.

    summary: output of :func:`reports.stats.gradient_error_summary`. Unmasked methods show their
    single (unmasked) figure; r is the mean reduction 1 - masked/unmasked over seeds.
    """
    s = summary[summary["protocol"] == protocol] if not summary.empty else summary
    attrs: dict[str, Any] = {"protocol": protocol, "metric": "grad/err_*", "info": dict(info or {}),
                             "title": "Relative gradient error of the noisy labels on the probe batch",
                             "rule_label": "Measure",
                             "rule": "||G(noisy) - G(clean)|| / ||G(clean)||, last epoch, mean over seeds",
                             "best": {}, "measured_rate": {}, "notes": []}
    if s.empty:
        t = pd.DataFrame()
        t.index.name = "method"
        t.attrs.update(attrs)
        return t
    methods = method_order(s["method"].unique())
    data: dict[str, list[str]] = {}
    for col, ds, label in _settings(s):
        cell = s[(s["dataset"] == ds) & (s["noise_label"] == label)].set_index("method")
        for kind in ("fc", "feat"):
            vals = []
            for m in methods:
                if m not in cell.index:
                    vals.append(DASH)
                    continue
                u = cell.at[m, f"err_{kind}_unmasked_mean"] if f"err_{kind}_unmasked_mean" in cell else math.nan
                mk = cell.at[m, f"err_{kind}_masked_mean"] if f"err_{kind}_masked_mean" in cell else math.nan
                red = cell.at[m, f"{kind}_reduction"] if f"{kind}_reduction" in cell else math.nan
                if isinstance(mk, float) and not math.isnan(mk):
                    vals.append(f"{mk:.3f} / {u:.3f} ({-100 * red:+.0f}%)")
                else:
                    vals.append(DASH if math.isnan(u) else f"{u:.3f}")
            data[f"{col} {kind}"] = vals
    attrs["notes"] = ["fc: gradient of the classifier weights; feat: gradient sent back to the features. "
                      "Masked methods: with the current mask / without it, same network and epoch "
                      "(change in %). Unmasked methods: their own error."]
    t = pd.DataFrame(data, index=pd.Index(methods, name="method"))
    t.attrs.update(attrs)
    return t
