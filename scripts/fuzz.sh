#!/usr/bin/env bash
# Fuzzes everything that reads input from outside, for a long budget:
#  1. the libFuzzer driver of the forwarding loops, native/fuzz/forwarder-fuzz.cc (ASan+UBSan,
#     every output checked by an oracle), for --seconds N (default 600). Its corpus grows in
#     build/fuzz/corpus; a crash leaves build/fuzz/crash-* and fails the run.
#  2. the fast-check property tests (test/unit/**/*.property.test.ts: lease key and JSON, network
#     config, netlink decoders, subnet.env, the udp checks TypeScript vs C++, and those again on
#     the ASan addon), each property for --property-seconds M (default 20).
# The last lines are a summary per target: cases (runs), seconds, findings.
#   npm run fuzz -- --seconds 600 --property-seconds 20
#   --native-only / --properties-only run one half (test/unit/native/fuzz.test.ts runs a short native budget)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=600
property_seconds=20
native=1
properties=1
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --property-seconds) property_seconds=$2; shift 2 ;;
    --native-only) properties=0; shift ;;
    --properties-only) native=0; shift ;;
    *) echo "fuzz.sh: unknown argument $1 (use --seconds N, --property-seconds M, --native-only, --properties-only)" >&2; exit 2 ;;
  esac
done
rc=0
if ((native)); then
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
fi
if ((properties)); then
  [[ -d dist/test/unit ]] || { echo "fuzz.sh: no dist/ (run npm run build first)" >&2; exit 2; }
  mkdir -p build/fuzz
  plog=build/fuzz/properties-$$.log
  set +e
  WEFT_PROPERTY_SECONDS=$property_seconds WEFT_TEST_FILE_TIMEOUT_MS=$(( (property_seconds * 10 + 300) * 1000 )) \
    WEFT_TEST_FILTER='\.property\.test\.js$|packet-asan\.test\.js$' node scripts/run-tests.mjs dist/test/unit > "$plog" 2>&1
  prc=$?
  set -e
  echo "properties (fast-check, ${property_seconds} s each; log ${plog}):"
  grep -E "property .*: [0-9]+ runs in" "$plog" | sed -E 's/^[^[p]*(\[asan\] )?property /  \1/'
  failed=$(grep -cE "property .*FAILED" "$plog" || true)
  total=$(grep -cE "property .*: [0-9]+ runs in" "$plog" || true)
  runs=$(grep -oE ": [0-9]+ runs in" "$plog" | grep -oE "[0-9]+" | awk "{s+=\$1} END {print s+0}")
  echo "fuzz: properties ${total}, ${runs:-0} runs, exit ${prc}, findings ${failed}; $(tail -1 "$plog")"
  ((prc == 0)) || { grep -B2 -A25 "FAIL " "$plog" | head -80; rc=1; }
fi
exit "$rc"
