"""benchmark/cli/parser.py: every flag of every command has help, the help of a run-config flag is
the field's own docstring, the flags that take a registry name say how to list the names, and
``runner.py --help`` names every command."""
from __future__ import annotations

import argparse
import ast
import re

import pytest

from benchmark.cli import COMMANDS, build_parser
from benchmark.config import RunConfig
from benchmark.config.run import field_docs
from tests.conftest import ROOT


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    ap = build_parser()
    action = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_top_help_names_every_command():
    text = build_parser().format_help()
    assert set(_subparsers()) == set(COMMANDS)
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", text, re.M), name
    assert "runner.py ls --datasets" in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_has_help(command):
    sub = _subparsers()[command]
    silent = [a.option_strings or a.dest for a in sub._actions
              if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not silent, f"{command}: flags without help: {silent}"
    sub.format_help()  # a help text argparse cannot format (a stray %) fails here


def test_registry_flags_say_how_to_list_their_names():
    run = _subparsers()["run"]
    helps = {a.dest: a.help for a in run._actions}
    for dest, listing in (("dataset", "--datasets"), ("model", "--models"), ("method", "--methods")):
        assert f"runner.py ls {listing}" in helps[dest]


def test_run_config_flags_reuse_the_fields_docstrings():
    helps = {a.dest: a.help for a in _subparsers()["run"]._actions}
    for dest in ("epochs", "seed", "subset", "device", "data_dir"):
        first = field_docs(RunConfig)[dest].split("\n\n")[0].split()
        assert helps[dest].startswith(" ".join(first).replace("``", "")), dest


def test_one_statement_per_line():
    """No add_argument calls (or other statements) joined on one line with ';'."""
    for path in sorted((ROOT / "benchmark" / "cli").glob("*.py")):
        starts = [n.lineno for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.stmt)]
        joined = sorted({ln for ln in starts if starts.count(ln) > 1})
        assert not joined, f"{path.name}: several statements on lines {joined}"
