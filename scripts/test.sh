#!/usr/bin/env bash
# Runs all of weft's tests: unit tests always, integration tests (real etcd,
# network namespaces) when running as root. Sets itself up first; its
# options go to scripts/setup.sh (--wireguard: the WireGuard test tools too;
# --runtimes: docker.io, podman and busybox-static, so the Docker and Podman
# tests run instead of being skipped; CI passes both).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"
dirs=(dist/test/unit)
if [[ $(id -u) -eq 0 ]]; then
  dirs+=(dist/test/integration)
else
  echo "weft test: not root, so only unit tests run (integration tests need network namespaces)" >&2
fi
exec node scripts/run-tests.mjs "${dirs[@]}"
