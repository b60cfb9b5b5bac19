#!/usr/bin/env bash
# The main job: a weft cluster in network namespaces on this machine (etcd,
# hosts running weftd, containers through CNI), a ping matrix, then teardown.
# Sets itself up first. Flags go to `weft lab` (see: weft lab --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/cmd/weft.js lab "$@"
