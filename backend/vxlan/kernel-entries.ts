// The VXLAN backend's view of its device's entries for a full reconcile: the
// kernel's listings (taken before or inside the backend's queue) and their
// comparison with the peers, one FDB and one neighbour entry per peer.
import { Slicer } from '../../lib/backoff.js';
import type { IpFamily, Prefix } from '../../lib/ip.js';
import type { Fdb, NetlinkHandle, Neigh } from '../../netlink/index.js';
import type { RouteReconciler, RouteSnapshot } from '../route-reconciler.js';
import type { VxlanPeer } from './peer.js';

/** What the kernel holds for the device (ifindex `index`), as reconcile() compares it. */
export interface KernelSnapshot {
  readonly index: number;
  readonly routes: RouteSnapshot;
  readonly fdb: Fdb[];
  readonly neigh: Neigh[];
}

/** Lists the device's routes (through the reconciler), FDB and neighbour entries. */
export async function listEntries(nl: Pick<NetlinkHandle, 'fdbDump' | 'neighDump'>, routes: RouteReconciler, index: number, family: IpFamily): Promise<KernelSnapshot> {
  const r = await routes.snapshot();
  const fdb = await nl.fdbDump({ index });
  const neigh = await nl.neighDump({ index, family });
  return { index, routes: r, fdb, neigh };
}

export interface EntryDiff {
  /** Peers whose FDB entry, and whose neighbour entry, is in place. */
  readonly okFdb: Set<string>;
  readonly okNeigh: Set<string>;
  /** Entries no peer wants (neighbours only inside the Network). */
  readonly staleFdb: Array<{ mac: string; dst: string }>;
  readonly staleNeigh: string[];
}

/** Compares the listed FDB and neighbour entries with the peers' (by MAC and by VTEP address: key and peer). */
export async function diffEntries(
  snap: KernelSnapshot, byMac: ReadonlyMap<string, [string, VxlanPeer]>, byVtepIp: ReadonlyMap<string, [string, VxlanPeer]>, network: Prefix, slicer = new Slicer(),
): Promise<EntryDiff> {
  const d: EntryDiff = { okFdb: new Set(), okNeigh: new Set(), staleFdb: [], staleNeigh: [] };
  for (const f of snap.fdb) {
    if (slicer.due()) await slicer.next();
    if (!f.dst) continue; // the kernel's own entries carry no remote
    const hit = byMac.get(f.mac);
    if (hit && hit[1].dst === f.dst) d.okFdb.add(hit[0]);
    else if (!hit) d.staleFdb.push({ mac: f.mac, dst: f.dst });
  }
  for (const n of snap.neigh) {
    if (slicer.due()) await slicer.next();
    const hit = byVtepIp.get(n.ip);
    if (hit && n.mac === hit[1].mac && isPermanent(n.state)) d.okNeigh.add(hit[0]);
    else if (!hit && network.contains(n.ip)) d.staleNeigh.push(n.ip);
  }
  return d;
}

function isPermanent(state: number | undefined): boolean {
  return state !== undefined && (state & 0x80) !== 0; // NUD_PERMANENT
}
