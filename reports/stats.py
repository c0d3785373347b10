"""Statistics over the long results frame: pure functions, no I/O.

Vocabulary (see docs/ARCHITECTURE.md):

* a **cell** is one (protocol, dataset, model, noise, rate, noise_label) setting; a method trained in
  a cell with several seeds gives one value per seed;
* the seed fixes the noise realisation and the train/validation split, so two methods trained with
  the same seed in the same cell saw *the same noisy labels*: their differences are paired.

All accuracies are fractions in [0, 1]. Shapes are given in the docstrings; ``n`` is the number of
seeds of one cell.

Intervals (every table says which one it shows):

* per-cell means and paired differences: Student-t 95% intervals, mean +/- t(0.975, n-1) s/sqrt(n);
  none below 2 seeds (a single seed has no spread to show);
* aggregates across cells follow rliable (Agarwal et al., NeurIPS 2021): the interquartile mean
  of all run scores of a method over the cells of a protocol (runs x cells), and the average
  probability of improvement P(X > Y) per cell (Mann-Whitney over all pairs of runs, ties 1/2),
  each with a 95% percentile interval from a stratified bootstrap (runs resampled within each
  cell; for P(X > Y) each method's runs independently). tests/reports/test_rliable.py checks these
  against the rliable package itself.
"""
from __future__ import annotations

import functools
import math
from typing import Iterable

import numpy as np
import pandas as pd

#: Columns that identify a cell (one row of a leaderboard table, before the method).
CELL_KEYS: tuple[str, ...] = ("protocol", "dataset", "model", "noise", "rate", "noise_label")
#: Columns that identify one (cell, method) group.
GROUP_KEYS: tuple[str, ...] = CELL_KEYS + ("method",)

FINAL_METRICS = ("test/acc_last", "test/acc_best", "test/acc_at_best_val", "test/acc_last10_mean")


def _clean(values: Iterable[float]) -> np.ndarray:
    """1-D float array with NaNs removed."""
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean: mean +/- t_{(1+level)/2, n-1} * s / sqrt(n).

    values: shape (n,), NaNs dropped. n < 2 gives (nan, nan): one seed has no interval, and the
    tables say "n = 1" instead. A constant vector gives (c, c). With few seeds this is the honest
    interval; a percentile bootstrap of the mean is far too narrow at n = 3.
    """
    from scipy import stats as sps
    x = _clean(values)
    if x.size < 2:
        return (math.nan, math.nan)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    m, sem = float(x.mean()), float(x.std(ddof=1)) / math.sqrt(x.size)
    half = float(sps.t.ppf((1.0 + level) / 2.0, x.size - 1)) * sem
    return (m - half, m + half)


def min_detectable_effect(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired t-test at level ``alpha`` detects with
    probability ``power``, from ``n`` pairs whose differences have standard deviation ``sd``.

    Exact: ``sd`` times the standardised effect d_z that solves P(|T| > t_{1-alpha/2, n-1}) =
    power for T noncentral t with n - 1 degrees of freedom and noncentrality d_z sqrt(n)
    (scipy.stats.nct). Units are those of ``sd``. NaN below 2 pairs or for a NaN sd; 0 for sd = 0.
    Taking the observed sd as the true one makes this an estimate: with few pairs the sd itself
    is uncertain.
    """
    if n < 2 or sd is None or math.isnan(sd):
        return math.nan
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    return float(sd) * _standardised_mde(int(n), float(alpha), float(power))


@functools.lru_cache(maxsize=None)
def _standardised_mde(n: int, alpha: float, power: float) -> float:
    """d_z = MDE / sd of a paired t-test with n pairs (depends on n, alpha and power only)."""
    from scipy import optimize
    from scipy import stats as sps
    df = n - 1
    crit = float(sps.t.ppf(1 - alpha / 2, df))

    def gap(dz: float) -> float:
        ncp = dz * math.sqrt(n)
        lower = float(sps.nct.cdf(-crit, df, ncp))  # scipy gives NaN where it underflows to 0
        return float(sps.nct.sf(crit, df, ncp)) + (0.0 if math.isnan(lower) else lower) - power

    hi = 1.0
    while gap(hi) < 0:
        hi *= 2
    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-12))


def seeds_for_half_width(sd: float, half_width: float, *, level: float = 0.95,
                         limit: int = 100_000) -> float:
    """The fewest pairs n >= 2 whose Student-t interval of the mean, t_{(1+level)/2, n-1} sd /
    sqrt(n), is at most ``half_width`` when the differences have standard deviation ``sd``
    (NaN for a NaN sd; inf when more than ``limit`` would be needed)."""
    from scipy import stats as sps
    if sd is None or math.isnan(sd):
        return math.nan
    if half_width <= 0:
        raise ValueError(f"half_width must be > 0, got {half_width}")
    n = max(2, math.ceil((1.96 * sd / half_width) ** 2))  # the normal approximation: a lower bound
    while n > 2 and float(sps.t.ppf((1 + level) / 2, n - 2)) * sd / math.sqrt(n - 1) <= half_width:
        n -= 1
    while float(sps.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n) > half_width:
        n += 1
        if n > limit:
            return math.inf
    return float(n)


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the values.

    values: shape (n,), NaNs dropped. Same definition as ``scipy.stats.trim_mean(x, 0.25)``: sort,
    cut ``k = floor(0.25 * n)`` values from each end, average the rest. So for n < 4 nothing is cut
    (plain mean); n = 8 drops the 2 smallest and the 2 largest. Empty input gives nan.
    """
    x = np.sort(_clean(values))
    n = x.size
    if n == 0:
        return math.nan
    k = int(0.25 * n)
    return float(x[k:n - k].mean())


def _final_values(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of ``metric`` with one value per run.

    Final-result rows (epoch <NA>) are used when present; for a per-epoch metric the value at each
    run's last epoch is used instead. NaN values (e.g. acc_at_best_val without a validation split)
    are dropped.
    """
    rows = df[df["metric"] == metric]
    if rows.empty:
        return rows
    epoch = rows["epoch"]
    final = rows[epoch.isna()]
    if final.empty:
        per_epoch = rows[epoch.notna()].copy()
        per_epoch["_ep"] = per_epoch["epoch"].astype("int64")
        final = per_epoch.sort_values("_ep").groupby("run_id", sort=False).tail(1)
        final = final.drop(columns="_ep")
    final = final.drop_duplicates("run_id", keep="last")
    return final[final["value"].notna()]


def _per_seed(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One value per (cell, method, seed), with ``n_left_out`` runs dropped for sharing it.

    Two runs of one table label with the same seed trained the same cell on the same noise
    (they differ only in settings that do not define a cell, e.g. the thread count): the one with
    the smallest run id is kept, never an average, so a seed count is a count of runs averaged.
    """
    vals = _final_values(df, metric)
    cols = list(GROUP_KEYS) + ["seed", "value", "run_id"]
    if vals.empty:
        return pd.DataFrame(columns=list(GROUP_KEYS) + ["seed", "value", "run_id", "n_left_out"])
    v = vals[cols].sort_values("run_id")
    g = v.groupby(list(GROUP_KEYS) + ["seed"], dropna=False, sort=True)
    out = g.agg(value=("value", "first"), run_id=("run_id", "first"),
                n_left_out=("run_id", lambda r: r.nunique() - 1)).reset_index()
    return out


def cell_summary(df: pd.DataFrame, metric: str, *, level: float = 0.95, **_ignored) -> pd.DataFrame:
    """Per (cell, method): number of seeds, mean, std, Student-t CI of ``metric``.

    Returns one row per (protocol, dataset, model, noise, rate, noise_label, method) with columns
    ``metric, n_seeds, n_left_out, mean, std, ci_lo, ci_hi, actual_rate``. ``std`` uses ddof=1
    (NaN for a single seed); ``ci_lo/ci_hi`` is the Student-t interval (:func:`t_interval`, NaN
    below 2 seeds). ``actual_rate`` is the mean measured flip rate (noise/actual_rate) of the
    cell's runs, NaN when not recorded. ``n_left_out`` counts runs not averaged because another
    run of the same label already holds their seed (see :func:`_per_seed`).
    """
    per_seed = _per_seed(df, metric)
    columns = list(GROUP_KEYS) + ["metric", "n_seeds", "n_left_out", "mean", "std", "ci_lo", "ci_hi",
                                  "actual_rate"]
    if per_seed.empty:
        return pd.DataFrame(columns=columns)
    records = []
    for key, grp in per_seed.groupby(list(GROUP_KEYS), dropna=False, sort=True):
        v = grp["value"].to_numpy(dtype=float)
        lo, hi = t_interval(v, level)
        records.append({**dict(zip(GROUP_KEYS, key)), "metric": metric, "n_seeds": int(v.size),
                        "n_left_out": int(grp["n_left_out"].sum()), "mean": float(v.mean()),
                        "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                        "ci_lo": lo, "ci_hi": hi})
    out = pd.DataFrame.from_records(records)
    rates = _final_values(df, "noise/actual_rate")
    if not rates.empty:
        r = (rates.groupby(list(GROUP_KEYS), dropna=False)["value"].mean()
             .rename("actual_rate").reset_index())
        out = out.merge(r, on=list(GROUP_KEYS), how="left")
    else:
        out["actual_rate"] = math.nan
    return out[columns]


def _nan_safe_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Replace NaN rates by a sentinel so merges and groupbys on cell keys match them."""
    frame = frame.copy()
    frame["rate"] = frame["rate"].astype(float).fillna(-1.0)
    return frame


def paired_differences(df: pd.DataFrame, metric: str, baseline: str = "ce", *, runs: dict | None = None,
                       level: float = 0.95, **_ignored) -> pd.DataFrame:
    """Per (cell, method != baseline): paired differences method - baseline on shared seeds.

    Runs are paired on (protocol, dataset, model, noise, rate, noise_label, seed): the seed fixes
    the noise realisation, so both runs trained on the same noisy labels. If ``runs`` is given and
    both runs record a noise SHA-256 (result.noise.sha256), pairs whose hashes differ are dropped.
    Columns: cell keys, ``method, baseline, metric, n_pairs, mean_diff, ci_lo, ci_hi,
    prob_improvement, sd_diff, mde``; ``prob_improvement`` is the fraction of pairs where the
    method is better (a tie, |difference| <= 1e-12, counts 0.5: a paired win rate); the CI is the
    Student-t interval of the mean difference (NaN for a single pair); ``sd_diff`` is the standard
    deviation of the paired differences and ``mde`` the minimum detectable effect of the cell
    (:func:`min_detectable_effect`: 80% power, two-sided 5%), what the table can resolve. Cells
    without the baseline give no rows. One run per (label, seed) enters, as in :func:`cell_summary`.
    """
    columns = list(GROUP_KEYS) + ["baseline", "metric", "n_pairs", "mean_diff", "ci_lo", "ci_hi",
                                  "prob_improvement", "sd_diff", "mde"]
    vals = _final_values(df, metric)
    if vals.empty:
        return pd.DataFrame(columns=columns)
    vals = _nan_safe_keys(vals)
    pair_keys = list(CELL_KEYS) + ["seed"]
    base = vals[vals["method"] == baseline][pair_keys + ["value", "run_id"]]
    other = vals[vals["method"] != baseline][pair_keys + ["method", "value", "run_id"]]
    if base.empty or other.empty:
        return pd.DataFrame(columns=columns)
    base = base.sort_values("run_id").drop_duplicates(pair_keys, keep="first")
    other = other.sort_values("run_id").drop_duplicates(pair_keys + ["method"], keep="first")
    m = other.merge(base, on=pair_keys, suffixes=("", "_base"), how="inner")
    if runs:
        def sha(rid):
            r = runs.get(rid) or {}
            return ((r.get("result") or {}).get("noise") or {}).get("sha256")
        s1, s2 = m["run_id"].map(sha), m["run_id_base"].map(sha)
        keep = s1.isna() | s2.isna() | (s1 == s2)
        m = m[keep]
    records = []
    for key, grp in m.groupby(list(CELL_KEYS) + ["method"], dropna=False, sort=True):
        d = grp["value"].to_numpy(float) - grp["value_base"].to_numpy(float)
        lo, hi = t_interval(d, level)
        tie = np.abs(d) <= 1e-12  # equal accuracies up to floating-point noise
        wins = (~tie & (d > 0)).sum() + 0.5 * tie.sum()
        sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
        records.append({**dict(zip(list(CELL_KEYS) + ["method"], key)), "baseline": baseline,
                        "metric": metric, "n_pairs": int(d.size), "mean_diff": float(d.mean()),
                        "ci_lo": lo, "ci_hi": hi, "prob_improvement": float(wins / d.size),
                        "sd_diff": sd, "mde": min_detectable_effect(sd, int(d.size))})
    if not records:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame.from_records(records)
    out["rate"] = out["rate"].where(out["rate"] >= 0, np.nan)
    return out[columns]


def ranks(summary: pd.DataFrame) -> pd.DataFrame:
    """Rank methods within each cell by mean (1 = best; ties get the average rank).

    summary: the output of :func:`cell_summary`. Returns a copy with columns ``rank`` (within the
    cell, among the methods present there), ``mean_rank`` (the mean of ``rank`` over the cells of
    the same protocol where the method has a value) and ``n_cells`` (how many such cells). Ranks
    are never computed across protocols. Means are compared after rounding to 12 decimals so that
    floating-point noise does not break ties.
    """
    if summary.empty:
        return summary.assign(rank=pd.Series(dtype=float), mean_rank=pd.Series(dtype=float),
                              n_cells=pd.Series(dtype="int64"))
    s = _nan_safe_keys(summary)
    s = s[s["mean"].notna()].copy()
    s["_m"] = s["mean"].round(12)
    s["rank"] = s.groupby(list(CELL_KEYS), dropna=False)["_m"].rank(ascending=False, method="average")
    grp = s.groupby(["protocol", "method"], dropna=False)["rank"]
    s["mean_rank"] = grp.transform("mean")
    s["n_cells"] = grp.transform("size").astype("int64")
    s = s.drop(columns="_m")
    s["rate"] = s["rate"].where(s["rate"] >= 0, np.nan)
    return s.reset_index(drop=True)


def leaderboard(summary: pd.DataFrame, paired: pd.DataFrame | None = None,
                agg: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (protocol, method): the overall ranking of a protocol.

    Columns: ``protocol, method, mean_rank, n_cells, mean`` (plain mean of cell means),
    ``min_seeds, max_seeds``; with ``paired`` (:func:`paired_differences`) ``mean_diff`` (mean over
    cells of the paired difference to the baseline); with ``agg`` (:func:`aggregates`) ``iqm,
    iqm_lo, iqm_hi`` (IQM over runs x cells and its stratified-bootstrap interval) and ``poi,
    poi_lo, poi_hi`` (average probability of improvement over the baseline). Sorted by protocol
    then mean_rank. Aggregates compare like with like only when methods cover the same cells;
    ``n_cells`` says so.
    """
    extra = ["iqm", "iqm_lo", "iqm_hi", "poi", "poi_lo", "poi_hi"]
    cols = ["protocol", "method", "mean_rank", "n_cells", "mean", "min_seeds", "max_seeds",
            "mean_diff", *extra]
    r = ranks(summary)
    if r.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (proto, method), grp in r.groupby(["protocol", "method"], sort=True):
        rows.append({"protocol": proto, "method": method, "mean_rank": float(grp["rank"].mean()),
                     "n_cells": int(len(grp)), "mean": float(grp["mean"].mean()),
                     "min_seeds": int(grp["n_seeds"].min()), "max_seeds": int(grp["n_seeds"].max())})
    out = pd.DataFrame(rows)
    out["mean_diff"] = math.nan
    if paired is not None and not paired.empty:
        p = paired.groupby(["protocol", "method"])["mean_diff"].mean().reset_index()
        out = out.drop(columns=["mean_diff"]).merge(p, on=["protocol", "method"], how="left")
    if agg is not None and not agg.empty:
        out = out.merge(agg[["protocol", "method", *extra]], on=["protocol", "method"], how="left")
    for c in extra:
        if c not in out:
            out[c] = math.nan
    return out.sort_values(["protocol", "mean_rank", "method"]).reset_index(drop=True)[cols]


# ----- aggregates across cells (rliable's definitions) ---------------------------------------

def aggregate_iqm(scores: list[np.ndarray]) -> float:
    """Interquartile mean over runs x cells: scores[k] is (n_k,) run scores of cell k.

    All scores are pooled and the 25% trimmed mean taken, as rliable's ``aggregate_iqm`` on a
    (runs x cells) matrix (scipy.stats.trim_mean(..., 0.25, axis=None)); cells may have different
    numbers of runs here. NaN when there is no score.
    """
    from scipy import stats as sps
    x = np.concatenate([np.asarray(c, float).ravel() for c in scores]) if scores else np.array([])
    x = x[~np.isnan(x)]
    return float(sps.trim_mean(x, 0.25)) if x.size else math.nan


def probability_of_improvement(x: list[np.ndarray], y: list[np.ndarray]) -> float:
    """Average over cells of P(X > Y) + P(X = Y) / 2, X and Y a random run of each method in the cell.

    x[k], y[k]: (n_k,), (m_k,) run scores of the two methods in cell k. Per cell this is the
    Mann-Whitney U statistic over all n_k * m_k pairs divided by n_k * m_k (runs are not paired;
    Agarwal et al. 2021, rliable's ``probability_of_improvement``). NaN without a common cell.
    """
    probs = []
    for a, b in zip(x, y):
        a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
        if a.size == 0 or b.size == 0:
            continue
        diff = a[:, None] - b[None, :]
        probs.append(float(((diff > 0) + 0.5 * (diff == 0)).mean()))
    return float(np.mean(probs)) if probs else math.nan


def _iqm_batch(cells: list[np.ndarray]) -> np.ndarray:
    """aggregate_iqm of each resample: cells[k] is (R, n_k) -> (R,)."""
    from scipy import stats as sps
    return sps.trim_mean(np.concatenate(cells, axis=1), 0.25, axis=1)


def _poi_batch(x: list[np.ndarray], y: list[np.ndarray]) -> np.ndarray:
    """probability_of_improvement of each resample: x[k] (R, n_k), y[k] (R, m_k) -> (R,)."""
    per = [((a[:, :, None] > b[:, None, :]) + 0.5 * (a[:, :, None] == b[:, None, :])).mean(axis=(1, 2))
           for a, b in zip(x, y) if a.shape[1] and b.shape[1]]
    return np.mean(per, axis=0)


aggregate_iqm.batch = _iqm_batch
probability_of_improvement.batch = _poi_batch


def stratified_bootstrap_ci(func, *samples: list[np.ndarray], reps: int = 2000, level: float = 0.95,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``func(*samples)`` under a stratified bootstrap.

    Each sample is a list over cells of (n_k,) run scores; every cell of every sample is resampled
    with replacement on its own (runs within cells; for two methods, independently: rliable's
    StratifiedBootstrap / StratifiedIndependentBootstrap). ``reps`` resamples from
    numpy.random.default_rng(seed): deterministic. Functions with a ``batch`` attribute (the two
    above) evaluate all resamples at once. With a single run in every cell of every sample there
    is nothing to resample (every draw is the data itself): no interval, (nan, nan), rather than a
    degenerate one that looks like certainty.
    """
    rng = np.random.default_rng(seed)
    arrays = [[np.asarray(c, float).ravel() for c in sample if np.size(c)] for sample in samples]
    if not all(arrays) or all(c.size < 2 for sample in arrays for c in sample):
        return (math.nan, math.nan)
    drawn = [[c[rng.integers(0, c.size, (int(reps), c.size))] for c in sample] for sample in arrays]
    batch = getattr(func, "batch", None)
    if batch is not None:
        vals = np.asarray(batch(*drawn), float)
    else:
        vals = np.array([func(*[[c[r] for c in sample] for sample in drawn]) for r in range(int(reps))])
    vals = vals[~np.isnan(vals)]
    if not vals.size:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(vals, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def aggregates(df: pd.DataFrame, metric: str, baseline: str = "ce", *, reps: int = 2000,
               level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per (protocol, method): IQM over runs x cells and P(improvement over ``baseline``), each
    with a stratified-bootstrap interval.

    Columns: ``protocol, method, n_cells, n_runs, iqm, iqm_lo, iqm_hi, poi, poi_lo, poi_hi``.
    P(improvement) uses the cells where both the method and the baseline have runs (NaN for the
    baseline itself). One run per (label, seed), as in :func:`cell_summary`.
    """
    cols = ["protocol", "method", "n_cells", "n_runs", "iqm", "iqm_lo", "iqm_hi", "poi", "poi_lo", "poi_hi"]
    per = _per_seed(df, metric)
    if per.empty:
        return pd.DataFrame(columns=cols)
    per = _nan_safe_keys(per)
    rows = []
    for proto, dp in per.groupby("protocol", sort=True):
        cells = {m: {k: g["value"].to_numpy(float) for k, g in dm.groupby(list(CELL_KEYS), sort=True)}
                 for m, dm in dp.groupby("method", sort=True)}
        base = cells.get(baseline, {})
        for m, by_cell in cells.items():
            scores = list(by_cell.values())
            lo, hi = stratified_bootstrap_ci(aggregate_iqm, scores, reps=reps, level=level, seed=seed)
            row = {"protocol": proto, "method": m, "n_cells": len(scores),
                   "n_runs": int(sum(len(c) for c in scores)), "iqm": aggregate_iqm(scores),
                   "iqm_lo": lo, "iqm_hi": hi, "poi": math.nan, "poi_lo": math.nan, "poi_hi": math.nan}
            common = sorted(set(by_cell) & set(base))
            if m != baseline and common:
                x, y = [by_cell[k] for k in common], [base[k] for k in common]
                row["poi"] = probability_of_improvement(x, y)
                row["poi_lo"], row["poi_hi"] = stratified_bootstrap_ci(
                    probability_of_improvement, x, y, reps=reps, level=level, seed=seed)
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


REGIME_DROP = 0.08
"""CE memorises when its last-epoch test accuracy is this far below its best epoch ..."""
REGIME_FIT = 0.5
"""... and it predicts at least this share of mislabelled training images as their noisy label."""


REGIME_BANDS = ("memorisation", "borderline", "none", "unknown")


def regime_band(drop: float, noisy_fit: float) -> str:
    """memorisation (drop >= REGIME_DROP and fit >= REGIME_FIT); none (drop below half of
    REGIME_DROP and fit below half of REGIME_FIT: clearly no memorisation); unknown (a drop that
    meets the rule but no memorisation probe); borderline otherwise (a criterion met or close):
    a fixed threshold must not turn a setting one point either side of it into a verdict."""
    fit_known = not math.isnan(noisy_fit)
    if drop >= REGIME_DROP and fit_known and noisy_fit >= REGIME_FIT:
        return "memorisation"
    if not fit_known:
        return "unknown" if drop >= REGIME_DROP / 2 else "none"
    if drop < REGIME_DROP / 2 and noisy_fit < REGIME_FIT / 2:
        return "none"
    return "borderline"


def regime(df: pd.DataFrame, baseline: str = "ce") -> pd.DataFrame:
    """Per cell: is it a memorisation regime? Judged on the baseline (CE) trained in the cell.

    Label-noise methods exist because a network trained long enough memorises noisy labels; a
    cell where CE does not (its last-epoch accuracy near its best, few noisy labels fitted) says
    little about them. Columns: cell keys, ``n_seeds, drop`` (mean over seeds of best minus last
    test accuracy), ``noisy_fit`` (mean memo/noisy_fit at the last epoch), ``memorises`` (drop >=
    REGIME_DROP and noisy_fit >= REGIME_FIT) and ``band`` (:func:`regime_band`). Cells without
    the baseline give no row.
    """
    cols = list(CELL_KEYS) + ["n_seeds", "drop", "noisy_fit", "memorises", "band"]
    b = df[df["method"] == baseline]
    best, last, fit = (_per_seed(b, m) for m in ("test/acc_best", "test/acc_last", "memo/noisy_fit"))
    if best.empty or last.empty:
        return pd.DataFrame(columns=cols)
    keys = list(GROUP_KEYS) + ["seed"]
    m = best.merge(last, on=keys, suffixes=("_best", "_last"))
    m = _nan_safe_keys(m)
    fit = _nan_safe_keys(fit)
    rows = []
    for key, g in m.groupby(list(CELL_KEYS), dropna=False, sort=True):
        f = fit.merge(g[keys], on=keys)["value"] if not fit.empty else pd.Series(dtype=float)
        drop = float((g["value_best"] - g["value_last"]).mean())
        nf = float(f.mean()) if len(f) else math.nan
        rows.append({**dict(zip(CELL_KEYS, key)), "n_seeds": int(len(g)), "drop": drop, "noisy_fit": nf,
                     "memorises": bool(drop >= REGIME_DROP and nf >= REGIME_FIT),
                     "band": regime_band(drop, nf)})
    out = pd.DataFrame(rows, columns=cols)
    out["rate"] = out["rate"].where(out["rate"] >= 0, np.nan)
    return out


def headline_metric(df: pd.DataFrame) -> str:
    """The headline accuracy of a frame (call it per protocol): test/acc_at_best_val (the epoch
    chosen on the noisy validation split) when any run records it, else test/acc_last (a protocol
    without a validation split). Never the oracle test/acc_best."""
    if not _final_values(df, "test/acc_at_best_val").empty:
        return "test/acc_at_best_val"
    return "test/acc_last"


# ----- the OBD mask against its unmasked base -----------------------------------------------------

def _split_label(method: str) -> tuple[str, list[str], str]:
    """A table label (benchmark.store.method_label, hp_labels) in its parts:
    "gce+obd[score=random,sparsity=0.4] (q=0.5)" -> ("gce+obd", ["score=random", "sparsity=0.4"],
    " (q=0.5)")."""
    name, sep, hp = method.partition(" (")
    name, _, bracket = name.partition("[")
    return name, [s for s in bracket.rstrip("]").split(",") if s], f" ({hp}" if sep else ""


def _join_label(name: str, items: list[str], suffix: str) -> str:
    """The inverse of :func:`_split_label`."""
    return name + (f"[{','.join(items)}]" if items else "") + suffix


def mask_base(method: str) -> str | None:
    """The unmasked method a masked label is compared with, None for an unmasked method.

    "obd" and "obd[sparsity=0.1]" -> "ce" (obd is CE with the mask); "gce+obd[score=random]" ->
    "gce"; "gce+obd (q=0.5)" -> "gce (q=0.5)"; "dividemix+obd" -> "dividemix"; "ce" -> None. The
    bracket holds the settings that differ from the defaults (see benchmark.store.method_label):
    the mask's are dropped, the classifier's kept, so "obd[classifier=kan,sparsity=0.3]" is
    compared with "ce[classifier=kan]" (the same KAN head without the mask).
    """
    name, items, suffix = _split_label(method)  # "gce+obd (q=0.5)" is compared with "gce (q=0.5)"
    keep = [s for s in items if s.startswith("classifier=")]
    if name == "obd":
        return _join_label("ce", keep, suffix)
    if name.endswith("+obd"):
        return _join_label(name[: -len("+obd")], keep, suffix)
    return None


def mask_effect(df: pd.DataFrame, metric: str, *, runs: dict | None = None,
                level: float = 0.95) -> pd.DataFrame:
    """Paired difference of every masked method to its own unmasked base (see :func:`mask_base`).

    Same columns and pairing as :func:`paired_differences` (same cell and seed, hence the same
    noise realisation and split; noise hashes checked when ``runs`` is given), with ``baseline``
    set per row to the base method. Masked labels whose base has no run give no rows.
    """
    return variant_effect(df, metric, mask_base, runs=runs, level=level)


def classifier_base(method: str) -> str | None:
    """The linear-classifier label a KAN-head label is compared with, None for a linear one:
    "ce[classifier=kan]" -> "ce"; "obd[classifier=kan,sparsity=0.3]" -> "obd[sparsity=0.3]"."""
    name, items, suffix = _split_label(method)
    if not any(s.startswith("classifier=") for s in items):
        return None
    return _join_label(name, [s for s in items if not s.startswith("classifier=")], suffix)


def classifier_effect(df: pd.DataFrame, metric: str, *, runs: dict | None = None,
                      level: float = 0.95) -> pd.DataFrame:
    """Paired difference of every KAN-head label to the same method with the linear classifier
    (see :func:`classifier_base`); columns as :func:`paired_differences`."""
    return variant_effect(df, metric, classifier_base, runs=runs, level=level)


def ablation_base(method: str) -> str | None:
    """The mask an ablation of it is compared with, None for a label that is no ablation.

    An ablation changes a setting of the mask other than its sparsity (the score, masking at
    evaluation, the scope, ...) and is compared with the same method and mask at the same sparsity
    and classifier: "obd[at_eval=True,sparsity=0.4]" -> "obd[sparsity=0.4]" (masking at
    evaluation against training only), "gce+obd[score=random]" -> "gce+obd" (the random control
    against the OBD score at the default sparsity); "obd[sparsity=0.4]" and "gce" -> None.
    """
    name, items, suffix = _split_label(method)
    keep = [s for s in items if s.startswith(("classifier=", "sparsity="))]
    if mask_base(name) is None or len(keep) == len(items):
        return None
    return _join_label(name, keep, suffix)


def ablation_effect(df: pd.DataFrame, metric: str, *, runs: dict | None = None,
                    level: float = 0.95) -> pd.DataFrame:
    """Paired difference of every ablation of the mask to the mask it varies (see
    :func:`ablation_base`); columns as :func:`paired_differences`."""
    return variant_effect(df, metric, ablation_base, runs=runs, level=level)


def variant_effect(df: pd.DataFrame, metric: str, base_of, *, runs: dict | None = None,
                   level: float = 0.95) -> pd.DataFrame:
    """Paired difference of every label ``m`` with ``base_of(m)`` not None to that base, on the
    same cell and seed (columns as :func:`paired_differences`, ``baseline`` per row)."""
    methods = df["method"].unique() if not df.empty else []
    bases = sorted({b for m in methods if (b := base_of(str(m))) is not None})
    parts = []
    for base in bases:
        family = [m for m in methods if m == base or base_of(str(m)) == base]
        p = paired_differences(df[df["method"].isin(family)], metric, base, runs=runs, level=level)
        if not p.empty:
            parts.append(p)
    if not parts:
        return paired_differences(df.iloc[:0], metric)
    return pd.concat(parts, ignore_index=True)


GRAD_ERRORS = ("grad/err_fc_masked", "grad/err_fc_unmasked", "grad/err_feat_masked",
               "grad/err_feat_unmasked")


def gradient_error_summary(df: pd.DataFrame, *, epoch: str = "last") -> pd.DataFrame:
    """Per (cell, method): the probe-batch gradient errors, mean and std over seeds.

    epoch: "last" takes each run's last recorded epoch; "mean" averages each run over its epochs
    first. Columns: cell keys, ``method, n_seeds`` and, for each of :data:`GRAD_ERRORS` present,
    ``<name>_mean`` and ``<name>_std`` (name without the ``grad/`` prefix), plus
    ``fc_reduction`` and ``feat_reduction``: 1 - masked / unmasked, averaged over seeds (how much of
    the noisy-label gradient error the mask removes; NaN for unmasked methods).
    """
    if epoch not in ("last", "mean"):
        raise ValueError(f"epoch must be 'last' or 'mean', not {epoch!r}")
    d = df[df["metric"].isin(GRAD_ERRORS) & df["epoch"].notna()]
    if d.empty:
        return pd.DataFrame(columns=list(GROUP_KEYS) + ["n_seeds"])
    d = _nan_safe_keys(d)
    keys = list(GROUP_KEYS) + ["seed"]
    if epoch == "last":
        d = d.assign(_ep=d["epoch"].astype("int64")).sort_values("_ep")
        per_run = d.groupby(keys + ["metric"], dropna=False)["value"].last()
    else:
        per_run = d.groupby(keys + ["metric"], dropna=False)["value"].mean()
    wide = per_run.unstack("metric").reset_index()
    for kind in ("fc", "feat"):
        m, u = f"grad/err_{kind}_masked", f"grad/err_{kind}_unmasked"
        wide[f"{kind}_reduction"] = (1 - wide[m] / wide[u]) if m in wide and u in wide else math.nan
    value_cols = [c for c in wide.columns if c not in keys]
    g = wide.groupby(list(GROUP_KEYS), dropna=False)
    out = g[value_cols].mean().add_suffix("_mean")
    out = out.join(g[value_cols].std(ddof=1).add_suffix("_std"))
    out.insert(0, "n_seeds", g.size())
    out = out.reset_index()
    out.columns = [c.replace("grad/", "") for c in out.columns]
    out = out.rename(columns={"fc_reduction_mean": "fc_reduction", "feat_reduction_mean": "feat_reduction"})
    out["rate"] = out["rate"].where(out["rate"] >= 0, np.nan)
    return out
