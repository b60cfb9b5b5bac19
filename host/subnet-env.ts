// flannel's subnet.env, read by docker/CNI tooling: written atomically
// (temp file + rename) so a reader never sees half a file.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Prefix } from '../lib/ip.js';

export interface SubnetEnv {
  readonly network: string; // "10.244.0.0/16"
  readonly subnet: string; // "10.244.3.1/24": the bridge gateway with the subnet's length, as flannel writes it
  readonly mtu: number;
  readonly ipMasq: boolean;
  /** Dual stack: IPv6Network ("fd00:10:244::/48") and the bridge's IPv6 gateway with the subnet's length ("fd00:10:244:7::1/64"). */
  readonly ipv6Network?: string;
  readonly ipv6Subnet?: string;
}

/** flannel's WriteSubnetFile order: the IPv4 pair, the IPv6 pair (dual stack only), MTU, IPMASQ. */
export function formatSubnetEnv(e: SubnetEnv): string {
  return [
    `FLANNEL_NETWORK=${e.network}`,
    `FLANNEL_SUBNET=${e.subnet}`,
    ...(e.ipv6Network && e.ipv6Subnet ? [`FLANNEL_IPV6_NETWORK=${e.ipv6Network}`, `FLANNEL_IPV6_SUBNET=${e.ipv6Subnet}`] : []),
    `FLANNEL_MTU=${e.mtu}`,
    `FLANNEL_IPMASQ=${e.ipMasq}`,
    '',
  ].join('\n');
}

export function writeSubnetEnv(path: string, e: SubnetEnv): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, formatSubnetEnv(e), { mode: 0o644 });
  renameSync(tmp, path);
}

/** Parses KEY=VALUE lines; unknown keys are kept, comments and blanks ignored. */
export function parseEnvFile(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq > 0) m.set(t.slice(0, eq), t.slice(eq + 1));
  }
  return m;
}

/**
 * The subnets a previous run recorded (FLANNEL_SUBNET's and
 * FLANNEL_IPV6_SUBNET's gateways masked to their networks, e.g. 10.244.3.0/24
 * and fd00:10:244:7::/64); each undefined when the file is missing or says
 * nothing usable.
 */
export function readPreviousSubnets(path: string): { v4?: Prefix; v6?: Prefix } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  const env = parseEnvFile(text);
  const read = (k: string, family: 4 | 6): Prefix | undefined => {
    const v = env.get(k);
    if (!v) return undefined;
    try { return Prefix.parse(v, { mask: true, family }); } catch { return undefined; }
  };
  const v4 = read('FLANNEL_SUBNET', 4);
  const v6 = read('FLANNEL_IPV6_SUBNET', 6);
  return { ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}) };
}

/** The IPv4 subnet a previous run recorded (see readPreviousSubnets). */
export function readPreviousSubnet(path: string): Prefix | undefined {
  return readPreviousSubnets(path).v4;
}

/**
 * subnet.env as flannel's CNI plugin reads it (flannel-io/cni-plugin
 * loadFlannelSubnetEnv): FLANNEL_NETWORK a comma list of CIDRs,
 * FLANNEL_SUBNET one CIDR kept both as written (the bridge's gateway/len,
 * what `docker --bip` takes) and in network form, FLANNEL_MTU a number,
 * FLANNEL_IPMASQ as written; the FLANNEL_IPV6_* pair the same for IPv6.
 * Unknown keys are ignored. A malformed value throws naming the key.
 */
export interface FlannelSubnetEnv {
  readonly networks: readonly Prefix[];
  /** FLANNEL_SUBNET as written, e.g. "10.244.3.1/24". */
  readonly subnetAddress?: string;
  /** FLANNEL_SUBNET in network form, e.g. 10.244.3.0/24. */
  readonly subnet?: Prefix;
  readonly ipv6Networks: readonly Prefix[];
  readonly ipv6SubnetAddress?: string;
  readonly ipv6Subnet?: Prefix;
  readonly mtu?: number;
  /** FLANNEL_IPMASQ as written ("true", "false", or anything). */
  readonly ipMasq?: string;
}

export class SubnetEnvError extends Error {
  readonly code = 'ESUBNETENV';
}

function cidrOf(key: string, value: string, family: 4 | 6): Prefix {
  try {
    return Prefix.parse(value.trim(), { mask: true, family });
  } catch {
    throw new SubnetEnvError(`${key}=${value}: ${JSON.stringify(value)} is not an IPv${family} CIDR`);
  }
}

function cidrList(key: string, value: string, family: 4 | 6): Prefix[] {
  const out: Prefix[] = [];
  for (const part of value.split(',')) {
    const p = cidrOf(key, part, family);
    if (!out.some((x) => x.equals(p))) out.push(p);
  }
  return out;
}

export function parseFlannelSubnetEnv(text: string): FlannelSubnetEnv {
  const kv = parseEnvFile(text);
  const get = (k: string) => kv.get(k);
  const out: { -readonly [K in keyof FlannelSubnetEnv]: FlannelSubnetEnv[K] } = { networks: [], ipv6Networks: [] };
  const v4net = get('FLANNEL_NETWORK');
  if (v4net !== undefined) out.networks = cidrList('FLANNEL_NETWORK', v4net, 4);
  const v4sub = get('FLANNEL_SUBNET');
  if (v4sub !== undefined) {
    out.subnet = cidrOf('FLANNEL_SUBNET', v4sub, 4);
    out.subnetAddress = v4sub.trim();
  }
  const v6net = get('FLANNEL_IPV6_NETWORK');
  if (v6net !== undefined) out.ipv6Networks = cidrList('FLANNEL_IPV6_NETWORK', v6net, 6);
  const v6sub = get('FLANNEL_IPV6_SUBNET');
  if (v6sub !== undefined) {
    out.ipv6Subnet = cidrOf('FLANNEL_IPV6_SUBNET', v6sub, 6);
    out.ipv6SubnetAddress = v6sub.trim();
  }
  const mtu = get('FLANNEL_MTU');
  if (mtu !== undefined) {
    if (!/^\d{1,10}$/.test(mtu.trim()) || Number(mtu) > 0xffffffff) throw new SubnetEnvError(`FLANNEL_MTU=${mtu}: not a whole number`);
    out.mtu = Number(mtu);
  }
  const masq = get('FLANNEL_IPMASQ');
  if (masq !== undefined) out.ipMasq = masq.trim();
  return Object.freeze(out);
}

/**
 * The keys a usable file lacks, by flannel's rule: a network and a subnet of
 * at least one family, the MTU and FLANNEL_IPMASQ.
 */
export function missingSubnetEnvKeys(e: FlannelSubnetEnv): string[] {
  const m: string[] = [];
  if (!e.networks.length && !e.ipv6Networks.length) m.push('FLANNEL_NETWORK', 'FLANNEL_IPV6_NETWORK');
  if (!e.subnet && !e.ipv6Subnet) m.push('FLANNEL_SUBNET', 'FLANNEL_IPV6_SUBNET');
  if (e.mtu === undefined) m.push('FLANNEL_MTU');
  if (e.ipMasq === undefined) m.push('FLANNEL_IPMASQ');
  return m;
}

/** subnet.env did not appear in time: weftd has no lease yet or is not running. */
export class WeftdNotReadyError extends Error {
  readonly code = 'ENOTREADY';
}

/**
 * Reads subnet.env, waiting up to `timeoutMs` for it to appear (weftd writes
 * it once it holds a lease). A file that exists but is malformed or lacks a
 * key fails at once: weftd writes it whole (temp file + rename), so waiting
 * would not help.
 */
export async function waitForSubnetEnv(path: string, timeoutMs: number, pollMs = 100): Promise<FlannelSubnetEnv> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new SubnetEnvError(`cannot read ${path}: ${(e as Error).message}`);
    }
    if (text !== undefined) {
      const env = parseFlannelSubnetEnv(text);
      const missing = missingSubnetEnvKeys(env);
      if (missing.length) throw new SubnetEnvError(`${path} is missing ${missing.join(', ')}`);
      return env;
    }
    if (Date.now() >= end) {
      throw new WeftdNotReadyError(`weftd is not ready: ${path} does not exist${timeoutMs > 0 ? ` after waiting ${Math.round(timeoutMs / 100) / 10} s` : ''}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, end - Date.now()))));
  }
}
