#!/usr/bin/env bash
# Set up everything the suite needs on this machine: system packages where apt is available,
# a virtual environment in .venv with the pinned requirements. Safe to run again (fast when done).
# Usage: bash scripts/setup.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(dataset-fashion-mnist)
if [[ "${1:-}" == "--test" ]]; then
  apt_pkgs+=(chromium postgresql slurm-wlm munge)  # slurm-wlm, munge: the single-node Slurm tests
fi

missing=()
if command -v dpkg >/dev/null 2>&1; then
  for p in "${apt_pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
fi
if (( ${#missing[@]} )); then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    echo "setup: apt-get install ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: cannot apt-get install ${missing[*]} (not root or no apt)." >&2
    echo "       Fashion-MNIST will be downloaded by torchvision on first use instead;" >&2
    echo "       browser, PostgreSQL and Slurm tests are skipped without chromium/postgresql/slurm-wlm." >&2
  fi
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
reqs=(requirements.txt)
if [[ "${1:-}" == "--test" ]]; then
  reqs+=(requirements-test.txt)
fi
stamp=.venv/.requirements.sha256
want=$(cat "${reqs[@]}" | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: installing requirements (torch is large: a few minutes the first time)" >&2
  .venv/bin/pip install -q --upgrade pip >/dev/null
  for r in "${reqs[@]}"; do
    .venv/bin/pip install -q -r "$r"
  done
  echo "$want" > "$stamp"
fi
