// NetlinkHandle: rtnetlink operations bound to one network namespace. Each
// method mirrors one iproute2 command (named in the comment above it). The
// request/answer logic is NetlinkConn's (transport.ts).
import { closeSync, openSync } from 'node:fs';
import { RT_TABLE_MAIN, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE, RT_TABLE_UNSPEC } from './constants.js';
import { addrDumpRequest, addrRequest, decodeAddr } from './addr.js';
import { isNotFound, NetlinkError } from './errors.js';
import {
  linkAddRequest, linkDelRequest, linkDumpRequest, linkGetRequest, linkSetHwAddrRequest,
  linkSetMasterRequest, linkSetMtuRequest, linkSetUpRequest, decodeLink,
} from './link.js';
import { decodeFdb, decodeNeigh, fdbDumpRequest, fdbRequest, neighDelRequest, neighDumpRequest, neighReplaceRequest } from './neigh.js';
import type { Request } from './request.js';
import { decodeRoute, routeDumpRequest, routeGetRequest, routeRequest } from './route.js';
import { type NetlinkSocket, openRouteSocket, resolveNetns } from './socket.js';
import { NetlinkConn } from './transport.js';
import type { Addr, AddrSpec, Fdb, FdbSpec, Link, LinkSpec, Neigh, NeighSpec, Route, RouteSpec } from './types.js';
import type { NlMsg } from './wire.js';

export interface HandleOptions {
  /** Namespace path (/run/netns/h1) or bare name (h1). Default: the process's namespace. */
  netns?: string;
  /** How long to wait for the kernel's answer to one request. Default 5000 ms. */
  timeoutMs?: number;
}

export class NetlinkHandle {
  readonly netns: string | undefined;
  private readonly conn: NetlinkConn;

  /** Opens an rtnetlink socket in `netns` (or the current namespace). */
  static open(opts: HandleOptions = {}): NetlinkHandle {
    const netns = opts.netns === undefined ? undefined : resolveNetns(opts.netns);
    return new NetlinkHandle(openRouteSocket(netns === undefined ? {} : { netns }), { ...opts, ...(netns ? { netns } : {}) });
  }

  /** Wraps an already open socket (tests pass a fake). The handle owns it from now on. */
  constructor(sock: NetlinkSocket, opts: HandleOptions = {}) {
    this.conn = new NetlinkConn(sock, opts.timeoutMs ?? 5000);
    this.netns = opts.netns;
  }

  close(): void {
    this.conn.close();
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
}

/** The index and family filters of the list calls (unset: anything). */
function matchesFilter(x: { index?: number; family?: number }, f: { index?: number; family?: 4 | 6 }): boolean {
  return (f.index === undefined || x.index === f.index) && (f.family === undefined || x.family === f.family);
}
