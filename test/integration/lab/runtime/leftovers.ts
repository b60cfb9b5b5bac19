// What a runtime lab must not change on the machine: its own network
// namespace (links, addresses, routes, iptables), the shared paths Docker and
// Podman write by default, and cgroups, processes and namespaces of the lab.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { findLabCgroups } from '../../../../lab/runtime/cgroups.js';
import { listNetns } from '../../../../lab/netns.js';

const SHARED_PATHS = ['/run/docker', '/run/containerd', '/etc/docker/key.json', '/var/lib/docker', '/var/lib/containers', '/var/lib/cni', '/run/libpod', '/run/containers', '/run/flannel', '/etc/cni/net.d/10-weft.conflist', '/opt/cni/bin/flannel'];

export interface MachineState { links: string; addrs: string; routes: string; iptables: string; paths: Record<string, boolean>; netns: string[]; mounts: string[] }

/** Mounts in the machine's own mount namespace that a runtime would make: container rootfs overlays, its state
 * directories, podman's netns files, anything under a lab's directory. */
function runtimeMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => {
    const f = l.split(' ');
    const type = f[f.indexOf('-') + 1] ?? '';
    return `${f[4]} ${type}`;
  }).filter((m) => /^\/(var\/lib\/(docker|containers|cni)|run\/(docker|containerd|containers|libpod|flannel)|run\/netns\/netns-|tmp\/weft-lab-)|^\S+ overlay$/.test(m));
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

export async function machineState(): Promise<MachineState> {
  return {
    links: run('ip', ['-o', 'link', 'show']).replace(/ +link\/\S+ \S+ brd \S+/g, '').split('\n').map((l) => l.replace(/^(\d+: \S+).*/, '$1')).join('\n'),
    addrs: run('ip', ['-o', 'addr', 'show']).replace(/\s+valid_lft.*$/gm, ''),
    routes: run('ip', ['route', 'show', 'table', 'all']),
    iptables: run('iptables', ['-S']) + run('iptables', ['-t', 'nat', '-S']),
    paths: Object.fromEntries(SHARED_PATHS.map((p) => [p, existsSync(p)])),
    netns: (await listNetns()).filter((n) => n.startsWith('netns-')),
    mounts: runtimeMounts(),
  };
}

/** The machine as before the lab, and nothing of lab `id` left: namespaces, cgroups, processes. */
export async function assertNothingLeft(before: MachineState, lab: { id: string; dir: string; cgroupPrefix: string }): Promise<void> {
  const after = await machineState();
  assert.equal(after.paths, before.paths, 'shared paths Docker/Podman would write by default');
  assert.is(after.links, before.links, 'links of the machine\'s own namespace');
  assert.is(after.addrs, before.addrs, 'addresses of the machine\'s own namespace');
  assert.is(after.routes, before.routes, 'routes of the machine\'s own namespace');
  assert.is(after.iptables, before.iptables, 'iptables of the machine\'s own namespace');
  assert.equal(after.mounts, before.mounts, 'mounts in the machine\'s own mount namespace (overlays, runtime state, netns files, the lab\'s directory)');
  assert.equal(after.netns, before.netns, 'network namespaces made by podman (netns-*) in the machine\'s /run/netns');
  assert.equal((await listNetns()).filter((n) => n.startsWith(`${lab.id}-`)), [], 'lab namespaces');
  assert.equal(findLabCgroups(lab.cgroupPrefix), [], 'cgroups of the lab');
  const procs = spawnSync('pgrep', ['-af', lab.dir], { encoding: 'utf8' }).stdout.trim();
  assert.is(procs, '', 'processes of the lab (dockerd, containerd, conmon, shims)');
  assert.not.ok(existsSync(lab.dir), `${lab.dir} removed`);
  if (existsSync('/run/netns')) assert.equal(readdirSync('/run/netns').filter((n) => n.startsWith(`${lab.id}-`)), []);
}

/** uvu drops an error thrown in a before hook without a word (the suite shows 0 passed): print it first. */
export function loudly(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (e) {
      process.stderr.write(`\nset-up failed: ${(e as Error).stack ?? e}\n`);
      throw e;
    }
  };
}

/** The reason a runtime suite does not run here, printed (uvu counts a skipped test but never names it). */
export function skipReason(runtime: string, missing: ReadonlyArray<{ what: string; how: string }>): string {
  const reason = `${runtime} tests skipped, this machine lacks: ${missing.map((m) => `${m.what} (${m.how})`).join('; ')}`;
  process.stdout.write(`\n${reason}\n`);
  return reason;
}
