// A lab host's own mount namespace for its container runtime. Docker and
// Podman write to fixed paths (/run/docker, /run/containerd/s, /run/netns,
// /var/lib/cni, /run/libpod...); every lab host gets a holder process, in the
// host's network namespace and a new private mount namespace with fresh
// tmpfs on /run and /var/lib, and the runtime runs (and is driven) inside
// it. What it writes there vanishes with the namespace; everything else is
// given paths under the lab's directory. Entered with nsenter, not
// `ip netns exec`, which would remount /sys and hide the cgroup mounts.
import type { Lab, LabHost, TrackedProcess } from '../lab.js';
import { waitFor } from '../agent.js';

export interface HostMountNs {
  readonly host: LabHost;
  readonly holder: TrackedProcess;
  /** The holder's pid: `nsenter --target PID --mount --net` enters the host as its runtime sees it. */
  readonly pid: number;
  /** argv that runs `cmd args` inside: ['nsenter', '--target=PID', '--mount', '--net', '--', cmd, ...args]. */
  argv(cmd: string, args: readonly string[]): string[];
}

const SCRIPT = [
  'set -e',
  'mount -t tmpfs -o mode=755,size=64m weft-run /run',
  'mount -t tmpfs -o mode=755,size=64m weft-var-lib /var/lib',
  'mkdir -p /run/netns',
  'echo weft-mount-ns-ready',
  'exec sleep 2147483647',
].join('\n');

export async function startMountNs(lab: Lab, host: LabHost): Promise<HostMountNs> {
  const holder = lab.spawnIn(host.ns, 'unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', SCRIPT], { nsenter: {}, logName: `${host.name}-mount-ns` });
  await waitFor(`the mount namespace of ${host.name}`, 10_000, () => {
    if (holder.exitCode !== null) throw new Error(`the mount namespace holder of ${host.name} exited: ${lab.readLog(holder)}`);
    return lab.readLog(holder).includes('weft-mount-ns-ready');
  });
  const pid = holder.pid!;
  return {
    host,
    holder,
    pid,
    argv: (cmd, args) => ['nsenter', `--target=${pid}`, '--mount', '--net', '--', cmd, ...args],
  };
}
