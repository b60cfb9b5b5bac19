// --peer-state-file: each peer's path, why, and (with VXLAN's fallback) its
// probes, as weftd sees them; looked at every second and written atomically
// when it changed (updatedAt: when that was), not while the backend is still
// programming a burst of peers (up to BUSY_STALE_MS); read by `weft status`
// (which reads the path itself from the kernel and takes the why from here).
import { mkdirSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BackendStats } from '../backend/backend.js';
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
  /** When the file was last written (or the writer made). */
  private writtenAt: number;

  constructor(
    private readonly path: string,
    private readonly now: () => number = Date.now,
  ) {
    this.writtenAt = now();
  }

  /**
   * Writes (atomically, asynchronously) when `peers` differs from the last written; true when it
   * wrote. A failure leaves it to be written next time. `busy`: the backend is programming peers
   * right now (it knows more than it has programmed), so the states are about to change again:
   * then the file waits, up to BUSY_STALE_MS since the last write (a burst of 10,000 peers wrote
   * 1.5 MB of JSON every second, partial each time, on the event loop programming them).
   */
  async write(peers: readonly PeerPathState[], busy = false): Promise<boolean> {
    if (this.last && sameStates(this.last, peers)) return false;
    if (busy && this.now() - this.writtenAt < BUSY_STALE_MS) return false;
    this.last = undefined;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, await peerStateText(peers));
    await rename(tmp, this.path);
    this.last = peers;
    this.writtenAt = this.now();
    return true;
  }
}

/**
 * Whether the backend is still programming peers: it knows more than it has programmed, or
 * (VXLAN, host-gw) more than have a path yet; a peer gets its path once its entries are in, and
 * VXLAN counts a peer whose batch is still on its way as programmed (only failures are dirty).
 */
export function backendBusy(s: Pick<BackendStats, 'peersKnown' | 'peersProgrammed' | 'peersSkipped' | 'paths'>): boolean {
  return s.peersProgrammed + (s.peersSkipped ?? 0) < s.peersKnown || (s.paths !== undefined && s.paths.length < s.peersKnown);
}

/** How stale the file may get while the backend is busy programming (a peer that keeps failing keeps it busy). */
export const BUSY_STALE_MS = 10_000;

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
