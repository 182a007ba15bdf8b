#!/usr/bin/env bash
# The single-GPU check (README "Checking on one GPU"): first one HealthGPT-M3 stage-3 step against
# its plan (a minute or two), then the `small` preset's whole pipeline in the `gpu` profile
# (target: <= 8 minutes). One JSON per mode in $OUT (default results/):
#   gpu_check_m3_step.json, gpu_check_pipeline.json   (schema: healthgpt_lite/bench/gpu_result.py)
# Extra arguments go to both modes, e.g.  scripts/gpu_check.sh --peak-tflops 989
# Exit: 0 every target met; 3 both ran, a target was missed; 2 bad input (no GPU: one line says so);
# 1 a crash. Any error stops the script at once with the mode that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results}
mkdir -p "$OUT"
status=0
for mode in m3-step pipeline; do
  rc=0
  "$PY" -m healthgpt_lite gpu-check --mode "$mode" --out "$OUT/gpu_check_${mode//-/_}.json" "$@" || rc=$?
  if [ "$rc" -eq 3 ]; then
    status=3  # it ran and wrote its JSON, but missed a target: go on to the other mode
  elif [ "$rc" -ne 0 ]; then
    echo "gpu_check.sh: --mode $mode failed (exit $rc)" >&2
    exit "$rc"
  fi
done
[ "$status" -eq 0 ] && echo "gpu_check.sh: every target met" || echo "gpu_check.sh: some target missed (exit 3; see the JSON)" >&2
exit "$status"
