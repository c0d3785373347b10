"""The command line. runner.py calls :func:`main`; every command is a thin layer over the harness
(commands.py), its flags and their help are declared in parser.py, what it prints for a person in
output.py.

Exit codes: 0 success, 1 a run fault (missing data, a diverged run), 2 a usage fault, 130
interrupted; the two fault bases of benchmark/errors.py decide which. Progress goes to stderr;
``--json`` prints exactly one JSON object on stdout, an error included.
"""
from __future__ import annotations

import json
import os
import sys

from benchmark import settings
from benchmark.cli.commands import COMMANDS
from benchmark.cli.parser import build_parser
from benchmark.errors import INTERRUPT_EXIT, RUN_EXIT, USAGE_EXIT, RunFault, RunInterrupted, UsageFault
from benchmark.store import scrub, scrub_argv

__all__ = ["main", "build_parser", "COMMANDS"]

INTERRUPTED = ("interrupted: finished runs are kept and an interrupted run resumes from its last "
               "checkpoint; run the same command again to go on")


def _fail(message: str, code: int, as_json: bool) -> int:
    """End a command with one message: on stderr (on a line of its own, after any progress bar)
    and, for --json, as one JSON object on stdout. The message is one line."""
    message = " ".join(str(message).split())
    try:
        from tqdm import tqdm  # only to close a progress bar still drawn
        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    print(f"error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "exit_code": code}))
    return code


def main(argv: list[str] | None = None) -> int:
    """Run one command; map the suite's two fault bases (benchmark/errors.py) to exit codes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in argv
    scrub_argv()  # W&B records the program's arguments: never a password from --storage
    try:
        args = build_parser().parse_args(argv)
        if hasattr(args, "plugin"):  # the commands that train or read data; never report, ls, merge
            from benchmark import plugins  # imports torch and every registry: paid by these commands only
            plugins.load_all(args.plugin)
        return COMMANDS[args.command](args)
    except UsageFault as e:
        return _fail(scrub(str(e)), USAGE_EXIT, as_json)
    except RunInterrupted as e:
        if settings.is_child():  # a worker of a local study: its parent says it once
            return INTERRUPT_EXIT
        return _fail(str(e), INTERRUPT_EXIT, as_json)
    except RunFault as e:
        return _fail(scrub(str(e)), RUN_EXIT, as_json)
    except KeyboardInterrupt:
        if settings.is_child():  # a worker of a local study: its parent says it once
            return INTERRUPT_EXIT
        return _fail(INTERRUPTED, INTERRUPT_EXIT, as_json)
    except BrokenPipeError:
        # the reader of our output went away (runner.py ls | head): nothing to say to it; point
        # stdout at /dev/null so that the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return RUN_EXIT
    except OSError as e:  # disk full, permissions, a path that is not what it should be
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return _fail(f"{e.strerror or e}{where}", RUN_EXIT, as_json)
