// Running weftd inside lab hosts, and reading back what it did.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { Prefix } from '../lib/ip.js';
import { WEFTD_NODE_FLAGS } from '../lib/node-flags.js';
import { execFileSync } from 'node:child_process';
import type { Lab, LabContainer, LabHost, TrackedProcess } from './lab.js';

export const WEFTD = fileURLToPath(new URL('../cmd/weftd.js', import.meta.url));
/** lab/fake-systemd.js: systemd's notify socket and fd store, for tests. */
export const FAKE_SYSTEMD = fileURLToPath(new URL('./fake-systemd.js', import.meta.url));
/** The weft CLI (status, docker-opts, install-cni, ...), which the lab runs as an operator would. */
export const WEFT = fileURLToPath(new URL('../cmd/weft.js', import.meta.url));
export const PREFIX = '/coreos.com/network';

export interface LabAgent {
  readonly host: LabHost;
  proc: TrackedProcess;
  readonly subnetFile: string;
  readonly args: readonly string[];
}

export async function putNetworkConfig(lab: Lab, config: unknown, prefix = PREFIX): Promise<void> {
  const text = typeof config === 'string' ? config : JSON.stringify(config);
  await lab.etcd!.client().put(`${prefix}/config`).value(text);
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let asanEnv: NodeJS.ProcessEnv | undefined;

/**
 * With WEFT_NATIVE_ASAN=1: the environment that makes weftd load the ASan+UBSan build of the
 * addon (scripts/build-asan.sh builds it when stale; scripts/asan-env.sh says how to preload it).
 * A sanitizer report ends weftd with exit code 86 (ASan) or 87 (UBSan) and is in its log.
 */
export function agentEnv(): NodeJS.ProcessEnv | undefined {
  return process.env.WEFT_NATIVE_ASAN === '1' ? nativeAsanEnv() : undefined;
}

/** The environment of a node process that loads the ASan+UBSan addon (built first when stale). */
export function nativeAsanEnv(): NodeJS.ProcessEnv {
  if (!asanEnv) {
    execFileSync('bash', [join(ROOT, 'scripts/build-asan.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const lines = execFileSync('bash', [join(ROOT, 'scripts/asan-env.sh')], { encoding: 'utf8' }).trim().split('\n');
    asanEnv = { ...process.env, ...Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) };
  }
  return asanEnv;
}

/** A sanitizer report in a log, or undefined. */
export function sanitizerReport(log: string): string | undefined {
  const i = log.search(/ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer/);
  return i < 0 ? undefined : log.slice(i, i + 3000);
}

/** The subnet file weftd writes on a lab host (--subnet-file). */
export const hostSubnetFile = (host: LabHost): string => join(host.dir, 'subnet.env');

/**
 * Starts weftd in a host with the lab's etcd, a per-host subnet file and state
 * directory, debug logs (in <dir>/logs/<logName>.log, default weftd-<host>,
 * weftd-<host>-2 ... for a later weftd on the host) and the host's own /run (what
 * it or wireguard-go put there stays the host's). WEFT_PROF=<dir> in the
 * environment: each weftd writes a CPU profile there when it exits (node --cpu-prof);
 * WEFT_HEAP_PROF=<dir>: a sampled allocation profile (node --heap-prof).
 * WEFT_NODE_FLAGS="<flags>": more node/V8 flags for each weftd (e.g. --trace-gc,
 * whose lines go to the weftd's log).
 */
export function startAgent(lab: Lab, host: LabHost, extra: readonly string[] = [], logName?: string, opts: { fakeSystemd?: string } = {}): LabAgent {
  const subnetFile = hostSubnetFile(host);
  const args = [
    WEFTD,
    '--etcd-endpoints', lab.etcd!.labEndpoints.join(','),
    '--subnet-file', subnetFile,
    ...(extra.includes('--state-dir') ? [] : ['--state-dir', join(host.dir, 'state')]),
    ...(extra.includes('--log-level') ? [] : ['--log-level', 'debug']),
    ...extra,
  ];
  const env = agentEnv();
  // A later weftd on the host (started after the first stopped) logs to a file of its own.
  if (logName === undefined) {
    logName = `weftd-${host.name}`;
    for (let n = 2; existsSync(join(lab.dir, 'logs', `${logName}.log`)); n++) logName = `weftd-${host.name}-${n}`;
  }
  // Under lab/fake-systemd.js (notify socket opts.fakeSystemd): weftd's log and the fake's events go to the same file.
  const argv = opts.fakeSystemd ? [FAKE_SYSTEMD, opts.fakeSystemd, process.execPath, ...nodeArgs(), ...args] : [...nodeArgs(), ...args];
  const proc = lab.spawnIn(host.ns, process.execPath, argv, { logName, runDir: host.runDir, ...(env ? { env } : {}) });
  return { host, proc, subnetFile, args };
}

function nodeArgs(): string[] {
  const extra = (process.env.WEFT_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  return [...WEFTD_NODE_FLAGS, '--enable-source-maps', ...extra, ...(process.env.WEFT_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.WEFT_PROF] : []), ...(process.env.WEFT_HEAP_PROF ? ['--heap-prof', '--heap-prof-dir', process.env.WEFT_HEAP_PROF] : [])];
}

/** Pids of the udp backend's fd holders (argv[0] "weft-fd-holder ...") in a host's network namespace. */
export async function fdHolderPids(lab: Lab, host: LabHost): Promise<number[]> {
  const pids = (await lab.execIn(host.ns, 'ip', ['netns', 'pids', host.ns])).stdout.split('\n').filter(Boolean);
  return pids.filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('weft-fd-holder ');
    } catch {
      return false;  // gone meanwhile
    }
  }).map(Number);
}

let restarts = 0;

/** Starts the agent again with the same flags; its log goes to a new file so old "ready" lines do not count. */
export async function restartAgent(lab: Lab, a: LabAgent): Promise<void> {
  const env = agentEnv();
  a.proc = lab.spawnIn(a.host.ns, process.execPath, [...nodeArgs(), ...a.args], { logName: `weftd-${a.host.name}-restart${++restarts}`, runDir: a.host.runDir, ...(env ? { env } : {}) });
}

/** Polls `check` every 50 ms until it returns true; returns the milliseconds it took. */
export async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const start = Date.now();
  let lastErr: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      if (await check()) return Date.now() - start;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

export function logRecords(lab: Lab, a: LabAgent): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of lab.readLog(a.proc).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* partial line */
    }
  }
  return out;
}

/** SIGUSR1 -> the forwarder counters of the next "stats" log line the agent writes. */
export async function forwarderStats(lab: Lab, a: LabAgent, timeoutMs = 5000): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const count = () => logRecords(lab, a).filter((r) => r.msg === 'stats').length;
  const before = count();
  process.kill(a.proc.pid!, 'SIGUSR1');
  await waitFor(`a stats line from ${a.host.name}`, timeoutMs, () => count() > before);
  return logRecords(lab, a).filter((r) => r.msg === 'stats').at(-1)!.forwarder;
}

export interface AgentReady {
  subnet: string; // 10.244.3.0/24
  gateway: string; // 10.244.3.1
  mtu: number;
  /** Dual stack (FLANNEL_IPV6_SUBNET): fd00:10:244:7::/64 and fd00:10:244:7::1. */
  ipv6?: { subnet: string; gateway: string };
}

/** Waits for the agent's "ready" log line (so its --log-level must be info or debug) and returns what its subnet file says. */
export async function waitReady(lab: Lab, a: LabAgent, timeoutMs = 20_000): Promise<AgentReady> {
  await waitFor(`weftd on ${a.host.name} to be ready`, timeoutMs, () => {
    if (a.proc.exitCode !== null || a.proc.signalCode !== null) {
      throw new Error(`weftd on ${a.host.name} exited (${a.proc.exitCode ?? a.proc.signalCode}):\n${lab.readLog(a.proc).slice(-3000)}`);
    }
    return logRecords(lab, a).some((r) => r.msg === 'ready');
  }).catch((e) => {
    throw new Error(`${(e as Error).message}\n--- log of ${a.host.name}:\n${lab.readLog(a.proc).slice(-3000)}`);
  });
  return readSubnetEnv(a.subnetFile);
}

export interface StartedAgent {
  readonly host: LabHost;
  readonly agent: LabAgent;
  readonly ready: AgentReady;
}

/**
 * Starts weftd on every host of the lab at once (argsFor adds per-host flags),
 * then waits for each to be ready, in host order; onReady counts them.
 */
export async function startAgents(
  lab: Lab,
  argsFor: (h: LabHost) => readonly string[] = () => [],
  onReady?: (readyCount: number) => void,
): Promise<StartedAgent[]> {
  const agents = lab.hosts.map((h) => startAgent(lab, h, argsFor(h)));
  const out: StartedAgent[] = [];
  for (const agent of agents) {
    out.push({ host: agent.host, agent, ready: await waitReady(lab, agent) });
    onReady?.(out.length);
  }
  return out;
}

/** startAgents, then `perHost` containers on each host's bridge, in host order. */
export async function startCluster(lab: Lab, o: { perHost?: number; argsFor?: (h: LabHost) => readonly string[] } = {}): Promise<{ agents: StartedAgent[]; containers: LabContainer[] }> {
  const agents = await startAgents(lab, o.argsFor);
  const containers: LabContainer[] = [];
  for (const u of agents) for (let j = 0; j < (o.perHost ?? 1); j++) containers.push(await attachContainer(lab, u.host, u.ready));
  return { agents, containers };
}

/** Attaches a new container to weftd's bridge on `host`, with the subnet, gateway and MTU the agent leased. */
export function attachContainer(lab: Lab, host: LabHost, ready: AgentReady, bridge = 'weft0'): Promise<LabContainer> {
  return lab.addContainer(host, { bridge, subnet: ready.subnet, gateway: ready.gateway, mtu: ready.mtu, ...(ready.ipv6 ? { ipv6: ready.ipv6 } : {}) });
}

export function readSubnetEnv(path: string): AgentReady {
  const env = new Map(
    readFileSync(path, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  const sub = env.get('FLANNEL_SUBNET')!; // 10.244.3.1/24
  const [gw, len] = sub.split('/');
  const sub6 = env.get('FLANNEL_IPV6_SUBNET'); // fd00:10:244:7::1/64
  const [gw6, len6] = sub6 ? sub6.split('/') : [];
  return {
    subnet: Prefix.containing(gw!, Number(len)).toString(), gateway: gw!, mtu: Number(env.get('FLANNEL_MTU')),
    ...(gw6 ? { ipv6: { subnet: Prefix.containing(gw6, Number(len6)).toString(), gateway: gw6 } } : {}),
  };
}

/** `weft status --json` run inside the agent's host, with its etcd and subnet file; the parsed report and the exit code. */
export async function weftStatus(lab: Lab, a: LabAgent, extra: readonly string[] = []): Promise<{ code: number | null; status: any; text: string }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const args = [WEFT, 'status', '--timeout-ms', '500', '--etcd-endpoints', lab.etcd!.labEndpoints.join(','), '--subnet-file', a.subnetFile, ...extra];
  // In the host's own /run, where its wireguard-go sockets are.
  const r = await lab.execIn(a.host.ns, process.execPath, [...args, '--json'], { timeoutMs: 20_000, runDir: a.host.runDir });
  if (!r.stdout.trim().startsWith('{')) throw new Error(`weft status on ${a.host.name} exited ${r.code}: ${r.stderr}`);
  const text = await lab.execIn(a.host.ns, process.execPath, args, { timeoutMs: 20_000, runDir: a.host.runDir });
  return { code: r.code, status: JSON.parse(r.stdout), text: text.stdout };
}

/** A route as iproute2 lists it, a route through a nexthop object (nhid) with the object's gateway, device and onlink. */
export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  flags: string[];
  protocol?: string;
  nhid?: number;
}

/**
 * `ip -j [-4|-6] route show [args]`, with each route through a nexthop object
 * resolved by `ip -j nexthop show` (iproute2 as the oracle; it must not
 * depend on net.ipv4.nexthop_compat_mode, which adds the object's gateway to
 * the route only when set). Filter by device on the result, not with `dev`:
 * iproute2 filters by the route's RTA_OIF, which such a route lacks.
 */
export async function kernelRoutes(lab: Lab, ns: string, args: readonly string[] = [], family: 4 | 6 = 4): Promise<KernelRoute[]> {
  const rs = (await lab.ipJson(ns, [`-${family}`, 'route', 'show', ...args])) as Array<{ dst: string; gateway?: string; dev?: string; flags?: string[]; protocol?: string; nhid?: number }>;
  const objects = new Map<number, { gateway?: string; dev?: string; flags?: string[] }>();
  if (rs.some((r) => r.nhid !== undefined)) {
    for (const n of (await lab.ipJson(ns, ['nexthop', 'show'])) as Array<{ id: number; gateway?: string; dev?: string; flags?: string[] }>) objects.set(n.id, n);
  }
  return rs.map((r) => {
    const n = r.nhid !== undefined ? objects.get(r.nhid) : undefined;
    const flags = (n ? n.flags : r.flags) ?? [];
    const gateway = n ? n.gateway : r.gateway;
    const dev = n ? n.dev : r.dev;
    return { dst: r.dst, flags, ...(gateway ? { gateway } : {}), ...(dev ? { dev } : {}), ...(r.protocol ? { protocol: r.protocol } : {}), ...(r.nhid !== undefined ? { nhid: r.nhid } : {}) };
  });
}

/** Routes of weft's protocol in a namespace, as `<dst> via <gw> dev <dev>[ onlink]` (iproute2 as the oracle; through nexthop objects or not). */
export async function weftRoutes(lab: Lab, ns: string, protocol = 87): Promise<string[]> {
  const rs = await kernelRoutes(lab, ns, ['proto', String(protocol)]);
  return rs.map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}${r.flags.includes('onlink') ? ' onlink' : ''}`).sort();
}

/** Nexthop objects of weft's protocol, as `via <gw> dev <dev>[ onlink]` (`ip -j nexthop show`). */
export async function weftNexthops(lab: Lab, ns: string, protocol = 87): Promise<string[]> {
  const ns_ = (await lab.ipJson(ns, ['nexthop', 'show'])) as Array<{ id: number; gateway?: string; dev?: string; flags?: string[]; protocol?: string }>;
  return ns_.filter((n) => n.protocol === String(protocol)).map((n) => `via ${n.gateway} dev ${n.dev}${n.flags?.includes('onlink') ? ' onlink' : ''}`).sort();
}
