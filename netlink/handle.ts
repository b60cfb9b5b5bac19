// NetlinkHandle: rtnetlink operations bound to one network namespace. Each
// method mirrors one iproute2 command (named in the comment above it).
// Single requests are synchronous, through NetlinkConn (transport.ts):
// rtnetlink handles a request inside sendmsg, so the answer is already queued
// when recv runs; the timeout only guards bugs. Large work goes through the
// asynchronous side (channel.ts): batch() and the *Dump() listings, which
// share the event loop, each on a socket of its own. Every failure is a NetlinkError naming the operation
// and errno, counted in `errors` (by operation and errno; not-found and exists
// answers are not failures).
import { closeSync, openSync } from 'node:fs';
import { RT_TABLE_MAIN, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWNEXTHOP, RTM_NEWROUTE, RT_TABLE_UNSPEC } from './constants.js';
import { addrDumpRequest, addrRequest, decodeAddr } from './addr.js';
import { NetlinkChannel } from './channel.js';
import { KernelErrorCounts } from './error-counts.js';
import { isNotFound, KernelError, NetlinkError } from './errors.js';
import { Faults } from './faults.js';
import {
  linkAddRequest, linkDelRequest, linkDumpRequest, linkGetRequest, linkSetHwAddrRequest,
  linkSetMasterRequest, linkSetMtuRequest, linkSetUpRequest, decodeLink,
} from './link.js';
import { decodeFdb, decodeNeigh, fdbDumpRequest, fdbRequest, neighDelRequest, neighDumpRequest, neighReplaceRequest } from './neigh.js';
import type { Request } from './request.js';
import { decodeNexthop, nexthopDumpRequest, nexthopRequest } from './nexthop.js';
import { decodeRoute, routeDumpRequest, routeGetRequest, routeRequest } from './route.js';
import { type NetlinkSocket, openRouteSocket, resolveNetns } from './socket.js';
import { NetlinkConn } from './transport.js';
import type { Addr, AddrSpec, Fdb, FdbSpec, Link, LinkSpec, Neigh, NeighSpec, Nexthop, NexthopSpec, Route, RouteSpec } from './types.js';
import type { NlMsg } from './wire.js';

export interface HandleOptions {
  /** Namespace path (/run/netns/h1) or bare name (h1). Default: the process's namespace. */
  netns?: string;
  /** How long to wait for the kernel's answer to one request. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * The socket for batch() and the *Dump() calls (opened on first use). Default: the handle's
   * own socket, which is only right when nothing else uses the handle meanwhile (tests).
   */
  asyncSocket?: () => NetlinkSocket;
  /** Injected failures (tests); default WEFT_FAULTS from the environment. */
  faults?: Faults;
}

export class NetlinkHandle {
  readonly netns: string | undefined;
  private readonly conn: NetlinkConn;
  private readonly timeoutMs: number;
  private readonly faults: Faults;
  private readonly asyncSocket: (() => NetlinkSocket) | undefined;
  private channelOpen?: NetlinkChannel;
  private dumpChannelOpen?: NetlinkChannel;
  /** Failed operations by operation and errno (weft_netlink_errors_total). */
  readonly errors = new KernelErrorCounts();

  /** Opens an rtnetlink socket in `netns` (or the current namespace). */
  static open(opts: HandleOptions = {}): NetlinkHandle {
    const netns = opts.netns === undefined ? undefined : resolveNetns(opts.netns);
    const where = netns === undefined ? {} : { netns };
    return new NetlinkHandle(openRouteSocket(where), { asyncSocket: () => openRouteSocket(where), ...opts, ...(netns ? { netns } : {}) });
  }

  /** Wraps an already open socket (tests pass a fake). The handle owns it from now on. */
  constructor(sock: NetlinkSocket, opts: HandleOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.faults = opts.faults ?? Faults.fromEnv();
    this.conn = new NetlinkConn(sock, this.timeoutMs, { errors: this.errors, faults: this.faults });
    this.netns = opts.netns;
    this.asyncSocket = opts.asyncSocket;
  }

  close(): void {
    if (this.conn.isClosed) return;
    if (this.channelOpen && this.asyncSocket) this.channelOpen.close();
    if (this.dumpChannelOpen && this.asyncSocket) this.dumpChannelOpen.close();
    this.conn.close();
  }

  /** The asynchronous side for batches, opened on first use. */
  private get channel(): NetlinkChannel {
    this.channelOpen ??= this.openChannel();
    return this.channelOpen;
  }

  /**
   * The asynchronous side for the *Dump() listings: a socket of its own (when the handle opens
   * them), so that a batch does not wait behind a listing of 10,000 entries, nor one behind a batch.
   */
  private get dumpChannel(): NetlinkChannel {
    if (!this.asyncSocket) return this.channel;
    this.dumpChannelOpen ??= this.openChannel();
    return this.dumpChannelOpen;
  }

  private openChannel(): NetlinkChannel {
    if (this.conn.isClosed) throw new NetlinkError('netlink batch', 9, { detail: 'handle is closed' });
    let sock = this.conn.sock;
    if (this.asyncSocket) {
      try {
        sock = this.asyncSocket();
      } catch (e) {
        if (e instanceof KernelError) this.errors.add(e);
        throw e;
      }
    }
    return new NetlinkChannel(sock, { timeoutMs: this.timeoutMs, faults: this.faults, errors: this.errors, nextSeq: () => this.conn.nextSeq() });
  }

  // ------------------------------------------------------------ transport

  private exec(req: Request): NlMsg[] {
    return this.conn.exec(req);
  }

  private dump(req: Request): NlMsg[] {
    return this.conn.dump(req);
  }

  /** A dump's messages of `type`, decoded, kept when `keep` says so (filters the kernel does not apply for us). */
  private list<T>(req: Request, type: number, decode: (m: NlMsg) => T | undefined, keep: (x: T) => boolean): T[] {
    const out: T[] = [];
    for (const m of this.dump(req)) {
      if (m.type !== type) continue;
      const x = decode(m);
      if (x !== undefined && keep(x)) out.push(x);
    }
    return out;
  }

  // ------------------------------------------------------------ links

  // ip -d link show
  linkList(): Link[] {
    return this.dump(linkDumpRequest()).filter((m) => m.type === RTM_NEWLINK).map(decodeLink);
  }

  private linkGet(key: string | number): Link | undefined {
    try {
      const m = this.exec(linkGetRequest(key)).find((x) => x.type === RTM_NEWLINK);
      return m ? decodeLink(m) : undefined;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  // ip -d link show NAME
  linkByName(name: string): Link | undefined {
    return this.linkGet(name);
  }

  // ip -d link show dev INDEX
  linkByIndex(index: number): Link | undefined {
    return this.linkGet(index);
  }

  // ip link add NAME [mtu M] [address MAC] type vxlan id VNI dstport PORT [nolearning] [local IP] [dev LINK]
  // ip link add NAME type bridge | type dummy | type veth peer name PEER [netns NS]
  linkAdd(spec: LinkSpec): Link {
    let fd: number | undefined;
    let s = spec;
    if (spec.kind === 'veth' && spec.peerNetns !== undefined && spec.peerNetnsFd === undefined) {
      const path = resolveNetns(spec.peerNetns);
      try {
        fd = openSync(path, 'r');
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw new NetlinkError(`link add ${spec.name} type veth peer name ${spec.peerName} netns ${path}`, Math.abs(err.errno ?? 2), { code: err.code ?? 'ENOENT' });
      }
      s = { ...spec, peerNetnsFd: fd };
    }
    const req = linkAddRequest(s);
    if (fd !== undefined && spec.kind === 'veth') req.op = req.op.replace(`netns fd ${fd}`, `netns ${spec.peerNetns}`);
    try {
      this.exec(req);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    const link = this.linkByName(spec.name);
    if (!link) throw new NetlinkError(req.op, 19, { detail: 'created, but gone when read back' });
    return link;
  }

  // ip link del NAME | ip link del dev INDEX
  linkDel(nameOrIndex: string | number): void {
    this.exec(linkDelRequest(nameOrIndex));
  }

  // ip link set dev INDEX up
  linkSetUp(index: number): void {
    this.exec(linkSetUpRequest(index, true));
  }

  // ip link set dev INDEX down
  linkSetDown(index: number): void {
    this.exec(linkSetUpRequest(index, false));
  }

  // ip link set dev INDEX mtu MTU
  linkSetMtu(index: number, mtu: number): void {
    this.exec(linkSetMtuRequest(index, mtu));
  }

  // ip link set dev INDEX master MASTER   (0: nomaster)
  linkSetMaster(index: number, masterIndex: number): void {
    this.exec(linkSetMasterRequest(index, masterIndex));
  }

  // ip link set dev INDEX address MAC
  linkSetHwAddr(index: number, mac: string): void {
    this.exec(linkSetHwAddrRequest(index, mac));
  }

  // ------------------------------------------------------------ addresses

  // ip [-4|-6] addr show [dev INDEX]
  addrList(filter: { index?: number; family?: 4 | 6 } = {}): Addr[] {
    return this.list(addrDumpRequest(filter.family), RTM_NEWADDR, decodeAddr, (a) => matchesFilter(a, filter));
  }

  // ip addr add ADDRESS/PLEN dev INDEX
  addrAdd(a: AddrSpec): void {
    this.exec(addrRequest('add', a));
  }

  // ip addr replace ADDRESS/PLEN dev INDEX
  addrReplace(a: AddrSpec): void {
    this.exec(addrRequest('replace', a));
  }

  // ip addr del ADDRESS/PLEN dev INDEX
  addrDel(a: AddrSpec): void {
    this.exec(addrRequest('del', a));
  }

  // ------------------------------------------------------------ routes

  // ip [-4|-6] route show [table T|all] [dev INDEX]   (table: default main, 0 = all tables)
  routeList(filter: { index?: number; family?: 4 | 6; table?: number } = {}): Route[] {
    const table = filter.table ?? RT_TABLE_MAIN;
    return this.list(routeDumpRequest(filter.family), RTM_NEWROUTE, decodeRoute, (r) => (table === RT_TABLE_UNSPEC || r.table === table) && matchesFilter(r, filter));
  }

  // ip route get ADDRESS   (every route the kernel answered with; flannel's DirectRouting wants exactly one)
  routeGet(address: string): Route[] {
    return this.exec(routeGetRequest(address)).filter((m) => m.type === RTM_NEWROUTE).map(decodeRoute).filter((r): r is Route => r !== undefined);
  }

  // ip route add DST [via GW] dev INDEX [onlink] ...
  routeAdd(r: RouteSpec): void {
    this.exec(routeRequest('add', r));
  }

  // ip route replace DST [via GW] dev INDEX [onlink] ...
  routeReplace(r: RouteSpec): void {
    this.exec(routeRequest('replace', r));
  }

  // ip route del DST [via GW] [dev INDEX] ...
  routeDel(r: RouteSpec): void {
    this.exec(routeRequest('del', r));
  }

  // ------------------------------------------------------------ nexthop objects

  // ip [-4|-6] nexthop show   (a kernel without nexthop objects answers EOPNOTSUPP)
  nexthopList(filter: { family?: 4 | 6 } = {}): Nexthop[] {
    return this.list(nexthopDumpRequest(filter.family), RTM_NEWNEXTHOP, decodeNexthop, (n) => matchesFilter(n, filter));
  }

  // ip nexthop replace id N via GW dev INDEX [onlink] ...
  nexthopReplace(n: NexthopSpec): void {
    this.exec(nexthopRequest('replace', n));
  }

  // ip nexthop del id N   (its routes go with it)
  nexthopDel(id: number): void {
    this.exec(nexthopRequest('del', { id }));
  }

  // ------------------------------------------------------------ neighbours

  // ip [-4|-6] neigh show [dev INDEX]
  neighList(filter: { index?: number; family?: 4 | 6 } = {}): Neigh[] {
    return this.list(neighDumpRequest(filter.family), RTM_NEWNEIGH, decodeNeigh, (n) => matchesFilter(n, filter));
  }

  // ip neigh replace IP lladdr MAC dev INDEX nud permanent
  neighReplace(n: NeighSpec): void {
    this.exec(neighReplaceRequest(n));
  }

  // ip neigh del IP dev INDEX   (mac and state of a NeighSpec are accepted and ignored)
  neighDel(n: { index: number; ip: string; mac?: string; state?: number }): void {
    this.exec(neighDelRequest(n));
  }

  // ------------------------------------------------------------ fdb

  // bridge fdb show [dev INDEX]
  fdbList(filter: { index?: number } = {}): Fdb[] {
    return this.list(fdbDumpRequest(), RTM_NEWNEIGH, decodeFdb, (f) => matchesFilter(f, filter));
  }

  // bridge fdb append MAC dev INDEX dst IP self permanent
  fdbAppend(f: FdbSpec): void {
    this.exec(fdbRequest('append', f));
  }

  // bridge fdb replace MAC dev INDEX dst IP self permanent
  fdbReplace(f: FdbSpec): void {
    this.exec(fdbRequest('replace', f));
  }

  // bridge fdb del MAC dev INDEX [dst IP] self
  fdbDel(f: FdbSpec): void {
    this.exec(fdbRequest('del', f));
  }

  // ------------------------------------------------------------ asynchronous: batches and dumps

  /**
   * Sends many modifying requests (route/neigh/fdb/addr requests built with
   * the encoders of this folder), many per sendmsg; resolves to each one's
   * error, or undefined where it succeeded. Transient failures are retried.
   */
  batch(reqs: readonly Request[]): Promise<(KernelError | undefined)[]> {
    return this.channel.batch(reqs);
  }

  // ip [-4|-6] route show [table T|all] [dev INDEX], decoded as it arrives
  routeDump(filter: { index?: number; family?: 4 | 6; table?: number } = {}): Promise<Route[]> {
    const table = filter.table ?? RT_TABLE_MAIN;
    return this.dumpChannel.dump(routeDumpRequest(filter.family), RTM_NEWROUTE, decodeRoute, (r) => (table === RT_TABLE_UNSPEC || r.table === table) && matchesFilter(r, filter));
  }

  // ip [-4|-6] nexthop show, decoded as it arrives. The kernel flags a nexthop listing interrupted
  // whenever an object was made or deleted meanwhile; with interruptedOk that listing is taken as it is.
  nexthopDump(filter: { family?: 4 | 6 } = {}, interruptedOk = false): Promise<Nexthop[]> {
    return this.dumpChannel.dump(nexthopDumpRequest(filter.family), RTM_NEWNEXTHOP, decodeNexthop, (n) => matchesFilter(n, filter), interruptedOk);
  }

  // ip [-4|-6] neigh show [dev INDEX], decoded as it arrives
  neighDump(filter: { index?: number; family?: 4 | 6 } = {}): Promise<Neigh[]> {
    return this.dumpChannel.dump(neighDumpRequest(filter.family), RTM_NEWNEIGH, decodeNeigh, (n) => matchesFilter(n, filter));
  }

  // bridge fdb show [dev INDEX], decoded as it arrives
  fdbDump(filter: { index?: number } = {}): Promise<Fdb[]> {
    return this.dumpChannel.dump(fdbDumpRequest(), RTM_NEWNEIGH, decodeFdb, (f) => matchesFilter(f, filter));
  }
}

/** The index and family filters of the list calls (unset: anything). */
function matchesFilter(x: { index?: number; family?: number }, f: { index?: number; family?: 4 | 6 }): boolean {
  return (f.index === undefined || x.index === f.index) && (f.family === undefined || x.family === f.family);
}
