"""Every exception of the harness derives from one of the two fault bases, which decide the exit
code (benchmark/errors.py); the CLI maps them and nothing else of ours."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import benchmark
from benchmark.errors import DatasetNotFound, RunFault, RunInterrupted, UsageError, UsageFault
from benchmark.cli import main


def _benchmark_modules():
    for info in pkgutil.walk_packages(benchmark.__path__, "benchmark."):
        if not info.name.endswith(".__main__"):  # a script, not a module to import
            yield importlib.import_module(info.name)


def test_every_exception_of_the_harness_is_a_usage_or_a_run_fault():
    found = []
    for mod in _benchmark_modules():
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__.startswith("benchmark"):
                found.append(obj)
                assert issubclass(obj, (UsageFault, RunFault)) or obj in (UsageFault, RunFault), obj
    assert UsageError in found and RunInterrupted in found


def test_a_missing_dataset_is_a_usage_fault_and_still_a_data_error():
    from benchmark.errors import DataError
    assert issubclass(DatasetNotFound, UsageFault) and issubclass(DatasetNotFound, DataError)


@pytest.mark.parametrize("fault, code", [(UsageError("bad"), 2), (DatasetNotFound("gone"), 2),
                                         (RunFault("broken"), 1), (RunInterrupted("r", "d", 3), 130)])
def test_main_maps_the_fault_bases_to_exit_codes(monkeypatch, capsys, fault, code):
    import benchmark.cli as cli

    def boom(_args):
        raise fault
    monkeypatch.setitem(cli.COMMANDS, "ls", boom)
    assert main(["ls"]) == code
    assert "error:" in capsys.readouterr().err
