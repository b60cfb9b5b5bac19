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
}

export function formatSubnetEnv(e: SubnetEnv): string {
  return [
    `FLANNEL_NETWORK=${e.network}`,
    `FLANNEL_SUBNET=${e.subnet}`,
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
 * The subnet a previous run recorded (FLANNEL_SUBNET's gateway masked to its
 * network, e.g. 10.244.3.0/24), or undefined when the file is missing or
 * says nothing usable.
 */
export function readPreviousSubnet(path: string): Prefix | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const v = parseEnvFile(text).get('FLANNEL_SUBNET');
  if (!v) return undefined;
  try {
    return Prefix.parse(v, { mask: true, family: 4 });
  } catch {
    return undefined;
  }
}
