#!/usr/bin/env bash
# The main job: a weft cluster in network namespaces on this machine (etcd,
# hosts running weftd, containers through CNI, or Docker or Podman with
# --runtime), a ping matrix, then teardown. Sets itself up first (with
# --runtime docker|podman: the runtimes too). Flags go to `weft lab`
# (see: weft lab --help).
set -euo pipefail
cd "$(dirname "$0")/.."
setup=()
prev=
for a in "$@"; do
  case "$prev/$a" in
    --runtime/docker | --runtime/podman | */--runtime=docker | */--runtime=podman) setup=(--runtimes) ;;
  esac
  prev=$a
done
bash scripts/setup.sh "${setup[@]}"
exec node dist/cmd/weft.js lab "$@"
