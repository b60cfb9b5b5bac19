// --peer-state-file: each peer's path, why, and (with VXLAN's fallback) its
// probes, as weftd sees them; written atomically every second, read by
// `weft status` (which reads the path itself from the kernel and takes the
// why from here).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PeerPathState } from '../backend/peer-paths.js';

/** --peer-state-file, else weft-peers.json beside the subnet file (per host wherever the subnet file is). */
export function peerStateFileOf(o: { readonly peerStateFile?: string; readonly subnetFile: string }): string {
  return o.peerStateFile ?? join(dirname(o.subnetFile), 'weft-peers.json');
}

export interface PeerStateFile {
  readonly updatedAt: string;
  readonly pid: number;
  readonly peers: readonly PeerPathState[];
}

export function writePeerState(path: string, peers: readonly PeerPathState[]): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify({ updatedAt: new Date().toISOString(), pid: process.pid, peers }) + '\n');
  renameSync(tmp, path);
}

/** The file as JSON (dates as ISO strings), or undefined when it is missing or unreadable. */
export function readPeerState(path: string): { updatedAt: string; peers: Array<Record<string, unknown> & { subnet: string }> } | undefined {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as { updatedAt?: unknown; peers?: unknown };
    if (typeof j.updatedAt !== 'string' || !Array.isArray(j.peers)) return undefined;
    return { updatedAt: j.updatedAt, peers: j.peers.filter((p): p is Record<string, unknown> & { subnet: string } => typeof p === 'object' && p !== null && typeof p.subnet === 'string') };
  } catch {
    return undefined;
  }
}
