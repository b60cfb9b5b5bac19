// Invokes real CNI plugins (containernetworking-plugins) as the CNI spec says:
// the plugin binary is exec'd with CNI_* variables in its environment and the
// network configuration on stdin; it prints a result (ADD) or an error object.
// The plugin runs inside the HOST namespace (`ip netns exec HOST plugin`):
// bridge creates the veth pair from the host side and the bridge lives there.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { exec, type ExecResult } from './netns.js';

/** Debian's containernetworking-plugins. */
export const CNI_PATH = '/usr/lib/cni';

export interface BridgeNetConfOptions {
  bridge: string;
  /** e.g. 10.244.3.0/24 */
  subnet: string;
  /** e.g. 10.244.3.1 */
  gateway: string;
  mtu: number;
  /** host-local's state directory; one per host, since all hosts share the filesystem. */
  ipamDataDir: string;
  /** Dual stack: a second range (the host's IPv6 subnet) and a default IPv6 route via its gateway. */
  ipv6?: { subnet: string; gateway: string };
}

/**
 * `weft install-cni --bin-dir DIR`: weft's plugin as `flannel` and `weft` in a
 * lab-local plugin directory (never the machine's /opt/cni/bin); use
 * [DIR, CNI_PATH] as the CNI path so its bridge and host-local delegates are found.
 */
export async function installWeftPlugin(weftCli: string, dir: string): Promise<string[]> {
  const r = await exec(process.execPath, [weftCli, 'install-cni', '--bin-dir', dir]);
  if (r.code !== 0) throw new Error(`weft install-cni --bin-dir ${dir}: exit ${r.code}: ${r.stderr.trim()}`);
  return [dir, CNI_PATH];
}

/** The bridge plugin's network config with host-local IPAM and a default route via the bridge. */
export function bridgeNetConf(o: BridgeNetConfOptions): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: 'weft',
    type: 'bridge',
    bridge: o.bridge,
    isGateway: true,
    ipMasq: false,
    mtu: o.mtu,
    ipam: {
      type: 'host-local',
      ranges: [[{ subnet: o.subnet, gateway: o.gateway }], ...(o.ipv6 ? [[{ subnet: o.ipv6.subnet, gateway: o.ipv6.gateway }]] : [])],
      routes: [{ dst: '0.0.0.0/0' }, ...(o.ipv6 ? [{ dst: '::/0' }] : [])],
      dataDir: o.ipamDataDir,
    },
  };
}

export interface CniInvocation {
  /** Namespace the plugin runs in (the container's host). */
  hostNs: string;
  /** Container namespace path, e.g. /run/netns/wtk3f9a-h1c1 */
  netnsPath: string;
  containerId: string;
  ifName?: string;
  /** One plugin's network config... */
  conf: Record<string, unknown>;
  /** ...or a whole conflist: plugins run in order for ADD (each gets the previous result), in reverse for DEL. */
  list?: { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
  /** Plugin directories (CNI_PATH), searched in order. Default [CNI_PATH]. */
  cniPath?: readonly string[];
}

export interface CniIp { address: string; gateway?: string; interface?: number }
export interface CniResult { cniVersion: string; interfaces?: { name: string; mac?: string; sandbox?: string }[]; ips?: CniIp[]; routes?: { dst: string; gw?: string }[] }

export class CniError extends Error {
  readonly code = 'ECNI';
  constructor(readonly plugin: string, readonly command: string, message: string, readonly cniCode?: number) {
    super(`CNI ${plugin} ${command}: ${message}`);
    this.name = 'CniError';
  }
}

/**
 * Runs one plugin for `command` in the host namespace as a runtime would and
 * returns what it did, exit status and all (for tests of the CNI conventions).
 * `stdin` replaces the JSON of inv.conf; `env` adds to or (with '') removes CNI_* variables.
 */
export async function cniExec(command: string, inv: CniInvocation, o: { stdin?: string; env?: Record<string, string> } = {}): Promise<ExecResult> {
  const plugin = String(inv.conf['type']);
  const dirs = inv.cniPath ?? [CNI_PATH];
  const bin = dirs.map((d) => join(d, plugin)).find((p) => existsSync(p)) ?? join(dirs[0]!, plugin);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CNI_COMMAND: command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netnsPath,
    CNI_IFNAME: inv.ifName ?? 'eth0',
    CNI_PATH: dirs.join(':'),
    ...o.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
  return exec('ip', ['netns', 'exec', inv.hostNs, bin], { env, input: o.stdin ?? JSON.stringify(inv.conf), timeoutMs: 20_000 });
}

async function invoke(command: 'ADD' | 'DEL', inv: CniInvocation): Promise<string> {
  const plugin = String(inv.conf['type']);
  const r = await cniExec(command, inv);
  if (r.code !== 0) {
    let msg = (r.stderr || r.stdout).trim() || `exit ${r.code ?? r.signal}`;
    let cniCode: number | undefined;
    try {
      const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
      if (e.msg) msg = e.details ? `${e.msg}: ${e.details}` : e.msg;
      cniCode = e.code;
    } catch { /* not a CNI error object: keep stderr */ }
    throw new CniError(plugin, command, msg, cniCode);
  }
  return r.stdout;
}

function listConf(list: NonNullable<CniInvocation['list']>, plugin: Record<string, unknown>, prevResult?: unknown): Record<string, unknown> {
  return { ...plugin, cniVersion: list.cniVersion, name: list.name, ...(prevResult ? { prevResult } : {}) };
}

/** CNI ADD; resolves to the parsed result, which must hold at least one IP. */
export async function cniAdd(inv: CniInvocation): Promise<CniResult> {
  if (inv.list) {
    let prev: CniResult | undefined;
    for (const plugin of inv.list.plugins) {
      prev = await cniAddOne({ ...inv, conf: listConf(inv.list, plugin, prev), list: undefined }, prev === undefined);
    }
    if (!prev) throw new CniError('conflist', 'ADD', `conflist ${inv.list.name} has no plugins`);
    return prev;
  }
  return cniAddOne(inv, true);
}

async function cniAddOne(inv: CniInvocation, mustHaveIps: boolean): Promise<CniResult> {
  const out = await invoke('ADD', inv);
  let result: CniResult;
  try {
    result = JSON.parse(out) as CniResult;
  } catch {
    throw new CniError(String(inv.conf['type']), 'ADD', `result is not JSON: ${JSON.stringify(out.slice(0, 200))}`);
  }
  if (mustHaveIps && !result.ips?.length) throw new CniError(String(inv.conf['type']), 'ADD', `result has no ips: ${out.trim()}`);
  return result;
}

/** CNI DEL (idempotent by the spec: deleting what is already gone succeeds). */
export async function cniDel(inv: CniInvocation): Promise<void> {
  if (inv.list) {
    for (const plugin of [...inv.list.plugins].reverse()) await invoke('DEL', { ...inv, conf: listConf(inv.list, plugin), list: undefined });
    return;
  }
  await invoke('DEL', inv);
}
