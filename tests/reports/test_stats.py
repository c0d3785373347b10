"""Statistics on toy inputs with hand-computed answers."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from reports import stats
from tests.reports.synth import COLUMNS, toy_frame, toy_run_id


def test_cell_summary_mean_std_hand_computed():
    s = stats.cell_summary(toy_frame({"ce": [0.5, 0.7, 0.9]}), "test/acc_last")
    assert len(s) == 1
    r = s.iloc[0]
    assert r.n_seeds == 3
    assert r["mean"] == pytest.approx(0.7)
    # ddof=1: sqrt((0.2^2 + 0 + 0.2^2) / 2) = 0.2
    assert r["std"] == pytest.approx(0.2)
    # Student-t: 0.7 -+ t(0.975, 2) * 0.2 / sqrt(3), t = 4.302653
    half = 4.302653 * 0.2 / math.sqrt(3)
    assert (r.ci_lo, r.ci_hi) == pytest.approx((0.7 - half, 0.7 + half), abs=1e-6)


def test_cell_summary_single_seed_nan_dropped_and_human_rate_nan():
    df = toy_frame({"ce": [0.6, float("nan")]}, noise="human", rate=float("nan"), label="human-worst")
    s = stats.cell_summary(df, "test/acc_last")
    assert len(s) == 1  # the NaN-rate cell is one group, not dropped
    r = s.iloc[0]
    assert r.n_seeds == 1 and r["mean"] == pytest.approx(0.6)
    assert math.isnan(r["std"])
    assert math.isnan(r.ci_lo) and math.isnan(r.ci_hi)  # one seed: no interval
    assert math.isnan(r.rate) and r.noise_label == "human-worst"


def test_cell_summary_per_epoch_metric_uses_last_epoch():
    rows = [{"run_id": "a", "method": "ce", "dataset": "d", "model": "m", "noise": "sym", "rate": 0.2,
             "noise_label": "sym-20%", "seed": 0, "protocol": "p", "epoch": ep, "metric": "test/acc",
             "value": v} for ep, v in ((1, 0.3), (3, 0.9), (2, 0.5))]
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["epoch"] = df["epoch"].astype("Int64")
    assert stats.cell_summary(df, "test/acc").iloc[0]["mean"] == pytest.approx(0.9)


def test_cell_summary_measured_rate():
    df = pd.concat([toy_frame({"ce": [0.5, 0.7]}),
                    toy_frame({"ce": [0.38, 0.42]}, metric="noise/actual_rate")])
    assert stats.cell_summary(df, "test/acc_last").iloc[0]["actual_rate"] == pytest.approx(0.40)


def test_iqm_hand_computed():
    # n = 8: cut floor(0.25 * 8) = 2 from each end of [1,2,3,4,5,6,7,100] -> mean(3,4,5,6) = 4.5
    x = [1, 2, 3, 4, 100, 5, 6, 7]
    assert stats.iqm(x) == pytest.approx(4.5)
    assert stats.iqm(x) == pytest.approx(sps.trim_mean(x, 0.25))
    assert stats.iqm([1, 2, 30]) == pytest.approx(11.0)  # n < 4: nothing cut
    assert stats.iqm([1, 2, 3, 4, 50]) == pytest.approx(3.0)  # n = 5: cut 1 each side
    assert math.isnan(stats.iqm([]))


def test_t_interval_hand_computed():
    lo, hi = stats.t_interval([1.0, 2.0, 3.0])          # mean 2, s = 1, t(0.975, 2) = 4.302653
    assert (lo, hi) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)), abs=1e-6)
    assert stats.t_interval([0.73, 0.73, 0.73]) == pytest.approx((0.73, 0.73))
    assert all(math.isnan(v) for v in stats.t_interval([0.5]))   # n = 1: none
    assert all(math.isnan(v) for v in stats.t_interval([]))
    w99 = stats.t_interval([1.0, 2.0, 3.0], level=0.99)
    assert w99[0] < lo and w99[1] > hi


def test_duplicate_runs_of_one_seed_are_counted_once_never_averaged():
    a = toy_frame({"ce": [0.5, 0.7]})
    dup = toy_frame({"ce": [0.9]}).assign(run_id="zzzzzzzzzzzzzzzz")  # seed 0 again, later run id
    s = stats.cell_summary(pd.concat([a, dup]), "test/acc_last").iloc[0]
    assert s.n_seeds == 2 and s.n_left_out == 1
    assert s["mean"] == pytest.approx(0.6)  # the first run of seed 0 (0.5), not (0.5 + 0.9) / 2


def test_paired_differences_three_seeds_with_tie():
    df = toy_frame({"ce": [0.50, 0.60, 0.70], "gce": [0.55, 0.60, 0.80]})
    p = stats.paired_differences(df, "test/acc_last")
    assert len(p) == 1
    r = p.iloc[0]
    assert r.method == "gce" and r.baseline == "ce" and r.n_pairs == 3
    assert r.mean_diff == pytest.approx(0.05)  # diffs 0.05, 0.00, 0.10
    assert r.prob_improvement == pytest.approx((1 + 0.5 + 1) / 3)  # the tie counts 0.5
    half = 4.302653 * 0.05 / math.sqrt(3)                           # s of the diffs = 0.05
    assert (r.ci_lo, r.ci_hi) == pytest.approx((0.05 - half, 0.05 + half), abs=1e-6)


def test_paired_differences_pairs_by_seed_and_cell_only():
    a = toy_frame({"ce": [0.5, 0.6, 0.7], "gce": [0.9, 0.4]})   # gce lacks seed 2
    a = a.iloc[::-1]                                             # row order must not matter
    b = toy_frame({"gce": [0.1, 0.1, 0.1]}, label="sym-80%", rate=0.8)  # no CE in this cell
    p = stats.paired_differences(pd.concat([a, b]), "test/acc_last")
    assert len(p) == 1 and p.iloc[0].n_pairs == 2
    assert p.iloc[0].mean_diff == pytest.approx(((0.9 - 0.5) + (0.4 - 0.6)) / 2)
    assert p.iloc[0].prob_improvement == pytest.approx(0.5)


def test_paired_differences_drops_mismatched_noise_hash():
    df = toy_frame({"ce": [0.5, 0.6], "gce": [0.7, 0.9]})
    runs = {toy_run_id(m, s): {"result": {"noise": {"sha256": f"h{s}" if (m, s) != ("gce", 1) else "other"}}}
            for m in ("ce", "gce") for s in (0, 1)}
    p = stats.paired_differences(df, "test/acc_last", runs=runs)
    assert p.iloc[0].n_pairs == 1 and p.iloc[0].mean_diff == pytest.approx(0.2)


def test_ranks_with_tie_and_mean_rank():
    df = pd.concat([toy_frame({"a": [0.8], "b": [0.8], "c": [0.6]}, label="sym-20%", rate=0.2),
                    toy_frame({"a": [0.9], "b": [0.7], "c": [0.8]}, label="sym-50%", rate=0.5)])
    r = stats.ranks(stats.cell_summary(df, "test/acc_last"))
    got = {(x.noise_label, x.method): x.rank for x in r.itertuples()}
    assert got[("sym-20%", "a")] == got[("sym-20%", "b")] == 1.5 and got[("sym-20%", "c")] == 3
    assert (got[("sym-50%", "a")], got[("sym-50%", "c")], got[("sym-50%", "b")]) == (1, 2, 3)
    mean_rank = r.groupby("method")["mean_rank"].first()
    assert mean_rank.to_dict() == pytest.approx({"a": 1.25, "b": 2.25, "c": 2.5})
    assert set(r["n_cells"]) == {2}


def test_ranks_never_across_protocols():
    df = pd.concat([toy_frame({"a": [0.9], "b": [0.1]}, protocol="p1"),
                    toy_frame({"a": [0.2], "c": [0.3]}, protocol="p2")])
    r = stats.ranks(stats.cell_summary(df, "test/acc_last"))
    got = {(x.protocol, x.method): x.rank for x in r.itertuples()}
    assert got == {("p1", "a"): 1, ("p1", "b"): 2, ("p2", "c"): 1, ("p2", "a"): 2}


def test_leaderboard_iqm_and_paired_columns():
    df = pd.concat([toy_frame({"ce": [0.5, 0.5], "gce": [0.6, 0.7]}, label=f"sym-{r}%", rate=r / 100)
                    for r in (10, 20, 30, 40)])
    s = stats.cell_summary(df, "test/acc_last")
    agg = stats.aggregates(df, "test/acc_last", reps=200)
    lb = stats.leaderboard(s, stats.paired_differences(df, "test/acc_last"), agg)
    assert list(lb["method"]) == ["gce", "ce"]
    g = lb.set_index("method")
    assert g.loc["gce", "mean_rank"] == 1 and g.loc["gce", "n_cells"] == 4
    # IQM over the 8 runs x cells (0.6 x 4, 0.7 x 4): the middle four, 0.6 0.6 0.7 0.7
    assert g.loc["gce", "iqm"] == pytest.approx(0.65)
    assert 0.6 <= g.loc["gce", "iqm_lo"] <= 0.65 <= g.loc["gce", "iqm_hi"] <= 0.7
    assert g.loc["gce", "mean_diff"] == pytest.approx(0.15)
    assert g.loc["gce", "poi"] == 1.0 and (g.loc["gce", "poi_lo"], g.loc["gce", "poi_hi"]) == (1.0, 1.0)
    assert math.isnan(g.loc["ce", "mean_diff"]) and math.isnan(g.loc["ce", "poi"])


def test_probability_of_improvement_counts_all_pairs_and_ties():
    # cell 1: x = [1, 3], y = [2, 2]: pairs (1>2 no, 1>2 no, 3>2, 3>2) -> 0.5; cell 2: tie -> 0.5
    assert stats.probability_of_improvement([[1, 3], [5]], [[2, 2], [5]]) == pytest.approx(0.5)
    assert stats.probability_of_improvement([[1, 3]], [[0]]) == 1.0
    assert math.isnan(stats.probability_of_improvement([], []))


def test_headline_metric_falls_back_to_last_without_validation():
    df = toy_frame({"ce": [0.5]})
    assert stats.headline_metric(df) == "test/acc_last"
    df2 = pd.concat([df, toy_frame({"ce": [0.6]}, metric="test/acc_at_best_val")])
    assert stats.headline_metric(df2) == "test/acc_at_best_val"
    df3 = pd.concat([df, toy_frame({"ce": [float("nan")]}, metric="test/acc_at_best_val")])
    assert stats.headline_metric(df3) == "test/acc_last"


def test_empty_inputs_do_not_crash():
    empty = toy_frame({})
    assert stats.cell_summary(empty, "test/acc_last").empty
    assert stats.paired_differences(empty, "test/acc_last").empty
    assert stats.ranks(stats.cell_summary(empty, "test/acc_last")).empty
    assert stats.leaderboard(stats.cell_summary(empty, "test/acc_last")).empty


@pytest.mark.parametrize("label, base", [("obd", "ce"), ("obd[sparsity=0.1]", "ce"),
                                         ("gce+obd[score=random,scope=layer]", "gce"),
                                         ("dividemix+obd", "dividemix"), ("ce", None), ("gce", None),
                                         ("obd[classifier=kan,sparsity=0.3]", "ce[classifier=kan]"),
                                         ("nce_rce+obd[classifier=kan]", "nce_rce[classifier=kan]"),
                                         ("ce[classifier=kan]", None)])
def test_mask_base(label, base):
    assert stats.mask_base(label) == base


def test_mask_effect_pairs_each_masked_label_with_its_own_base():
    df = toy_frame({"ce": [0.50, 0.60, 0.70], "gce": [0.60, 0.60, 0.60],
                    "obd": [0.55, 0.65, 0.70], "obd[sparsity=0.9]": [0.40, 0.50, 0.60],
                    "gce+obd": [0.70, 0.50, 0.60]})
    p = stats.mask_effect(df, "test/acc_last").set_index("method")
    assert set(p.index) == {"obd", "obd[sparsity=0.9]", "gce+obd"}  # never gce against ce
    assert p.loc["obd", "baseline"] == "ce" and p.loc["gce+obd", "baseline"] == "gce"
    assert p.loc["obd", "mean_diff"] == pytest.approx(0.1 / 3)
    assert p.loc["obd[sparsity=0.9]", "mean_diff"] == pytest.approx(-0.1)
    assert p.loc["obd[sparsity=0.9]", "prob_improvement"] == 0
    assert p.loc["gce+obd", "mean_diff"] == pytest.approx(0.0)  # +0.1, -0.1, 0
    # a masked method without its base gives no row
    assert stats.mask_effect(toy_frame({"gce+obd": [0.5]}), "test/acc_last").empty


def _grad_rows(method, seed, per_epoch):
    rows = []
    for ep, vals in enumerate(per_epoch, 1):
        for k, v in vals.items():
            rows.append({"run_id": f"{method}{seed}", "method": method, "dataset": "d", "model": "cnn",
                         "noise": "sym", "rate": 0.4, "noise_label": "sym-40%", "seed": seed,
                         "protocol": "p", "epoch": ep, "metric": f"grad/err_{k}", "value": v})
    return rows


def test_gradient_error_summary_last_and_mean_epoch():
    rows = (_grad_rows("obd", 0, [{"fc_masked": 0.5, "fc_unmasked": 1.0, "feat_masked": 0.9, "feat_unmasked": 1.0},
                                  {"fc_masked": 0.3, "fc_unmasked": 0.6, "feat_masked": 0.8, "feat_unmasked": 1.0}])
            + _grad_rows("obd", 1, [{"fc_masked": 0.2, "fc_unmasked": 1.0, "feat_masked": 1.0, "feat_unmasked": 1.0},
                                    {"fc_masked": 0.1, "fc_unmasked": 0.4, "feat_masked": 1.2, "feat_unmasked": 1.0}])
            + _grad_rows("ce", 0, [{"fc_unmasked": 0.7, "feat_unmasked": 0.9}, {"fc_unmasked": 0.8, "feat_unmasked": 0.9}]))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["epoch"] = df["epoch"].astype("Int64")
    last = stats.gradient_error_summary(df).set_index("method")
    assert last.loc["obd", "n_seeds"] == 2
    assert last.loc["obd", "err_fc_masked_mean"] == pytest.approx(0.2)        # (0.3 + 0.1) / 2
    assert last.loc["obd", "err_fc_unmasked_mean"] == pytest.approx(0.5)
    assert last.loc["obd", "fc_reduction"] == pytest.approx((0.5 + 0.75) / 2)  # per seed, then mean
    assert last.loc["obd", "feat_reduction"] == pytest.approx((0.2 - 0.2) / 2)
    assert math.isnan(last.loc["ce", "fc_reduction"])
    assert last.loc["ce", "err_fc_unmasked_mean"] == pytest.approx(0.8)
    mean = stats.gradient_error_summary(df, epoch="mean").set_index("method")
    assert mean.loc["obd", "err_fc_masked_mean"] == pytest.approx((0.4 + 0.15) / 2)
    with pytest.raises(ValueError, match="last"):
        stats.gradient_error_summary(df, epoch="first")


def test_regime_is_judged_on_ce():
    cells = []
    for label, rate, best, last, fit in (("sym-50%", 0.5, [0.82, 0.80], [0.53, 0.55], [0.6, 0.58]),
                                        ("sym-20%", 0.2, [0.86, 0.86], [0.855, 0.86], [0.02, 0.03])):
        for metric, vals in (("test/acc_best", best), ("test/acc_last", last), ("memo/noisy_fit", fit)):
            cells.append(toy_frame({"ce": vals, "gce": [0.1, 0.1]}, label=label, rate=rate, metric=metric))
    r = stats.regime(pd.concat(cells)).set_index("noise_label")
    assert bool(r.loc["sym-50%", "memorises"]) and not bool(r.loc["sym-20%", "memorises"])
    assert r.loc["sym-50%", "drop"] == pytest.approx(0.27) and r.loc["sym-50%", "noisy_fit"] == pytest.approx(0.59)
    assert r.loc["sym-20%", "n_seeds"] == 2


def test_regime_page_says_unknown_without_a_memorisation_probe():
    from reports.site import _regime_html
    cells = [toy_frame({"ce": vals}, label="sym-50%", rate=0.5, metric=metric)
             for metric, vals in (("test/acc_best", [0.82, 0.80]), ("test/acc_last", [0.53, 0.55]))]
    html = _regime_html(pd.concat(cells))
    assert "regime unknown" in html and "does not memorise" not in html


def test_minimum_detectable_effect_of_a_paired_t_test():
    """Standardised effects d_z of a two-sided paired t-test at 5% with 80% power, as G*Power
    tabulates them (n = 10: 0.996, 20: 0.660, 30: 0.529), scaled by the sd of the differences."""
    assert stats.min_detectable_effect(1.0, 10) == pytest.approx(0.996, abs=1e-3)
    assert stats.min_detectable_effect(1.0, 20) == pytest.approx(0.660, abs=1e-3)
    assert stats.min_detectable_effect(2.0, 30) == pytest.approx(2 * 0.529, abs=2e-3)
    assert math.isnan(stats.min_detectable_effect(1.0, 1)) and stats.min_detectable_effect(0.0, 5) == 0.0
    # and it is the power it claims: simulated paired t-tests at that true effect reject 80% of the time
    from scipy import stats as sps
    rng = np.random.default_rng(0)
    d = stats.min_detectable_effect(1.0, 8)
    x = rng.normal(d, 1.0, size=(20000, 8))
    p = sps.ttest_1samp(x, 0.0, axis=1).pvalue
    assert float((p < 0.05).mean()) == pytest.approx(0.80, abs=0.01)


def test_seeds_for_a_half_width():
    from scipy import stats as sps
    n = stats.seeds_for_half_width(0.01, 0.005)
    half = lambda k: sps.t.ppf(0.975, k - 1) * 0.01 / math.sqrt(k)  # noqa: E731
    assert half(n) <= 0.005 < half(n - 1)
    assert stats.seeds_for_half_width(0.0, 0.005) == 2 and math.isnan(stats.seeds_for_half_width(math.nan, 0.005))


def test_paired_differences_carry_spread_and_mde():
    df = toy_frame({"ce": [0.50, 0.60, 0.70, 0.65], "gce": [0.52, 0.63, 0.71, 0.69]})
    p = stats.paired_differences(df, "test/acc_last").iloc[0]
    d = np.array([0.02, 0.03, 0.01, 0.04])
    assert p["sd_diff"] == pytest.approx(d.std(ddof=1))
    assert p["mde"] == pytest.approx(stats.min_detectable_effect(d.std(ddof=1), 4))


@pytest.mark.parametrize("drop, fit, band", [(0.25, 0.60, "memorisation"), (0.215, 0.49, "borderline"),
                                             (0.077, 0.76, "borderline"), (0.01, 0.02, "none"),
                                             (0.03, 0.30, "borderline"), (0.20, math.nan, "unknown"),
                                             (0.01, math.nan, "none")])
def test_regime_bands_do_not_turn_a_point_into_a_verdict(drop, fit, band):
    """The quick preset's CE (fits 49%, 21.5 points below its best) is borderline, not 'does
    not memorise'; the twin's asym 40% (7.7 points, 76%) likewise."""
    assert stats.regime_band(drop, fit) == band


def test_regime_page_words_the_borderline_band():
    from reports.site import _regime_html
    cells = [toy_frame({"ce": vals}, label="sym-20%", rate=0.2, metric=metric)
             for metric, vals in (("test/acc_best", [0.80, 0.80]), ("test/acc_last", [0.585, 0.585]),
                                  ("memo/noisy_fit", [0.49, 0.49]))]
    html = _regime_html(pd.concat(cells))
    assert "borderline" in html and "does not memorise" not in html and "49%" in html and "21.5 points" in html


def test_classifier_base_and_effect():
    assert stats.classifier_base("ce[classifier=kan]") == "ce"
    assert stats.classifier_base("obd[classifier=kan,sparsity=0.3]") == "obd[sparsity=0.3]"
    assert stats.classifier_base("gce[classifier=kan] (q=0.5)") == "gce (q=0.5)"
    assert stats.classifier_base("obd[sparsity=0.3]") is None and stats.classifier_base("ce") is None
    df = toy_frame({"ce": [0.50, 0.60, 0.70], "ce[classifier=kan]": [0.51, 0.62, 0.70],
                    "obd[classifier=kan]": [0.52, 0.60, 0.69]})
    k = stats.classifier_effect(df, "test/acc_last").set_index("method")
    assert list(k.index) == ["ce[classifier=kan]"] and k.loc["ce[classifier=kan]", "baseline"] == "ce"
    m = stats.mask_effect(df, "test/acc_last").set_index("method")
    assert m.loc["obd[classifier=kan]", "baseline"] == "ce[classifier=kan]"
    assert m.loc["obd[classifier=kan]", "mean_diff"] == pytest.approx((0.01 - 0.02 - 0.01) / 3)


@pytest.mark.parametrize("label, base", [
    ("obd[at_eval=True,sparsity=0.4]", "obd[sparsity=0.4]"),
    ("obd[score=random,sparsity=0.4]", "obd[sparsity=0.4]"),
    ("gce+obd[score=actstd]", "gce+obd"),
    ("obd[classifier=kan,score=random,sparsity=0.3]", "obd[classifier=kan,sparsity=0.3]"),
    ("gce+obd[score=random] (q=0.5)", "gce+obd (q=0.5)"),
    ("obd[sparsity=0.4]", None), ("obd", None), ("ce[classifier=kan]", None), ("gce", None)])
def test_ablation_base(label, base):
    assert stats.ablation_base(label) == base


def test_an_ablation_is_paired_with_the_mask_it_varies_and_with_the_host():
    """The random-mask control answers "does the score matter?" only against the OBD score at the
    same sparsity; against CE it answers another question. Both comparisons are made."""
    df = toy_frame({"ce": [0.50, 0.60, 0.70], "obd[sparsity=0.4]": [0.52, 0.61, 0.70],
                    "obd[score=random,sparsity=0.4]": [0.53, 0.64, 0.72]})
    a = stats.ablation_effect(df, "test/acc_last").set_index("method")
    assert list(a.index) == ["obd[score=random,sparsity=0.4]"]
    assert a.loc["obd[score=random,sparsity=0.4]", "baseline"] == "obd[sparsity=0.4]"
    assert a.loc["obd[score=random,sparsity=0.4]", "mean_diff"] == pytest.approx((0.01 + 0.03 + 0.02) / 3)
    m = stats.mask_effect(df, "test/acc_last")
    assert set(m.baseline) == {"ce"} and len(m) == 2


def test_one_run_per_setting_gives_no_bootstrap_interval():
    """'1.00 [1.00, 1.00]' from resampling single runs looked like certainty: no interval instead,
    and the ranking says n = 1."""
    from reports.site import _ranking_html
    df = pd.concat([toy_frame({"ce": [0.5], "gce": [0.6]}, label=f"sym-{r}%", rate=r / 100)
                    for r in (20, 40)])
    agg = stats.aggregates(df, "test/acc_last").set_index("method")
    assert math.isnan(agg.loc["gce", "iqm_lo"]) and math.isnan(agg.loc["gce", "poi_lo"])
    assert agg.loc["gce", "poi"] == 1.0
    lb = stats.leaderboard(stats.cell_summary(df, "test/acc_last"), None, agg.reset_index())
    html = _ranking_html(lb, "p", "test/acc_last", 2)
    assert "(n = 1)" in html and "[1.00, 1.00]" not in html
    two = pd.concat([toy_frame({"ce": [0.5, 0.52], "gce": [0.6, 0.58]}, label="sym-20%", rate=0.2)])
    assert not math.isnan(stats.aggregates(two, "test/acc_last").set_index("method").loc["gce", "iqm_lo"])
