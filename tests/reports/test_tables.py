"""Paper tables and their writers."""
import math

import numpy as np
import pandas as pd
import pytest

from reports import stats, tables
from tests.reports.synth import toy_frame


def _frame():
    return pd.concat([
        toy_frame({"ce": [0.5, 0.7, 0.9], "gce+obd": [0.8, 0.8, 0.9], "my_method": [0.6]},
                  label="sym-40%", rate=0.4),
        toy_frame({"ce": [0.30, 0.32, 0.34], "gce+obd": [0.20, 0.22, 0.24]},
                  label="pairflip-45%", noise="pairflip", rate=0.45),
        toy_frame({"ce": [0.76, 0.78, 0.80]}, label="human-worst", noise="human", rate=float("nan")),
        toy_frame({"ce": [0.39, 0.41, 0.40]}, label="sym-40%", rate=0.4, metric="noise/actual_rate"),
    ])


def test_paper_table_layout_and_cells():
    s = stats.cell_summary(_frame(), "test/acc_last")
    t = tables.paper_table(s, protocol="p")
    assert list(t.index) == ["ce", "gce+obd", "my_method"]           # baseline first
    assert list(t.columns) == ["sym-40%", "pairflip-45%", "human-worst"]  # by kind, then rate
    assert t.loc["ce", "sym-40%"] == "70.0 \u00b1 20.0"
    assert t.loc["my_method", "sym-40%"] == "60.0 (n=1)"
    assert t.loc["gce+obd", "human-worst"] == "\u2013"
    assert t.attrs["best"] == {"sym-40%": ["gce+obd"], "pairflip-45%": ["ce"], "human-worst": ["ce"]}
    assert t.attrs["measured_rate"]["sym-40%"] == pytest.approx(0.40)
    assert math.isnan(t.attrs["measured_rate"]["pairflip-45%"])


def test_latex_booktabs_bold_and_escaping():
    t = tables.paper_table(stats.cell_summary(_frame(), "test/acc_last"), protocol="p")
    tex = tables.to_latex(t)
    for rule in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}", "\\caption{"):
        assert rule in tex
    assert "\\textbf{83.3 $\\pm$ 5.8}" in tex          # gce+obd is best on sym-40%
    assert "\\textbf{70.0" not in tex
    assert "sym-40\\%" in tex and "my\\_method" in tex and "gce+obd" in tex
    assert "\u00b1" not in tex and "\u2013" not in tex  # pure ASCII LaTeX markup
    body = tex.split("\\midrule")[1]
    assert body.count("\\\\") == 3                     # three method rows


def test_markdown_rows_and_bold():
    t = tables.paper_table(stats.cell_summary(_frame(), "test/acc_last"), protocol="p")
    md = tables.to_markdown(t)
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| Method | sym-40% | pairflip-45% | human-worst |")
    rows = [ln.split("|")[1].strip() for ln in lines[1:]]
    assert rows == ["ce", "gce\\+obd", "my\\_method", "*measured flip rate*"]
    assert "**83.3 \u00b1 5.8**" in md
    assert "40.0%" in md


def test_html_and_csv_writers(tmp_path):
    df = _frame()
    df.loc[df["method"] == "my_method", "method"] = "<b>x</b>"
    t = tables.paper_table(stats.cell_summary(df, "test/acc_last"), protocol="p")
    h = tables.to_html(t, tmp_path / "t.html")
    assert "&lt;b&gt;x&lt;/b&gt;" in h and "<b>x</b>" not in h
    assert "<strong>83.3 \u00b1 5.8</strong>" in h
    assert (tmp_path / "t.html").read_text().startswith("<!DOCTYPE html>")
    csv = tables.to_csv(t, tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv", index_col=0)
    assert list(back.index) == list(t.index) + ["measured flip rate"]
    assert "<b>x</b>" in back.index
    assert csv.splitlines()[0] == "method,sym-40%,pairflip-45%,human-worst"


def test_protocols_are_never_mixed():
    df = pd.concat([toy_frame({"ce": [0.5], "gce": [0.6]}, protocol="fmnist-cnn"),
                    toy_frame({"ce": [0.9], "dividemix": [0.95]}, protocol="cifar10-dividemix")])
    s = stats.cell_summary(df, "test/acc_last")
    a = tables.paper_table(s, protocol="fmnist-cnn")
    b = tables.paper_table(s, protocol="cifar10-dividemix")
    assert list(a.index) == ["ce", "gce"] and list(b.index) == ["ce", "dividemix"]
    assert a.loc["ce", "sym-40%"].startswith("50.0") and b.loc["ce", "sym-40%"].startswith("90.0")
    assert tables.paper_table(s, protocol="nope").empty


def test_published_column_only_for_matching_protocol_and_accuracy():
    from reports.published import PROTOCOLS
    df = pd.concat([
        toy_frame({"ce": [0.80, 0.82], "gce": [0.81, 0.83]}, protocol="cifar-n", dataset="cifar10",
                  noise="human", rate=float("nan"), label="human-worst", metric=m)
        for m in ("test/acc_best", "test/acc_last")])
    same = dict(PROTOCOLS["cifar-n"], dataset="cifar10", val_frac=0.1, name="anything")
    best = tables.paper_table(stats.cell_summary(df, "test/acc_best"), protocol="cifar-n", fields=same)
    assert list(best.columns) == ["human-worst", "human-worst (published)"]
    assert best.loc["ce", "human-worst (published)"] == "77.69 [1]"
    assert best.loc["gce", "human-worst (published)"] == "80.66 [1]"
    assert any("ResNet-34" in n for n in best.attrs["notes"])
    assert "77.69" in tables.to_latex(best)
    last = tables.paper_table(stats.cell_summary(df, "test/acc_last"), protocol="cifar-n", fields=same)
    assert list(last.columns) == ["human-worst"]          # the leaderboard reports best epoch only
    # the name is not the protocol: a 1-epoch cnn run called "cifar-n" gets no published number
    short = dict(same, model="cnn", epochs=1)
    t = tables.paper_table(stats.cell_summary(df, "test/acc_best"), protocol="cifar-n", fields=short)
    assert t.loc["ce", "human-worst (published)"] == "\u2260 protocol [1]"
    note = next(n for n in t.attrs["notes"] if "not shown" in n)
    assert "model 'cnn' vs 'resnet34'" in note and "epochs 1 vs 100" in note
    assert "77.69" not in tables.to_markdown(t)
    # no recorded protocol at all: nothing is attached either
    t = tables.paper_table(stats.cell_summary(df, "test/acc_best"), protocol="cifar-n")
    assert t.loc["ce", "human-worst (published)"].startswith("\u2260")


def test_published_dividemix_uses_sym_incl_not_sym():
    from reports import published
    proto = published.PROTOCOLS["cifar10-dividemix"]
    assert published.lookup(proto, "cifar10", "sym_incl-50%", "dividemix", "test/acc_last").text == "94.4"
    assert published.lookup(proto, "cifar10", "sym-50%", "dividemix", "test/acc_best") is None
    assert published.lookup(published.PROTOCOLS["cifar-n"], "CIFAR-10", "human-aggre", "Co-Teaching",
                            "test/acc_best").text == "91.20"
    assert published.lookup(proto, "cifar10", "human-aggre", "coteaching", "test/acc_best") is None


def test_multi_dataset_protocol_prefixes_columns():
    df = pd.concat([toy_frame({"ce": [0.5]}, dataset="cifar10"), toy_frame({"ce": [0.3]}, dataset="cifar100")])
    t = tables.paper_table(stats.cell_summary(df, "test/acc_last"), protocol="p")
    assert list(t.columns) == ["cifar10 / sym-40%", "cifar100 / sym-40%"]


def test_protocol_info_flags_mixed_fields():
    runs = {"a": {"config": {"protocol": {"name": "p", "model": "cnn", "epochs": 10}, "val_frac": 0.1}},
            "b": {"config": {"protocol": {"name": "p", "model": "cnn", "epochs": 20}, "val_frac": 0.1}},
            "c": {"config": {"protocol": {"name": "q", "model": "mlp", "epochs": 5}}}}
    info = tables.protocol_info(runs, "p")
    assert info["backbone"] == "cnn"
    assert info["epochs"] == "MIXED: 10 | 20"
    assert info["validation split"].startswith("10% of the noisy training set")


def test_method_order_puts_each_masked_variant_after_its_base():
    from reports.tables import method_order
    labels = ["gce+obd", "obd[sparsity=0.1]", "coteaching", "obd", "gce", "ce", "dividemix+obd"]
    assert method_order(labels) == ["ce", "obd", "obd[sparsity=0.1]", "coteaching", "dividemix+obd",
                                    "gce", "gce+obd"]


def test_effect_table_cells_bold_and_markdown():
    df = pd.concat([
        toy_frame({"ce": [0.50, 0.60, 0.70], "obd": [0.52, 0.63, 0.71], "gce": [0.6, 0.6, 0.6],
                   "gce+obd": [0.7, 0.5, 0.6]}, label="sym-40%", rate=0.4),
        toy_frame({"ce": [0.30, 0.30, 0.30], "obd": [0.20, 0.25, 0.22]}, label="pairflip-45%",
                  noise="pairflip", rate=0.45),
    ])
    t = tables.effect_table(stats.mask_effect(df, "test/acc_last"), protocol="p")
    assert list(t.index) == ["obd", "gce+obd"] and list(t.columns) == ["vs", "sym-40%", "pairflip-45%"]
    assert t.loc["obd", "vs"] == "ce" and t.loc["gce+obd", "vs"] == "gce"
    assert t.loc["obd", "sym-40%"].startswith("+2.0 [")              # diffs +2, +3, +1 points
    assert t.loc["obd", "pairflip-45%"].startswith("-7.7 [")
    assert t.loc["gce+obd", "pairflip-45%"] == tables.DASH
    # bold where the Student-t interval excludes zero: obd at pairflip (-10, -5, -8: [-13.9,
    # -1.4]); at sym-40% diffs +2, +3, +1 give [-0.5, +4.5], which a bootstrap would call +1..+3
    assert t.attrs["best"] == {"sym-40%": [], "pairflip-45%": ["obd"]}
    # with the cell's minimum detectable effect: differences (+2, +3, +1) points, sd 1, 3 pairs
    mde = stats.min_detectable_effect(1.0, 3)
    assert t.loc["obd", "sym-40%"] == f"+2.0 [-0.5, +4.5] MDE {mde:.1f}"
    md = tables.to_markdown(t)
    assert "Pairing: on seed" in md and "**-7.7 \\[-13.9, -1.4\\] MDE" in md and "Selection rule" not in md
    assert "minimum detectable effect" in md


def test_gradient_table_masked_over_unmasked():
    rows = []
    for m, vals in {"ce": {"fc_unmasked": 0.8, "feat_unmasked": 1.0},
                    "obd": {"fc_masked": 0.3, "fc_unmasked": 0.6, "feat_masked": 1.1, "feat_unmasked": 1.0}}.items():
        for k, v in vals.items():
            rows.append({"run_id": m, "method": m, "dataset": "d", "model": "cnn", "noise": "sym", "rate": 0.4,
                         "noise_label": "sym-40%", "seed": 0, "protocol": "p", "epoch": 1,
                         "metric": f"grad/err_{k}", "value": v})
    df = pd.DataFrame(rows)
    df["epoch"] = df["epoch"].astype("Int64")
    t = tables.gradient_table(stats.gradient_error_summary(df), protocol="p")
    assert t.loc["obd", "sym-40% fc"] == "0.300 / 0.600 (-50%)"
    assert t.loc["obd", "sym-40% feat"] == "1.100 / 1.000 (+10%)"
    assert t.loc["ce", "sym-40% fc"] == "0.800"
    assert tables.gradient_table(stats.gradient_error_summary(df.iloc[:0]), protocol="p").empty


def test_verdict_table_says_what_each_comparison_can_resolve():
    sel = {"ce": [0.50, 0.60, 0.70, 0.65], "obd": [0.60, 0.71, 0.79, 0.76],  # +10, +11, +9, +11: helps
           "gce": [0.60, 0.60, 0.60, 0.60], "gce+obd": [0.61, 0.59, 0.60, 0.62]}  # +1, -1, 0, +2: unclear
    last = {m: [v - 0.1 for v in vals] for m, vals in sel.items()}
    df = pd.concat([toy_frame(sel, label="sym-50%", rate=0.5, metric="test/acc_at_best_val"),
                    toy_frame(last, label="sym-50%", rate=0.5, metric="test/acc_last")])
    eff_sel = stats.mask_effect(df, "test/acc_at_best_val")
    t = tables.verdict_table(stats.cell_summary(df, "test/acc_at_best_val"), eff_sel,
                             stats.mask_effect(df, "test/acc_last"), protocol="p")
    assert list(t.index) == ["obd · sym-50%", "gce+obd · sym-50%"]
    assert t.loc["obd · sym-50%", "vs"] == "ce" and t.loc["obd · sym-50%", "verdict"].startswith("helps: +10.2")
    assert t.loc["obd · sym-50%", "pairs"] == 4
    unclear = t.loc["gce+obd · sym-50%"]
    mde = stats.min_detectable_effect(np.std([1, -1, 0, 2], ddof=1) / 100, 4)
    assert unclear["verdict"] == ("cannot be told apart from no effect; effects beyond "
                                  f"±{100 * mde:.1f} points would have been detected (80% power)")
    need = stats.seeds_for_half_width(np.std([1, -1, 0, 2], ddof=1) / 100, 0.005)
    assert unclear["seeds for ±0.5"] == f"{int(need)} (have 4)"
    lo, hi = stats.t_interval(np.array([1, -1, 0, 2]) / 100)
    assert unclear["half-width"] == f"{100 * (hi - lo) / 2:.2f}"
    assert t.attrs["best"]["verdict"] == ["obd · sym-50%"]
    assert "MDE" in unclear["gain, selected"] and "MDE" in unclear["gain, last"]
    md = tables.to_markdown(t)
    assert "minimum detectable effect" in md and "**helps" in md


def test_an_ablation_gets_a_verdict_row_against_each_of_its_bases():
    sel = {"ce": [0.50, 0.60, 0.70], "obd[sparsity=0.4]": [0.52, 0.61, 0.70],
           "obd[score=random,sparsity=0.4]": [0.42, 0.52, 0.60]}  # the control: about -10 against the mask
    df = toy_frame(sel, label="sym-50%", rate=0.5, metric="test/acc_at_best_val")
    eff = pd.concat([stats.mask_effect(df, "test/acc_at_best_val"),
                     stats.ablation_effect(df, "test/acc_at_best_val")])
    t = tables.verdict_table(stats.cell_summary(df, "test/acc_at_best_val"), eff, eff.iloc[:0], protocol="p")
    rnd = "obd[score=random,sparsity=0.4]"
    assert list(t.index) == ["obd[sparsity=0.4] · sym-50%", f"{rnd} vs ce · sym-50%",
                             f"{rnd} vs obd[sparsity=0.4] · sym-50%"]
    assert t.loc[f"{rnd} vs obd[sparsity=0.4] · sym-50%", "verdict"].startswith("hurts: -9.7")
    assert t.loc[f"{rnd} vs obd[sparsity=0.4] · sym-50%", "base"].startswith("61.0")


def test_names_cannot_inject_html_into_markdown_or_formulas_into_csv():
    """A method name received with a store (merge) holding HTML or a spreadsheet formula is text in
    every table: entities in Markdown, an apostrophe in front of a formula in CSV; signed figures
    such as +1.2 or -0.4 stay as they are."""
    evil = '<img src=x onerror=alert(1)>'
    formula = '=HYPERLINK("http://x","y")'
    df = toy_frame({"ce": [0.5, 0.6], evil: [0.4, 0.5], formula: [0.3, 0.2]})
    t = tables.paper_table(stats.cell_summary(df, "test/acc_last"), protocol="p")
    md = tables.to_markdown(t)
    assert "<img" not in md and "&lt;img src=x onerror=alert\\(1\\)&gt;" in md
    csv = tables.to_csv(t)
    lines = csv.splitlines()
    assert any(line.startswith('"\'=HYPERLINK') for line in lines)
    assert not any(line.lstrip('"').startswith("=") for line in lines)
    assert tables.csv_safe("+1.2 [-0.4, +2.8]") == "+1.2 [-0.4, +2.8]" and tables.csv_safe("-0.4") == "-0.4"
    assert tables.csv_safe("-cmd|' /C calc'!A0") == "'-cmd|' /C calc'!A0"
    assert tables.csv_safe("@SUM(A1)") == "'@SUM(A1)" and tables.csv_safe(3.5) == 3.5
