// The udp backend's forwarding table: remote subnet -> peer public IP:port
// (its PublicIP, or with an IPv6 underlay its PublicIPv6: over6).
// Immutable once built; a change builds a new table and swaps it whole (the
// native engine gets the same entries and builds its own copy).
//   lookup(dst) / lookup6(dst): longest-prefix match, one Map per distinct prefix length, longest first
//   routesOf(addr): the subnets (both families) a sender may use as inner source; a
//               peer is known by its PublicIP and its PublicIPv6 (v4-mapped ::ffff:a.b.c.d,
//               as an IPv6 socket reports IPv4 senders, is its PublicIP)
import { formatIP4, formatIpNumber, ipNumber, isIp, mask4, mask6, parseIP4, Prefix } from '../../lib/ip.js';
import type { ForwardRoute } from './packet.js';

export type UdpRoute = ForwardRoute & {
  /** "10.244.3.0/24" or "fd00:0:0:3::/64", for logs and stats. */
  readonly subnet: string;
};

/** One entry as the backend gives it (and state.ts saves it). */
export interface UdpTableEntry {
  readonly subnet: string;
  /** The peer's PublicIP: its name in stats ("peerIp:port") and, without over6, where its datagrams go. */
  readonly peerIp: string;
  readonly port: number;
  /** The peer's PublicIPv6: a datagram from it is the peer's too. */
  readonly peerIp6?: string;
  /** Send to [peerIp6]:port (this host's Backend.Underlay "ipv6"). */
  readonly over6?: boolean;
}

/** A sender's address (as a socket reports it: canonical) as a table key: an IPv4-mapped IPv6 address (::ffff:192.0.2.1) is the IPv4 one. */
export function senderKey(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1]! : addr;
}

export class ForwardingTable {
  readonly routes: readonly UdpRoute[];
  private readonly byPrefix: Array<[number, Map<number, UdpRoute>]> = [];
  private readonly byPrefix6: Array<[number, Map<bigint, UdpRoute>]> = [];
  private readonly byPeer = new Map<string, UdpRoute[]>();

  constructor(entries: ReadonlyArray<UdpTableEntry>) {
    const routes: UdpRoute[] = [];
    for (const e of entries) {
      parseIP4(e.peerIp);
      if (e.peerIp6 !== undefined && !isIp(e.peerIp6, 6)) throw new Error(`peerIp6 ${JSON.stringify(e.peerIp6)} is not an IPv6 address`);
      if (e.over6 && e.peerIp6 === undefined) throw new Error(`the route to ${e.subnet} goes over IPv6 but has no peerIp6`);
      const ip6 = e.peerIp6 === undefined ? undefined : formatIpNumber(ipNumber(e.peerIp6).n, 6);  // canonical, as sockets report it
      const peer = { peerIp: e.peerIp, port: e.port, ...(ip6 !== undefined ? { peerIp6: ip6 } : {}), ...(e.over6 ? { over6: true } : {}) };
      let r: UdpRoute;
      if (e.subnet.includes(':')) {
        const p = Prefix.parse(e.subnet, { family: 6 });
        r = Object.freeze({ family: 6 as const, subnet: p.toString(), net6: p.ip, prefixLen: p.prefixLen, ...peer });
        let m = this.byPrefix6.find(([l]) => l === p.prefixLen)?.[1];
        if (!m) {
          m = new Map();
          this.byPrefix6.push([p.prefixLen, m]);
        }
        m.set(p.ip, r);
      } else {
        const [addr, len] = e.subnet.split('/');
        const prefixLen = Number(len);
        if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) throw new Error(`invalid subnet ${JSON.stringify(e.subnet)}`);
        const net = parseIP4(addr!);
        if (((net & mask4(prefixLen)) >>> 0) !== net) throw new Error(`subnet ${e.subnet} has host bits set`);
        r = Object.freeze({ subnet: `${formatIP4(net)}/${prefixLen}`, net, prefixLen, ...peer });
        let m = this.byPrefix.find(([l]) => l === prefixLen)?.[1];
        if (!m) {
          m = new Map();
          this.byPrefix.push([prefixLen, m]);
        }
        m.set(net, r);
      }
      routes.push(r);
      for (const a of ip6 !== undefined ? [e.peerIp, ip6] : [e.peerIp]) {
        const list = this.byPeer.get(a) ?? [];
        list.push(r);
        this.byPeer.set(a, list);
      }
    }
    this.byPrefix.sort((a, b) => b[0] - a[0]);
    this.byPrefix6.sort((a, b) => b[0] - a[0]);
    this.routes = Object.freeze(routes);
  }

  /** Longest-prefix match of a uint32 IPv4 destination. */
  lookup(dst: number): UdpRoute | undefined {
    for (const [len, m] of this.byPrefix) {
      const r = m.get((dst & mask4(len)) >>> 0);
      if (r) return r;
    }
    return undefined;
  }

  /** Longest-prefix match of a 128-bit IPv6 destination. */
  lookup6(dst: bigint): UdpRoute | undefined {
    for (const [len, m] of this.byPrefix6) {
      const r = m.get(dst & mask6(len));
      if (r) return r;
    }
    return undefined;
  }

  /** A sender's routes, by its address as the socket reports it (IPv4, IPv6, or IPv4-mapped IPv6). */
  routesOf(addr: string): readonly UdpRoute[] | undefined {
    return this.byPeer.get(senderKey(addr));
  }
}
