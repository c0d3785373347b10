"""The leaderboard site: files, escaping, self-containment, degenerate stores."""
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from reports import build_report
from tests.reports.conftest import SITE_METHODS, XSS
from tests.reports.synth import COLUMNS, make_store, toy_frame


class _Refs(HTMLParser):
    """Collects src/href attributes and the tags seen."""

    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.refs.append(v)


def _parse(index: Path) -> _Refs:
    p = _Refs()
    p.feed(index.read_text(encoding="utf-8"))
    return p


def test_site_layout(site):
    index, df, runs = site
    root = index.parent
    assert index.name == "index.html"
    for kind in ("last", "selected", "oracle"):
        for ext in ("md", "tex", "html", "csv"):
            assert (root / "tables" / f"{kind}_fmnist-cnn.{ext}").is_file()
    assert (root / "tables" / "summary_fmnist-cnn.csv").is_file()
    # coteaching selects (select/* tables); gce+obd is masked (effect vs gce, gradient error)
    for stem in ("select_precision", "select_recall", "mask_effect_selected", "mask_effect_last",
                 "gradient_error"):
        assert (root / "tables" / f"{stem}_fmnist-cnn.md").is_file(), stem
    assert not (root / "tables" / "select_auc_fmnist-cnn.md").exists()  # nobody records an AUC
    # a precision table is not an accuracy table: its note names the metric it holds
    precision = (root / "tables" / "select_precision_fmnist-cnn.md").read_text(encoding="utf-8")
    assert "select/precision in %" in precision and "accuracy in %" not in precision
    assert "accuracy in %" in (root / "tables" / "selected_fmnist-cnn.md").read_text(encoding="utf-8")
    effect = pd.read_csv(root / "tables" / "mask_effect_fmnist-cnn.csv")
    assert set(effect["method"]) == {"gce+obd"} and set(effect["baseline"]) == {"gce"}
    assert (effect["n_pairs"] == 2).all()
    assert {"sd_diff", "mde"} <= set(effect.columns) and effect["mde"].notna().all()
    verdict = (root / "tables" / "verdict_fmnist-cnn.md").read_text(encoding="utf-8")
    assert "gce\\+obd · " in verdict and "seeds for ±0.5" in verdict and "minimum detectable effect" in verdict
    paired = pd.read_csv(root / "tables" / "paired_vs_ce_fmnist-cnn.csv")
    assert {"test/acc_last", "test/acc_at_best_val", "test/acc_best"} <= set(paired["metric"])
    assert (root / "figures" / "gradient_error_fmnist-cnn.png").is_file()
    pngs = sorted((root / "figures").glob("*.png"))
    assert pngs and all(p.with_suffix(".svg").is_file() for p in pngs)
    assert len(list((root / "runs").glob("*.json"))) == len(runs)
    doc = json.loads((root / "runs" / f"{next(iter(runs))}.json").read_text())
    assert set(doc) == {"run_id", "config", "result", "meta"}


def test_page_states_protocol_rule_seeds_environment(site):
    index, _, _ = site
    text = index.read_text(encoding="utf-8")
    for needle in ("ORACLE", "noisy validation split", "HEADLINE", "Overall ranking", "Seeds per setting",
                   "measured flip rate", "Environment", "cpu (", "torch", "2.14.1", "backbone",
                   "10% of the noisy training set", "Paired difference to CE", "Clean-sample selection",
                   "The mask against its unmasked base", "Gradient error of the noisy labels"):
        assert needle in text, needle
    assert "Test &lt;b&gt;board&lt;/b&gt;" in text                # the title is escaped too


def test_xss_method_name_is_escaped(site):
    index, _, _ = site
    text = index.read_text(encoding="utf-8")
    assert XSS not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "script" not in _parse(index).tags                      # the page has no script at all


def test_self_contained_every_reference_is_local_and_exists(site):
    index, _, runs = site
    refs = _parse(index).refs
    assert refs
    for ref in refs:
        u = urlparse(ref)
        assert not u.scheme and not u.netloc, f"external reference {ref!r}"
        if u.path:
            assert (index.parent / unquote(u.path)).exists(), ref
    assert sum(r.startswith("runs/") for r in refs) == len(runs)   # every run reachable
    assert "http://" not in index.read_text() and "https://" not in index.read_text()


def test_ranking_rows(site):
    index, _, _ = site
    text = index.read_text(encoding="utf-8")
    ranking = text.split('<table class="ranking"', 1)[1].split("</table>", 1)[0]
    import html
    rows = [html.unescape(x.split('"', 1)[0]) for x in ranking.split('data-method="')[1:]]
    assert sorted(rows) == sorted(SITE_METHODS)
    assert rows[0] == "gce+obd"  # the synthetic store makes it best everywhere


def test_two_protocols_two_tables(tmp_path):
    a, ra = make_store(methods=("ce", "gce"), settings=(("sym", 0.2, ""),), seeds=(0,), epochs=2,
                       protocol="fmnist-cnn")
    b, rb = make_store(methods=("ce", "dividemix"), settings=(("sym", 0.2, ""),), seeds=(0,), epochs=2,
                       protocol="cifar10-dividemix", dataset="cifar10")
    index = build_report(pd.concat([a, b]), {**ra, **rb}, tmp_path)
    for proto in ("fmnist-cnn", "cifar10-dividemix"):
        assert (tmp_path / "tables" / f"last_{proto}.md").is_file()
    md_a = (tmp_path / "tables" / "last_fmnist-cnn.md").read_text()
    md_b = (tmp_path / "tables" / "last_cifar10-dividemix.md").read_text()
    assert "| gce |" in md_a and "dividemix" not in md_a.split("\n\n")[1]
    assert "| dividemix |" in md_b and "| gce |" not in md_b
    assert index.read_text().count('<table class="ranking"') == 2


def test_one_run_store_without_optional_metrics(tmp_path):
    df = toy_frame({"gce": [0.61]})                                # no CE, no epochs, no meta
    index = build_report(df, {df["run_id"].iloc[0]: {"config": {"method": "gce"}}}, tmp_path)
    text = index.read_text()
    assert "61.0 (n=1)" in text
    assert "No paired comparison" in text
    assert "no validation split" in text                           # headline falls back to last
    assert (tmp_path / "tables" / "last_p.md").is_file()
    assert not (tmp_path / "tables" / "selected_p.md").exists()
    assert list((tmp_path / "figures").iterdir()) == []            # nothing to draw: no empty figure


def test_empty_store(tmp_path):
    index = build_report(pd.DataFrame(columns=COLUMNS), {}, tmp_path)
    assert "No results" in index.read_text()


def test_nan_in_results_becomes_json_null(tmp_path):
    df, runs = make_store(methods=("ce",), settings=(("sym", 0.2, ""),), seeds=(0,), epochs=2, val_frac=0)
    rid = next(iter(runs))
    build_report(df, runs, tmp_path)
    doc = json.loads((tmp_path / "runs" / f"{rid}.json").read_text())
    assert doc["result"]["test/acc_at_best_val"] is None
