// Running weftd inside lab hosts, and reading back what it did.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Prefix } from '../lib/ip.js';
import type { Lab, LabContainer, LabHost, TrackedProcess } from './lab.js';

export const WEFTD = fileURLToPath(new URL('../cmd/weftd.js', import.meta.url));
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

/** Starts weftd in a host with the lab's etcd, a per-host subnet file and debug logs. */
export function startAgent(lab: Lab, host: LabHost, extra: readonly string[] = []): LabAgent {
  const subnetFile = join(host.dir, 'subnet.env');
  const args = [
    WEFTD,
    '--etcd-endpoints', lab.etcd!.labEndpoints.join(','),
    '--subnet-file', subnetFile,
    ...(extra.includes('--log-level') ? [] : ['--log-level', 'debug']),
    ...extra,
  ];
  const proc = lab.spawnIn(host.ns, process.execPath, ['--enable-source-maps', ...args], { logName: `weftd-${host.name}` });
  return { host, proc, subnetFile, args };
}

let restarts = 0;

/** Starts the agent again with the same flags; its log goes to a new file so old "ready" lines do not count. */
export async function restartAgent(lab: Lab, a: LabAgent): Promise<void> {
  a.proc = lab.spawnIn(a.host.ns, process.execPath, ['--enable-source-maps', ...a.args], { logName: `weftd-${a.host.name}-restart${++restarts}` });
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

export interface AgentReady {
  subnet: string; // 10.244.3.0/24
  gateway: string; // 10.244.3.1
  mtu: number;
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

/** Attaches a new container to weftd's bridge on `host`, with the subnet, gateway and MTU the agent leased. */
export function attachContainer(lab: Lab, host: LabHost, ready: AgentReady, bridge = 'weft0'): Promise<LabContainer> {
  return lab.addContainer(host, { bridge, subnet: ready.subnet, gateway: ready.gateway, mtu: ready.mtu });
}

export function readSubnetEnv(path: string): AgentReady {
  const env = new Map(
    readFileSync(path, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  const sub = env.get('FLANNEL_SUBNET')!; // 10.244.3.1/24
  const [gw, len] = sub.split('/');
  return { subnet: Prefix.containing(gw!, Number(len)).toString(), gateway: gw!, mtu: Number(env.get('FLANNEL_MTU')) };
}
