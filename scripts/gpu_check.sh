#!/usr/bin/env bash
# The GPU checks and the GPU rows of docs/BENCHMARKS.md, in one command (under ten minutes on one
# H100-class GPU): the tests marked `gpu` (every method on CUDA in fp32 and in bf16 + channels-last,
# the same run id giving the same numbers, resume equality, runs sharing the GPU through workers,
# strong views and nvJPEG decoding on the device), then `runner.py bench` on CIFAR-shaped data in
# fp32 and bf16. Prints one table. Without a CUDA device it says so in one line and exits 0.
# Usage: bash scripts/gpu_check.sh [OUT_DIR]   (OUT_DIR keeps the JSON figures; default: a temporary folder)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA device on this machine (torch.cuda.is_available() is false): nothing to check"
  exit 0
fi
out=${1:-$(mktemp -d)}
mkdir -p "$out"
export WANDB_MODE=disabled MPLBACKEND=Agg
t0=$(date +%s)

"$PY" -m pytest -q -m gpu tests/test_gpu.py tests/benchmark/test_streaming.py -p no:cacheprovider \
  --junitxml="$out/gpu_tests.xml" > "$out/gpu_tests.log" 2>&1
tests_rc=$?
bench=(runner.py bench --dataset synthetic_cifar10 --model preact_resnet18 --subset 0 --val-frac 0
       --epochs 3 --device cuda --no-loader --json)
"$PY" "${bench[@]}" --methods ce,coteaching,dividemix > "$out/bench_fp32.json" 2> "$out/bench_fp32.log"
"$PY" "${bench[@]}" --methods ce,coteaching,dividemix,disc,sed --strong --precision bf16 --channels-last \
  > "$out/bench_bf16.json" 2> "$out/bench_bf16.log"

"$PY" - "$out" "$tests_rc" "$(( $(date +%s) - t0 ))" <<'PY'
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
import torch
out, rc, secs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"GPU check on {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {secs} s; figures in {out}")
suite = ET.parse(out / "gpu_tests.xml").getroot()
s = suite if suite.tag == "testsuite" else suite.find("testsuite")
print(f"tests (-m gpu): {s.get('tests')} run, {s.get('failures')} failed, {s.get('errors')} errors, "
      f"{s.get('skipped')} skipped (pytest exit {rc})")
print(f"{'bench':<6} {'method':<12} {'s/epoch':>8} {'img/s':>9} {'GFLOP/epoch':>12} {'time/FLOPs vs CE':>17} {'peak MiB':>9}")
for name in ("fp32", "bf16"):
    try:
        rows = json.loads((out / f"bench_{name}.json").read_text())["methods"]
    except (OSError, ValueError, KeyError):
        print(f"{name:<6} (bench failed: see {out}/bench_{name}.log)")
        continue
    for r in rows:
        print(f"{name:<6} {r['method']:<12} {r['epoch_s_median']:>8.2f} {r['samples_per_s']:>9.0f} "
              f"{r['flops_per_epoch'] / 1e9:>12.1f} {r['time_over_flops']:>17.2f} {r['peak_mb']:>9.0f}")
sys.exit(1 if rc else 0)
PY
