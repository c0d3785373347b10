"""benchmark/settings.py is the one place that reads and documents the NLB_* environment: the
README's table is generated from it, and no other file of the repository names a variable it
does not document."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from benchmark import settings
from benchmark.errors import UsageError
from tests.conftest import ROOT



def test_the_readme_holds_the_generated_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- begin: python -m benchmark.settings -->\n(.*?)\n<!-- end: python -m benchmark.settings -->",
                  readme, re.S)
    assert m, "README.md has lost its environment table markers"
    assert m.group(1) == settings.markdown_table(), ("README.md's environment table differs from "
                                                    "benchmark/settings.py: paste `python -m benchmark.settings`")


def _project_files() -> list[Path]:
    """The repository's code and documentation (no virtual environment, run store or cache)."""
    out = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("runs", "wandb", "__pycache__")]
        out += [Path(folder) / f for f in files if f.endswith((".py", ".md", ".sh", ".toml"))]
    return out


def test_every_nlb_variable_named_in_the_repository_is_documented():
    named: dict[str, str] = {}
    for path in _project_files():
        for name in re.findall(r"\bNLB_[A-Z0-9_]+", path.read_text(encoding="utf-8", errors="replace")):
            named.setdefault(name, str(path.relative_to(ROOT)))
    unknown = {n: f for n, f in named.items() if n not in settings.SETTINGS}
    assert not unknown, f"NLB_ variables not documented in benchmark/settings.py: {unknown}"


def test_only_settings_reads_the_nlb_environment():
    """Other modules read NLB_* through the functions of benchmark/settings.py, never os.environ."""
    readers = []
    for path in sorted((ROOT / "benchmark").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name != "settings.py" and re.search(r"os\.(environ|getenv)[^\n]*NLB_", text):
            readers.append(str(path.relative_to(ROOT)))
    assert not readers


def test_values_are_read_at_call_time_and_checked(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.CACHE_DIR, str(tmp_path))
    assert settings.cache_dir() == tmp_path
    monkeypatch.setenv(settings.MEMORY_BUDGET, "0.5")
    assert settings.memory_budget() == 500_000_000
    monkeypatch.setenv(settings.MEMORY_BUDGET, "lots")
    with pytest.raises(UsageError, match="not a number of GB"):
        settings.memory_budget()
    monkeypatch.setenv(settings.DECODE, "GPU")
    assert settings.decode() == "gpu"
    monkeypatch.setenv(settings.ALLOW_UNVERIFIED, "yes")
    assert not settings.allow_unverified()  # only "1" switches verification off
    monkeypatch.setenv(settings.HEARTBEAT_S, "3")
    assert settings.heartbeat_s() == 3
    monkeypatch.delenv(settings.GRACE_S, raising=False)
    assert settings.grace_s() == 60


def test_an_undocumented_name_is_refused():
    with pytest.raises(KeyError, match="not a documented setting"):
        settings._get("NLB_" + "TYPO")  # spelt apart: the scan above must not find it
