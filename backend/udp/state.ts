// What the udp backend keeps across restarts, per host, in --state-dir:
//   <state-dir>/udp-<tun device>.json
// the forwarding table and everything the native engine needs to run it (the
// TUN's flags, the socket's address, this host's subnet), so that a restarted
// weftd forwards again from it before it has talked to etcd (plugin.ts resume).
// Written atomically (tmp + rename) whenever the table changes (at most once a
// second) and at shutdown; read back strictly: a file that does not parse as
// this shape is reported and ignored, never half-used.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIp, Prefix } from '../../lib/ip.js';
import type { UdpEngineName } from './engine.js';
import type { UdpTableEntry } from './table.js';

export interface UdpState {
  readonly version: 1;
  readonly device: string;
  readonly engine: UdpEngineName;
  /** The TUN has IFF_VNET_HDR (the native engine with offloads). */
  readonly vnetHdr: boolean;
  readonly mtu: number;
  /** The UDP socket: this host's public IP ("::": both families, a dual-stack host) and Backend.Port. */
  readonly bindIp: string;
  readonly port: number;
  /** This host's lease: the TUN's address (<subnet>.0) is the ICMP source. */
  readonly ownSubnet: string;
  readonly network: string;
  /** A dual-stack network: this host's IPv6 subnet (the TUN's IPv6 address <v6 subnet>:: is the ICMPv6 source) and IPv6Network. */
  readonly ownSubnet6?: string;
  readonly network6?: string;
  readonly routes: ReadonlyArray<UdpTableEntry>;
  readonly savedAt: string;
}

export function statePath(stateDir: string, device: string): string {
  return join(stateDir, `udp-${device}.json`);
}

/** Writes the state atomically; the directory is made (0700) when missing. */
export function writeUdpState(path: string, s: UdpState): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

export function removeUdpState(path: string): boolean {
  try {
    rmSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The saved state; undefined when there is none; throws an Error naming the path and the bad field otherwise. */
export function readUdpState(path: string): UdpState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not JSON: ${(e as Error).message}`);
  }
  const bad = (field: string) => new Error(`${path}: ${field} ${JSON.stringify(v?.[field])} is not valid`);
  if (typeof v !== 'object' || v === null || v.version !== 1) throw bad('version');
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : (() => { throw bad(k); })());
  const int = (k: string, lo: number, hi: number) => (Number.isInteger(v[k]) && (v[k] as number) >= lo && (v[k] as number) <= hi ? (v[k] as number) : (() => { throw bad(k); })());
  const prefix = (k: string, s: string) => {
    try {
      return Prefix.parse(s).toString();
    } catch {
      throw bad(k);
    }
  };
  const engine = str('engine');
  if (engine !== 'native' && engine !== 'dgram') throw bad('engine');
  if (typeof v.vnetHdr !== 'boolean') throw bad('vnetHdr');
  const bindIp = str('bindIp');
  if (!isIp(bindIp, 4) && bindIp !== '::') throw bad('bindIp');
  if (!Array.isArray(v.routes)) throw bad('routes');
  const routes = (v.routes as unknown[]).map((r) => {
    const o = r as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o.subnet !== 'string' || typeof o.peerIp !== 'string' || !isIp(o.peerIp, 4) ||
        !Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535 ||
        (o.peerIp6 !== undefined && !isIp(o.peerIp6, 6)) || (o.over6 !== undefined && o.over6 !== true) ||
        (o.over6 && (o.peerIp6 === undefined || bindIp !== '::'))) throw bad('routes');
    return {
      subnet: prefix('routes', o.subnet), peerIp: o.peerIp, port: o.port as number,
      ...(o.peerIp6 !== undefined ? { peerIp6: o.peerIp6 as string } : {}), ...(o.over6 ? { over6: true } : {}),
    };
  });
  return {
    version: 1,
    device: str('device'),
    engine,
    vnetHdr: v.vnetHdr,
    mtu: int('mtu', 68, 65535),
    bindIp,
    port: int('port', 1, 65535),
    ownSubnet: prefix('ownSubnet', str('ownSubnet')),
    network: prefix('network', str('network')),
    ...(v.ownSubnet6 !== undefined ? { ownSubnet6: prefix('ownSubnet6', str('ownSubnet6')) } : {}),
    ...(v.network6 !== undefined ? { network6: prefix('network6', str('network6')) } : {}),
    routes,
    savedAt: str('savedAt'),
  };
}
