#!/usr/bin/env python
"""Entry point: `python runner.py COMMAND ...` (run, grid, noise, ls). No logic lives here."""
import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
