// NetlinkMonitor: a second socket bound to rtnetlink multicast groups; poll()
// drains what arrived and decodes it with the same parsers the handle uses.
import { decodeAddr } from './addr.js';
import {
  AF_BRIDGE, NDMSG_LEN, RTM_DELADDR, RTM_DELLINK, RTM_DELNEIGH, RTM_DELNEXTHOP, RTM_DELROUTE, RTM_NEWADDR,
  RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWNEXTHOP, RTM_NEWROUTE, RTMGRP_IPV4_ROUTE, RTMGRP_LINK, RTMGRP_NEIGH, RTMGRP_NEXTHOP,
} from './constants.js';
import { Slicer } from '../lib/backoff.js';
import { NetlinkError, NetlinkParseError } from './errors.js';
import { decodeLink } from './link.js';
import { decodeFdb, decodeNeigh } from './neigh.js';
import { decodeNexthop } from './nexthop.js';
import { decodeRoute } from './route.js';
import { encodeFilter, type MonitorFilter, monitorFilterProgram } from './monitor-filter.js';
import { fromNative, type NetlinkSocket, openRouteSocket } from './socket.js';
import type { Addr, Fdb, Link, Neigh, Nexthop, Route } from './types.js';
import { type NlMsg, parseMessages } from './wire.js';

export type Action = 'new' | 'del';

export type Notification =
  | { kind: 'link'; action: Action; link: Link }
  | { kind: 'addr'; action: Action; addr: Addr }
  | { kind: 'route'; action: Action; route: Route }
  | { kind: 'neigh'; action: Action; neigh: Neigh }
  | { kind: 'fdb'; action: Action; fdb: Fdb }
  /** A nexthop object (deleting one deletes its IPv4 routes without a route notification). */
  | { kind: 'nexthop'; action: Action; nexthop: Nexthop }
  /** The socket buffer overflowed (ENOBUFS): events were lost; list again to resync. */
  | { kind: 'overrun' };

export const DEFAULT_MONITOR_GROUPS = (RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_NEXTHOP) >>> 0;

/** One rtnetlink notification → Notification; undefined for types and families we do not model. */
export function decodeNotification(m: NlMsg): Notification | undefined {
  switch (m.type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
      return { kind: 'link', action: m.type === RTM_NEWLINK ? 'new' : 'del', link: decodeLink(m) };
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      const addr = decodeAddr(m);
      return addr && { kind: 'addr', action: m.type === RTM_NEWADDR ? 'new' : 'del', addr };
    }
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      const route = decodeRoute(m);
      return route && { kind: 'route', action: m.type === RTM_NEWROUTE ? 'new' : 'del', route };
    }
    case RTM_NEWNEXTHOP:
    case RTM_DELNEXTHOP: {
      const nexthop = decodeNexthop(m);
      return nexthop && { kind: 'nexthop', action: m.type === RTM_NEWNEXTHOP ? 'new' : 'del', nexthop };
    }
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH: {
      const action = m.type === RTM_NEWNEIGH ? 'new' : 'del';
      if (m.data.length >= NDMSG_LEN && m.data[0] === AF_BRIDGE) {
        const fdb = decodeFdb(m);
        return fdb && { kind: 'fdb', action, fdb };
      }
      const neigh = decodeNeigh(m);
      return neigh && { kind: 'neigh', action, neigh };
    }
    default:
      return undefined;
  }
}

/** Decodes one datagram of notifications (only message types `want` accepts); throws NetlinkParseError on garbage. */
export function decodeNotifications(dgram: Buffer, want?: (type: number) => boolean): Notification[] {
  const out: Notification[] = [];
  for (const m of parseMessages(dgram)) {
    if (want && !want(m.type)) continue;
    const n = decodeNotification(m);
    if (n) out.push(n);
  }
  return out;
}

export class NetlinkMonitor {
  private readonly sock: NetlinkSocket;
  private closed = false;

  /**
   * groups: RTMGRP_* bitmask, default RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_NEXTHOP;
   * filter: only these notifications reach the socket at all (monitor-filter.ts).
   */
  static open(opts: { netns?: string; groups?: number; filter?: MonitorFilter } = {}): NetlinkMonitor {
    const groups = opts.groups ?? DEFAULT_MONITOR_GROUPS;
    return new NetlinkMonitor(openRouteSocket({
      groups,
      ...(opts.netns === undefined ? {} : { netns: opts.netns }),
      ...(opts.filter ? { filter: encodeFilter(monitorFilterProgram(opts.filter)) } : {}),
    }));
  }

  constructor(sock: NetlinkSocket) {
    this.sock = sock;
  }

  /**
   * Everything queued right now, without waiting (timeoutMs 0), or up to
   * timeoutMs for the first datagram. Bounded by maxDatagrams per call. With
   * `want`, only messages of the types it accepts are decoded (RTM_DEL*: a
   * watcher of deletions skips the cost of decoding every addition).
   */
  poll(timeoutMs = 0, maxDatagrams = 4096, want?: (type: number) => boolean): Notification[] {
    return this.read(timeoutMs, maxDatagrams, want).notes;
  }

  /**
   * Everything queued now (only `want`'s message types decoded), read in
   * slices with the event loop running between them: after a batch of
   * thousands of changes the queue is long.
   */
  async drain(want?: (type: number) => boolean): Promise<Notification[]> {
    const out: Notification[] = [];
    const slicer = new Slicer();
    for (;;) {
      const { notes, datagrams } = this.read(0, 64, want);
      out.push(...notes);
      if (datagrams < 64) return out;
      if (slicer.due()) await slicer.next();
    }
  }

  /**
   * The notifications queued now (no waiting), undecoded: up to maxDatagrams datagrams read in
   * one native call, their messages concatenated in `data` (parseMessages reads them), and how
   * many overruns (ENOBUFS: events lost) came with them. For a reader that decodes only the few
   * fields it needs of thousands of notifications (the bench's route counting): read one by one,
   * 12,000 route notifications (a 4000-lease burst on 3 hosts) cost it two syscalls and a Buffer each.
   */
  pollRaw(maxDatagrams = 4096): { data: Buffer; datagrams: number; overruns: number } {
    if (this.closed) throw new NetlinkError('monitor poll', 9, { detail: 'monitor is closed' });
    if (this.sock.recvBatch) {
      try {
        return this.sock.recvBatch(maxDatagrams);
      } catch (e) {
        throw fromNative('monitor poll', e);
      }
    }
    // A socket without batched reads (a test's): one datagram at a time, each padded to 4 bytes as recvBatch does.
    const parts: Buffer[] = [];
    let overruns = 0;
    this.receive(0, maxDatagrams, (d) => { parts.push(d, Buffer.alloc(-d.length & 3)); }, () => { overruns++; });
    return { data: Buffer.concat(parts), datagrams: parts.length / 2, overruns };
  }

  private read(timeoutMs: number, maxDatagrams: number, want?: (type: number) => boolean): { notes: Notification[]; datagrams: number } {
    const notes: Notification[] = [];
    const datagrams = this.receive(timeoutMs, maxDatagrams, (dgram) => {
      try {
        notes.push(...decodeNotifications(dgram, want));
      } catch (e) {
        if (e instanceof NetlinkParseError) throw new NetlinkError('monitor poll', 74, { detail: e.message });
        throw e;
      }
    }, () => { notes.push({ kind: 'overrun' }); });
    return { notes, datagrams };
  }

  /** Receives up to maxDatagrams (waiting timeoutMs for the first only), each to onDatagram, an overflow to onOverrun; returns how many it took. */
  private receive(timeoutMs: number, maxDatagrams: number, onDatagram: (d: Buffer) => void, onOverrun: () => void): number {
    if (this.closed) throw new NetlinkError('monitor poll', 9, { detail: 'monitor is closed' });
    let wait = timeoutMs;
    let i = 0;
    for (; i < maxDatagrams; i++) {
      let dgram: Buffer | null;
      try {
        dgram = this.sock.recv(wait);
      } catch (e) {
        const err = fromNative('monitor poll', e);
        if (err instanceof NetlinkError && err.code === 'ENOBUFS') {
          onOverrun();
          continue;
        }
        throw err;
      }
      if (dgram === null) break;
      wait = 0;
      onDatagram(dgram);
    }
    return i;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }
}
