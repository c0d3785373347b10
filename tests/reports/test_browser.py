"""The leaderboard page in a real headless Chromium (see tests/reports/browser.py for how errors
are collected over the DevTools pipe)."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from tests.reports.browser import find_chromium, render
from tests.reports.conftest import SITE_METHODS, XSS

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


@needs_chromium
def test_error_detection_works_on_a_broken_page(tmp_path):
    """Negative control: the checker must see each kind of problem it is meant to catch."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><title>bad</title><img src="missing.png">'
                    '<script>console.error("boom"); alert(2); undefinedFn();</script>')
    r = render(CHROMIUM, page, timeout=60)
    joined = "\n".join(r.errors)
    assert "ERR_FILE_NOT_FOUND" in joined
    assert "console.error: boom" in joined
    assert "javascript dialog" in joined
    assert "undefinedFn" in joined


@needs_chromium
def test_leaderboard_page_renders_cleanly(site, tmp_path):
    index, _, _ = site
    shot = tmp_path / "page.png"
    r = render(CHROMIUM, index, screenshot=shot, width=1280, height=1000, timeout=60)

    assert r.errors == [], r.errors                                    # no console error of any kind
    assert r.requests and all(u.startswith("file://") for u in r.requests), r.requests  # no network
    assert r.title == "Test <b>board</b>"
    assert r.scripts == 0                                               # the XSS name did not become a script
    assert XSS in r.text                                                # ... it is shown as text

    assert r.images
    for img in r.images:                                                # every image exists and loaded
        assert (index.parent / img["src"]).is_file(), img
        assert img["complete"] and img["naturalWidth"] > 0, img

    from html.parser import HTMLParser

    class Ranking(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.methods = False, []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "table" and "ranking" in (a.get("class") or ""):
                self.inside = True
            elif tag == "tr" and self.inside and "data-method" in a:
                self.methods.append(a["data-method"])

        def handle_endtag(self, tag):
            if tag == "table":
                self.inside = False

    p = Ranking()
    p.feed(r.dom)
    assert sorted(p.methods) == sorted(SITE_METHODS)

    img = mpimg.imread(shot)
    assert img.shape[:2] == (1000, 1280)
    assert float(np.var(img[..., :3])) > 0.01                          # not a blank page
