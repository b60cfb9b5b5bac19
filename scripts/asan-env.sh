#!/usr/bin/env bash
# Prints (as KEY=value lines) the environment that runs node with the ASan addon:
# the sanitizer runtimes preloaded (node is not instrumented), the addon's path, and
# options that stop at the first report. Used by lab/agent.ts for WEFT_NATIVE_ASAN=1.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "LD_PRELOAD=$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
echo "WEFT_NATIVE_PATH=$PWD/build-asan/weft_native.node"
echo "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86"
echo "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=87"
