// Which way each peer is reached, and since when. A path is how packets to a
// peer's subnet leave this host:
//   direct   routed on the underlay, no encapsulation (host-gw; VXLAN with DirectRouting)
//   vxlan    through the VXLAN device (neighbour + FDB + onlink route)
//   udp      through the udp path's TUN: VXLAN's per-peer fallback (backend/fallback/)
// A peer the backend cannot serve at all (a host-gw peer behind a gateway) is
// 'skipped', with the reason. Changes are logged once each; the table feeds
// weftd's /metrics, /readyz and the backend's stats.
import { type Logger, logs } from '../lib/log.js';

export type PeerPath = 'direct' | 'vxlan' | 'udp';
export const PEER_PATHS: readonly PeerPath[] = ['direct', 'vxlan', 'udp'];

/** One data path's health as its probes see it (the fallback's vxlan and udp paths). */
export interface PathProbeState {
  /** up: the last probe was answered; down: N in a row were not; unknown: not enough answers yet. */
  readonly state: 'up' | 'down' | 'unknown';
  /** When it went up or down. */
  readonly since?: Date;
  readonly sent: number;
  readonly answered: number;
  readonly lost: number;
  readonly lastRttMs?: number;
}

export interface PeerPathState {
  readonly subnet: string;
  readonly publicIp: string;
  readonly path: PeerPath | 'skipped';
  /** Why this path (always for 'skipped'; for vxlan under DirectRouting, why not direct). */
  readonly reason?: string;
  /** When the peer took this path. */
  readonly since: Date;
  /** With a fallback: each path's probes. */
  readonly probes?: { readonly vxlan: PathProbeState; readonly udp: PathProbeState };
}

/** A state without a reason key when there is none (built directly: thousands of peers take their first path at once). */
const pathState = (subnet: string, publicIp: string, path: PeerPathState['path'], since: Date, reason: string | undefined): PeerPathState =>
  reason === undefined ? { subnet, publicIp, path, since } : { subnet, publicIp, path, since, reason };

export class PeerPaths {
  private readonly states = new Map<string, PeerPathState>();
  /** Times a known peer moved from one path to another (not its first path). */
  changes = 0;
  /** One `since` for every peer that takes a path within the same millisecond (a burst's thousands: one Date, not one each). */
  private stamp = new Date(0);

  constructor(private readonly log: Logger) {}

  get(subnet: string): PeerPathState | undefined {
    return this.states.get(subnet);
  }

  /** Records a peer's path; a new path is logged (a skip as a warning naming the peer and why). */
  set(subnet: string, publicIp: string, path: PeerPathState['path'], reason?: string): void {
    const old = this.states.get(subnet);
    if (old && old.path === path && old.publicIp === publicIp) {
      if (old.reason !== reason) this.states.set(subnet, pathState(subnet, publicIp, path, old.since, reason));
      return;
    }
    const now = Date.now();
    if (this.stamp.getTime() !== now) this.stamp = new Date(now);
    this.states.set(subnet, pathState(subnet, publicIp, path, this.stamp, reason));
    if (old && old.path !== path) this.changes++;
    // A new peer's first path is a debug line, or thousands of peers arriving at once would log a line
    // each ('peer added' says it at info for a few); not even built when debug is off.
    if (!old && path !== 'skipped') {
      if (logs(this.log, 'debug')) this.log.debug('peer path', reason === undefined ? { subnet, publicIp, path } : { subnet, publicIp, path, reason });
      return;
    }
    const fields = { subnet, publicIp, path, ...(old ? { from: old.path } : {}), ...(reason !== undefined ? { reason } : {}) };
    if (path === 'skipped') this.log.warn('peer skipped: this backend cannot reach it', fields);
    // A fallback move (to or from udp) is an incident on the underlay: one warning per move.
    else if (old && (path === 'udp' || old.path === 'udp')) this.log.warn('peer path changed', fields);
    else this.log.info('peer path changed', fields);
  }

  delete(subnet: string): void {
    this.states.delete(subnet);
  }

  keys(): string[] {
    return [...this.states.keys()];
  }

  list(): PeerPathState[] {
    return [...this.states.values()];
  }

  count(path: PeerPathState['path']): number {
    let n = 0;
    for (const s of this.states.values()) if (s.path === path) n++;
    return n;
  }
}
