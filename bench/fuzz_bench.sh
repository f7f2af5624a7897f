#!/usr/bin/env bash
# Fuzz throughput: runs every libFuzzer target (scripts/fuzz, build-fuzz) alone for N seconds (default
# 20) with a fixed seed from its committed seeds and an empty working corpus, and writes a table of
# executions per second per target to build-fuzz/fuzz-bench.md (and stdout): per wall-clock second and
# per CPU second (the fair figure on a shared machine). A benchmark, not a test.
# Usage: bench/fuzz_bench.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
BULWARK_FUZZ_SEED=1 BULWARK_FUZZ_JOBS=1 BULWARK_FUZZ_CORPUS_DIR=$work scripts/fuzz "$seconds" "$@" >"$work/report" || true
{
  echo "| target | exec/s (wall) | exec per CPU-second | runs in ${seconds}s | CPU seconds | coverage (edges) | result |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  while read -r result target runs _ rate _ _ cov _ cpu per_cpu _; do
    if [ "$result" = ok ]; then
      echo "| $target | $rate | $per_cpu | $runs | ${cpu%s} | $cov | ok |"
    else
      echo "| ${target%:} | | | | | | crashed |"
    fi
  done <"$work/report"
} | tee build-fuzz/fuzz-bench.md
