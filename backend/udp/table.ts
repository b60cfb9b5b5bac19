// The udp backend's forwarding table: remote subnet -> peer public IP:port.
// Immutable once built; a change builds a new table and swaps it whole (the
// native engine gets the same entries and builds its own copy).
//   lookup(dst) / lookup6(dst): longest-prefix match, one Map per distinct prefix length, longest first
//   routesOf(peerIp): the subnets (both families) a sender may use as inner source
import { formatIP4, mask4, mask6, parseIP4, Prefix } from '../../lib/ip.js';
import type { ForwardRoute } from './packet.js';

export type UdpRoute = ForwardRoute & {
  /** "10.244.3.0/24" or "fd00:0:0:3::/64", for logs and stats. */
  readonly subnet: string;
};

export class ForwardingTable {
  readonly routes: readonly UdpRoute[];
  private readonly byPrefix: Array<[number, Map<number, UdpRoute>]> = [];
  private readonly byPrefix6: Array<[number, Map<bigint, UdpRoute>]> = [];
  private readonly byPeer = new Map<string, UdpRoute[]>();

  constructor(entries: ReadonlyArray<{ subnet: string; peerIp: string; port: number }>) {
    const routes: UdpRoute[] = [];
    for (const e of entries) {
      parseIP4(e.peerIp);
      let r: UdpRoute;
      if (e.subnet.includes(':')) {
        const p = Prefix.parse(e.subnet, { family: 6 });
        r = Object.freeze({ family: 6 as const, subnet: p.toString(), net6: p.ip, prefixLen: p.prefixLen, peerIp: e.peerIp, port: e.port });
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
        r = Object.freeze({ subnet: `${formatIP4(net)}/${prefixLen}`, net, prefixLen, peerIp: e.peerIp, port: e.port });
        let m = this.byPrefix.find(([l]) => l === prefixLen)?.[1];
        if (!m) {
          m = new Map();
          this.byPrefix.push([prefixLen, m]);
        }
        m.set(net, r);
      }
      routes.push(r);
      const list = this.byPeer.get(e.peerIp) ?? [];
      list.push(r);
      this.byPeer.set(e.peerIp, list);
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

  routesOf(peerIp: string): readonly UdpRoute[] | undefined {
    return this.byPeer.get(peerIp);
  }
}
