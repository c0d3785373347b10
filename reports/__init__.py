"""Reports: pure functions from the long results frame to statistics, tables, figures and a site.

Nothing here reads the store or the test set: callers pass ``df`` (the long frame) and ``runs``
(run_id -> {"config", "result", "meta"}).
"""
from reports.figures import method_palette
from reports.published import PUBLISHED, SOURCES, lookup as published_lookup
from reports.site import build_report
from reports.stats import (aggregates, cell_summary, headline_metric, iqm, leaderboard,
                           paired_differences, ranks, t_interval)
from reports.tables import (ACCURACIES, paper_table, protocol_info, to_csv, to_html, to_latex,
                            to_markdown)

__all__ = [
    "ACCURACIES", "PUBLISHED", "SOURCES", "aggregates", "build_report", "cell_summary",
    "headline_metric", "iqm", "leaderboard", "method_palette", "paired_differences",
    "paper_table", "protocol_info", "published_lookup", "ranks", "to_csv", "to_html", "to_latex",
    "to_markdown", "t_interval",
]
