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
