#!/usr/bin/env python
"""Entry point: `python runner.py COMMAND ...`; `python runner.py --help` lists the commands and
`python runner.py COMMAND --help` their flags. No logic lives here."""
import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
