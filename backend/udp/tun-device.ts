// The udp backend's TUN device, persistent and multi-queue:
//   ip tuntap add weft-tun mode tun multi_queue [vnet_hdr]   (TUNSETIFF, one fd per queue)
//   TUNSETPERSIST 1, mtu, up; with vnet_hdr: TUNSETOFFLOAD (tun.enableOffload)
// Persistent, the device and its address and routes outlive weftd: while no
// process holds a queue its carrier is off and the kernel drops what is routed
// to it, so nothing follows the default route out of the underlay
// unencapsulated, and a restarted weftd attaches to it again. A device left by a
// weftd with other flags (vnet_hdr on/off, not multi-queue) is re-created.
// Errors are TunErrors, KernelErrors naming the device: the operation, errno and
// its name, retryable or not (counted in weft_netlink_errors_total like netlink's).
import { ensureSysctl } from '../../host/sysctl.js';
import type { Logger } from '../../lib/log.js';
import { native } from '../../native/index.js';
import { KernelError, type Link, type NetlinkHandle } from '../../netlink/index.js';

/** What the backend wants of its TUN. */
export interface TunWant {
  readonly name: string;
  /** Queues to attach (one per forwarder worker). */
  readonly queues: number;
  /** IFF_VNET_HDR with TSO/USO (the native engine with offloads). */
  readonly vnetHdr: boolean;
  /** With vnetHdr: offer USO (TUN_F_USO4/6) too; default true. */
  readonly uso?: boolean;
  readonly mtu: number;
}

export interface TunDevice {
  readonly name: string;
  readonly index: number;
  /** One fd per queue, in the order the forwarder's workers take them. */
  readonly fds: readonly number[];
  /** TUN_F_* offloads the kernel accepted; 0 without vnet_hdr. */
  readonly offloads: number;
  /** It was there already (left by an earlier weftd) and was attached again, not created. */
  readonly adopted: boolean;
}

/** A TUN operation failed: `op` names it, `code`/`errno` the system's answer. */
export class TunError extends KernelError {
  override readonly name = 'TunError';
  constructor(op: string, readonly device: string, errno: number, detail: string) {
    super(`tun ${op} ${device}`, errno, { detail: `TUN device ${device}: ${detail}` });
  }
}

/** Runs a native TUN call, turning its errno error into a TunError naming `op`. */
function tunCall<T>(op: string, device: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const err = e as { errno?: unknown; message?: string };
    if (typeof err.errno !== 'number') throw e;
    throw new TunError(op, device, err.errno, err.message ?? String(e));
  }
}

/** How an existing device differs from what is wanted, or [] when it can be attached as it is. */
export function tunMismatch(link: Link, want: Pick<TunWant, 'vnetHdr'>): string[] {
  const t = link.tun;
  if (link.kind !== 'tun' || !t) return [`kind ${link.kind ?? 'none'}, not tun`];
  const out: string[] = [];
  if (t.type !== 'tun') out.push(`mode ${t.type}, not tun`);
  if (t.pi) out.push('pi on, not off');
  if (!t.multiQueue) out.push('multi_queue off, not on');
  if (t.vnetHdr !== want.vnetHdr) out.push(`vnet_hdr ${t.vnetHdr ? 'on' : 'off'}, not ${want.vnetHdr ? 'on' : 'off'}`);
  if (!t.persist) out.push('not persistent');
  return out;
}

/**
 * Attaches `want.queues` queues of the persistent TUN `want.name`, creating it, or
 * re-creating one whose flags differ. Throws a TunError (EBUSY, retryable) when another
 * process holds it.
 */
export function openTun(nl: NetlinkHandle, log: Logger, want: TunWant): TunDevice {
  const { name } = want;
  let adopted = false;
  const old = nl.linkByName(name);
  if (old) {
    const held = old.kind === 'tun' && (old.tun?.numQueues ?? 0) > 0;
    if (held) throw new TunError('attach', name, 16, `held by another process (${old.tun!.numQueues} queues open: another weftd?)`);
    const diff = tunMismatch(old, want);
    if (diff.length) {
      log.warn('re-creating the TUN device: the one there was left with other flags', { device: name, differs: diff.join('; ') });
      nl.linkDel(old.index);
    } else {
      adopted = true;
    }
  }
  const t = native().tun;
  const flags = t.IFF_TUN | t.IFF_NO_PI | t.IFF_MULTI_QUEUE | (want.vnetHdr ? t.IFF_VNET_HDR : 0);
  const fds: number[] = [];
  try {
    for (let q = 0; q < want.queues; q++) fds.push(tunCall('open a queue (TUNSETIFF)', name, () => t.open(name, flags)).fd);
    tunCall('TUNSETPERSIST', name, () => t.setPersist(fds[0]!, true));
    const offloads = want.vnetHdr ? tunCall('enable offloads (TUNSETOFFLOAD)', name, () => t.enableOffload(fds[0]!, want.uso ?? true)) : 0;
    const link = nl.linkByName(name);
    if (!link) throw new TunError('look up', name, 19, 'vanished right after it was opened');
    if (link.mtu !== want.mtu) nl.linkSetMtu(link.index, want.mtu);
    // A TUN with an address is a router port; accept_local lets our ICMP errors (source: the TUN's own address) in.
    ensureSysctl(`net/ipv4/conf/${name}/accept_local`, '1');
    if (!link.up) nl.linkSetUp(link.index);
    return { name, index: link.index, fds, offloads, adopted };
  } catch (e) {
    closeTun({ fds });
    throw e;
  }
}

/** Closes the queue fds; the device stays (persistent), its carrier off until the next attach. */
export function closeTun(dev: Pick<TunDevice, 'fds'>): void {
  for (const fd of dev.fds) native().close(fd);
}

/** ip link del: the device goes with its address and routes (after closeTun, or a dead weftd). */
export function removeTun(nl: NetlinkHandle, name: string): boolean {
  const link = nl.linkByName(name);
  if (!link || link.kind !== 'tun') return false;
  nl.linkDel(link.index);
  return true;
}
