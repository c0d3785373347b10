#!/usr/bin/env bash
# First command of the README: set up, then run the `quick` preset (about 7 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python runner.py grid quick "$@"
