from __future__ import annotations

import pytest

from tests.reports.synth import make_store

XSS = "<script>alert(1)</script>"
SITE_METHODS = ("ce", "gce", "gce+obd", "coteaching", XSS)


@pytest.fixture(scope="session")
def store():
    """A small but complete store: 5 methods (one named like an XSS payload), 3 settings, 2 seeds."""
    return make_store(methods=SITE_METHODS,
                      settings=(("sym", 0.2, ""), ("sym", 0.5, ""), ("human", None, "worst")),
                      seeds=(0, 1), epochs=4)


@pytest.fixture(scope="session")
def site(store, tmp_path_factory):
    """The leaderboard site built once for the session: (index.html path, df, runs)."""
    from reports import build_report
    df, runs = store
    out = tmp_path_factory.mktemp("site")
    index = build_report(df, runs, out, title="Test <b>board</b>", env={"ci": "yes"})
    return index, df, runs
