#!/usr/bin/env bash
# The CI step: optimize a model, then gate on the limits and on the last published run.
#   optimize-model.sh MODEL OUT_DIR [BASELINE_REPORT] [extra `optimize run` flags...]
# Exit codes: 0 good; 1 no variant meets the limits, or the pick regressed against the
# baseline; 2 bad input. OUT_DIR is complete either way, for the artifact upload.
set -uo pipefail
model="$1"; out="$2"; baseline="${3:-}"
shift $(( $# < 3 ? $# : 3 ))

optimize run "$model" --out "$out" "$@"
run_status=$?
if [ "$run_status" -ne 0 ]; then
    exit "$run_status"
fi
if [ -n "$baseline" ] && [ -f "$baseline" ]; then
    optimize compare "$baseline" "$out/report.json" | tee "$out/comparison.md"
    exit "${PIPESTATUS[0]}"
fi
