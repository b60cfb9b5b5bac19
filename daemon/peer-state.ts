// --peer-state-file: each peer's path, why, and (with VXLAN's fallback) its
// probes, as weftd sees them; looked at every second and written atomically
// when it changed (updatedAt: when that was), read by `weft status` (which
// reads the path itself from the kernel and takes the why from here).
import { mkdirSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { PeerPathState } from '../backend/peer-paths.js';
import { Slicer } from '../lib/backoff.js';

/** --peer-state-file, else weft-peers.json beside the subnet file (per host wherever the subnet file is). */
export function peerStateFileOf(o: { readonly peerStateFile?: string; readonly subnetFile: string }): string {
  return o.peerStateFile ?? join(dirname(o.subnetFile), 'weft-peers.json');
}

export interface PeerStateFile {
  readonly updatedAt: string;
  readonly pid: number;
  readonly peers: readonly PeerPathState[];
}

/**
 * The file's text, built peer by peer with the event loop running between
 * slices (10,000 peers are about 1.5 MB of JSON).
 */
export async function peerStateText(peers: readonly PeerPathState[], now = new Date()): Promise<string> {
  const parts: string[] = [];
  const slicer = new Slicer();
  for (const p of peers) {
    parts.push(JSON.stringify(p));
    if (slicer.due()) await slicer.next();
  }
  return `{"updatedAt":${JSON.stringify(now.toISOString())},"pid":${process.pid},"peers":[${parts.join(',\n')}]}\n`;
}

/**
 * Writes the peer state file when the peers changed since the last write.
 * Backends keep each peer's state object until something about it changes
 * (peer-paths.ts), so "unchanged" is the same objects in the same order: a
 * look that costs nothing, where writing 10,000 peers every second cost
 * tens of milliseconds of the event loop and a megabyte and a half of garbage.
 */
export class PeerStateWriter {
  private last: readonly PeerPathState[] | undefined;

  constructor(private readonly path: string) {}

  /** Writes (atomically, asynchronously) when `peers` differs from the last written; true when it wrote. A failure leaves it to be written next time. */
  async write(peers: readonly PeerPathState[]): Promise<boolean> {
    if (this.last && sameStates(this.last, peers)) return false;
    this.last = undefined;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, await peerStateText(peers));
    await rename(tmp, this.path);
    this.last = peers;
    return true;
  }
}

const sameStates = (a: readonly PeerPathState[], b: readonly PeerPathState[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

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
