#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into
# build-asan/weft_native.node (the sources are binding.gyp's), only when a source
# is newer than it. Node itself is not instrumented, so a process that loads it
# needs the matching libasan preloaded: scripts/asan-env.sh prints that environment,
# and WEFT_NATIVE_ASAN=1 makes the lab start weftd with it (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-asan/weft_native.node
mapfile -t sources < <(node -e 'for (const s of JSON.parse(require("fs").readFileSync("binding.gyp", "utf8")).targets[0].sources) console.log(s)')
if [[ -f $out ]] && [[ -z $(find native binding.gyp -newer "$out" -print -quit) ]]; then exit 0; fi
mkdir -p build-asan/obj
napi=$(node -p "require('node-addon-api').include_dir")
nodeinc=$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")
flags=(-std=c++17 -fPIC -fexceptions -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  -Wall -Wextra -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_GYP_MODULE_NAME=weft_native -I"$napi" -I"$nodeinc")
echo "weft: building the ASan addon ($out)" >&2
objs=()
pids=()
for s in "${sources[@]}"; do
  o=build-asan/obj/$(basename "${s%.cc}").o
  objs+=("$o")
  g++ "${flags[@]}" -c "$s" -o "$o" &
  pids+=($!)
  if (( ${#pids[@]} >= 2 )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
g++ -shared -fsanitize=address,undefined -o "$out.tmp" "${objs[@]}"
mv "$out.tmp" "$out"
