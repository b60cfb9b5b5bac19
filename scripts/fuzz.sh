#!/usr/bin/env bash
# Builds (when stale) and runs the libFuzzer driver of the forwarding loops,
# native/fuzz/forwarder-fuzz.cc, for --seconds N (default 600). The corpus it
# grows lives in build/fuzz/corpus; a crash leaves build/fuzz/crash-* and exits
# non-zero. The last line is a summary: cases, seconds, findings.
#   npm run fuzz -- --seconds 600     (test/unit/native-fuzz.test.ts runs a short budget)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=600
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    *) echo "fuzz.sh: unknown argument $1 (use --seconds N)" >&2; exit 2 ;;
  esac
done
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (apt-get install clang libclang-rt-14-dev, or bash scripts/setup.sh)" >&2; exit 2; }
make -s -j2 -f native/fuzz/Makefile
mkdir -p build/fuzz/corpus
# Inputs that once found a bug replay first, every run.
build/fuzz/forwarder-fuzz -runs=0 native/fuzz/regressions/* >/dev/null 2>&1 || { echo "fuzz: a regression input fails again:"; build/fuzz/forwarder-fuzz native/fuzz/regressions/* 2>&1 | tail -20; exit 1; }
log=build/fuzz/run-$$.log  # one per run: runs may overlap (CI and a long one by hand)
set +e
build/fuzz/forwarder-fuzz -max_total_time="$seconds" -max_len=4096 -len_control=0 -timeout=20 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix=build/fuzz/ build/fuzz/corpus 2>&1 | tee "$log" | grep -E "^(#[0-9]+.*(pulse|DONE|NEW)|==|SUMMARY|forwarder-fuzz|.*runtime error|stat::)" | tail -n 40
rc=${PIPESTATUS[0]}
set -e
cases=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
shopt -s nullglob
artifacts=(build/fuzz/crash-* build/fuzz/leak-* build/fuzz/timeout-* build/fuzz/oom-*)
findings=${#artifacts[@]}
echo "fuzz: ${cases:-0} cases in ${seconds} s, exit ${rc}, findings ${findings} (artifacts in build/fuzz/)"
exit "$rc"
