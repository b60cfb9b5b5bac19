// The VXLAN backend's view of its device's entries for a full reconcile: the
// kernel's listings (taken before or inside the backend's queue) and their
// comparison with the peers, one FDB and one neighbour entry per peer.
import type { IpFamily, Prefix } from '../../lib/ip.js';
import { fdbRequest, neighDelRequest, type Fdb, type NetlinkHandle, type Neigh } from '../../netlink/index.js';
import type { KernelOp } from '../kernel-ops.js';
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

/** Compares the listed FDB and neighbour entries with the peers' (by MAC and by VTEP address: key and peer); `step` between entries lets other work run (a full reconcile's pause). */
export async function diffEntries(
  snap: KernelSnapshot, byMac: ReadonlyMap<string, [string, VxlanPeer]>, byVtepIp: ReadonlyMap<string, [string, VxlanPeer]>, network: Prefix,
  step: () => Promise<void>,
): Promise<EntryDiff> {
  const d: EntryDiff = { okFdb: new Set(), okNeigh: new Set(), staleFdb: [], staleNeigh: [] };
  for (const f of snap.fdb) {
    await step();
    if (!f.dst) continue; // the kernel's own entries carry no remote
    const hit = byMac.get(f.mac);
    if (hit && hit[1].dst === f.dst) d.okFdb.add(hit[0]);
    else if (!hit) d.staleFdb.push({ mac: f.mac, dst: f.dst });
  }
  for (const n of snap.neigh) {
    await step();
    const hit = byVtepIp.get(n.ip);
    if (hit && n.mac === hit[1].mac && isPermanent(n.state)) d.okNeigh.add(hit[0]);
    else if (!hit && network.contains(n.ip)) d.staleNeigh.push(n.ip);
  }
  return d;
}

/** The deletions of the stale entries that `may` allows (by MAC, by address). */
export function staleEntryOps(index: number, fdb: EntryDiff['staleFdb'], neigh: EntryDiff['staleNeigh'], may: (subject: string) => boolean): KernelOp[] {
  const ops: KernelOp[] = [];
  for (const f of fdb) if (may(f.mac)) ops.push({ what: 'fdb del (stale)', subject: f.mac, req: fdbRequest('del', { index, mac: f.mac, dst: f.dst }), tolerateMissing: true });
  for (const ip of neigh) if (may(ip)) ops.push({ what: 'neigh del (stale)', subject: ip, req: neighDelRequest({ index, ip }), tolerateMissing: true });
  return ops;
}

function isPermanent(state: number | undefined): boolean {
  return state !== undefined && (state & 0x80) !== 0; // NUD_PERMANENT
}
