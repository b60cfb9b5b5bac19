// flannel's subnet.env, read by docker/CNI tooling: written atomically
// (temp file + rename) so a reader never sees half a file.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

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
 * The subnet (network form, "10.244.3.0/24") recorded by a previous run, or
 * undefined when the file is missing or says nothing usable.
 */
export function readPreviousSubnet(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const v = parseEnvFile(text).get('FLANNEL_SUBNET');
  const m = v && /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(v);
  if (!m) return undefined;
  const len = Number(m[5]);
  if (len < 1 || len > 32) return undefined;
  const n = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const mask = len === 32 ? 0xffffffff : ~((1 << (32 - len)) - 1) >>> 0;
  const net = (n & mask) >>> 0;
  return `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${len}`;
}
