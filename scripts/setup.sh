#!/usr/bin/env bash
# Idempotent set-up for a Debian machine: the system packages weft's lab and
# tests use, the npm dependencies and the build (native addon + TypeScript).
# Safe to run again; it only does what is missing or out of date.
#   --wireguard   also the optional WireGuard test tools (CI passes it): Debian's
#                 wireguard-go (the userspace provider), wireguard-tools (wg, the
#                 tests' oracle and hand-built interop node) and tcpdump (underlay captures)
#   --runtimes    also the container runtimes for `weft lab --runtime docker|podman`
#                 and their tests (CI passes it): docker.io, podman, busybox-static
#                 (the image). Their system services are not started (the lab runs a
#                 daemon per lab host in its namespaces; nothing runs in the machine's own).
set -euo pipefail
cd "$(dirname "$0")/.."

wireguard=0
runtimes=0
for a in "$@"; do
  case $a in
    --wireguard) wireguard=1 ;;
    --runtimes) runtimes=1 ;;
    *) echo "weft setup: unknown option $a (known: --wireguard, --runtimes)" >&2; exit 2 ;;
  esac
done

# clang + libclang-rt-14-dev: libFuzzer for the fuzz driver (scripts/fuzz.sh); g++'s libasan: the ASan addon.
need_pkgs=(etcd-server etcd-client iproute2 iptables iperf3 iputils-ping containernetworking-plugins openssl python3 make g++ systemd clang libclang-rt-14-dev)
# --wireguard, without recommends: wireguard-tools recommends a kernel image.
wg_pkgs=()
((wireguard)) && wg_pkgs=(wireguard-go wireguard-tools tcpdump)
missing=()
wg_missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for p in "${wg_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || wg_missing+=("$p")
done
if ((runtimes)); then
  for p in docker.io podman busybox-static; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]} + ${#wg_missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "weft setup: missing Debian packages: ${missing[*]} ${wg_missing[*]}; run as root or: apt-get install ${missing[*]} ${wg_missing[*]}" >&2
    exit 1
  fi
  echo "weft setup: installing ${missing[*]} ${wg_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Package scripts must not start dockerd or containerd in the machine's own namespace
  # (docker0, iptables): a policy-rc.d that says no, unless the machine has one already.
  own_policy=false
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    own_policy=true
    printf '#!/bin/sh\n# weft setup: no service starts while packages install\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  if ((${#missing[@]})); then apt-get install -y -qq "${missing[@]}" >/dev/null; fi
  if ((${#wg_missing[@]})); then apt-get install -y -qq --no-install-recommends "${wg_missing[@]}" >/dev/null; fi
  if $own_policy; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  if [[ " ${missing[*]} " == *" docker.io "* ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable -q docker.service docker.socket containerd.service 2>/dev/null || true
    echo "weft setup: docker.io installed for the lab; its system service stays off (to use Docker on this machine: systemctl enable --now docker)"
  fi
fi

if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "weft setup: Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.weft-lock-stamp
if [[ ! -f $stamp ]] || ! cmp -s package-lock.json "$stamp"; then
  echo "weft setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
elif [[ -f build/Makefile ]]; then
  make -s -C build BUILDTYPE=Release -j2  # the addon, when a native source changed
else
  npm run --silent install
fi
bash scripts/build-asan.sh  # the ASan addon (WEFT_NATIVE_ASAN=1), when stale
npm run --silent build
