#!/usr/bin/env bash
# Second command of the README (and what CI runs): set up with the test extras, run the tests.
# Extra arguments go to pytest, e.g. bash scripts/test.sh tests/noise -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export MPLBACKEND=Agg WANDB_MODE=offline WANDB_SILENT=true
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [[ $rc == 5 ]]; then
  echo "test.sh: pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit $rc
