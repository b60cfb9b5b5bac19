// IP packet handling for the udp backend's forwarder, shared by the dgram
// engine and the unit tests (native/forwarder.cc implements the same rules):
// header parsing, the Internet checksum, TTL decrement with an incremental
// checksum update, the ICMP errors (net unreachable for no route, time exceeded
// for a TTL that runs out here), and the verdicts on a packet read from the TUN
// (send where?) and on a datagram from the wire (deliver?).
// Both IP versions: IPv6 packets are routed by longest prefix match over the
// peers' IPv6 subnets, hop limit - 1, ICMPv6 no route to destination and hop
// limit exceeded (RFC 4443; native/ipv6.cc).

import { mask4, mask6 } from '../../lib/ip.js';

/** Drop reasons, the same names as the native engine's counters. */
export const DROP_REASONS = ['no_route', 'ttl', 'unknown_peer', 'spoofed_source', 'wrong_destination', 'malformed', 'tun_write_error', 'send_error'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export const IPPROTO_ICMP = 1;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_NET_UNREACH = 0;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_EXC_TTL = 0;
export const IPPROTO_ICMPV6 = 58;
export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_NOROUTE = 0;
export const ICMPV6_TIME_EXCEED = 3;
export const ICMPV6_EXC_HOPLIMIT = 0;
/** RFC 4443 2.4(c): an ICMPv6 error fills at most the IPv6 minimum MTU. */
export const IPV6_MIN_MTU = 1280;

export type IpHeader =
  | { version: 4; headerLen: number; totalLen: number; ttl: number; protocol: number; fragOffset: number; src: number; dst: number }
  | { version: 6; headerLen: 40; totalLen: number; hopLimit: number; nextHeader: number; src: bigint; dst: bigint };

/**
 * Parses the IP header at the start of `p`: IPv4 (IHL >= 5 and within the buffer) or IPv6 (40
 * bytes). Returns a reason string when it cannot. Lengths in the header are not compared with
 * the buffer here (see checkDatagram).
 */
export function parseIpHeader(p: Uint8Array): IpHeader | string {
  if (p.length < 1) return 'empty packet';
  const version = p[0]! >> 4;
  if (version === 4) {
    if (p.length < 20) return `IPv4 packet of ${p.length} bytes is shorter than a header`;
    const headerLen = (p[0]! & 0x0f) * 4;
    if (headerLen < 20) return `IPv4 IHL ${headerLen / 4} is below 5`;
    if (headerLen > p.length) return `IPv4 header of ${headerLen} bytes is longer than the ${p.length}-byte packet`;
    return {
      version: 4,
      headerLen,
      totalLen: be16(p, 2),
      ttl: p[8]!,
      protocol: p[9]!,
      fragOffset: be16(p, 6) & 0x1fff,
      src: be32(p, 12),
      dst: be32(p, 16),
    };
  }
  if (version === 6) {
    if (p.length < 40) return `IPv6 packet of ${p.length} bytes is shorter than a header`;
    return { version: 6, headerLen: 40, totalLen: 40 + be16(p, 4), hopLimit: p[7]!, nextHeader: p[6]!, src: be128(p, 8), dst: be128(p, 24) };
  }
  return `IP version ${version} is neither 4 nor 6`;
}

export function be16(p: Uint8Array, off: number): number {
  return (p[off]! << 8) | p[off + 1]!;
}

export function be32(p: Uint8Array, off: number): number {
  return ((p[off]! << 24) | (p[off + 1]! << 16) | (p[off + 2]! << 8) | p[off + 3]!) >>> 0;
}

/** 16 bytes at off as a 128-bit bigint (an IPv6 address). */
export function be128(p: Uint8Array, off: number): bigint {
  let n = 0n;
  for (let i = 0; i < 16; i += 4) n = (n << 32n) | BigInt(be32(p, off + i));
  return n;
}

function put16(p: Uint8Array, off: number, v: number): void {
  p[off] = (v >>> 8) & 0xff;
  p[off + 1] = v & 0xff;
}

function put32(p: Uint8Array, off: number, v: number): void {
  put16(p, off, v >>> 16);
  put16(p, off + 2, v & 0xffff);
}

/** The Internet checksum (RFC 1071) of p[off, off+len), `initial` (an unfolded sum, e.g. a pseudo-header's) added. */
export function internetChecksum(p: Uint8Array, off = 0, len = p.length - off, initial = 0): number {
  let sum = initial;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  if (i < end) sum += p[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * TTL - 1 in place, with the header checksum updated incrementally (RFC 1624 eqn. 3:
 * HC' = ~(~HC + ~m + m'), m = the 16-bit word holding TTL and protocol), as the native engine does.
 * The caller has checked TTL > 1.
 */
export function decrementTtl(ip: Uint8Array): void {
  const m = be16(ip, 8);
  const m2 = (m - 0x0100) & 0xffff;
  let sum = (~be16(ip, 10) & 0xffff) + (~m & 0xffff) + m2;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  ip[8] = ip[8]! - 1;
  put16(ip, 10, ~sum & 0xffff);
}

/**
 * Whether RFC 1812 4.3.2.7 allows an ICMP error about this IPv4 packet: not about another ICMP
 * error, a non-first fragment, or a zero, multicast or broadcast address.
 */
export function icmpErrorAllowed(ip: Uint8Array, h: Extract<IpHeader, { version: 4 }>): boolean {
  if (h.fragOffset !== 0) return false;
  if (h.src === 0 || h.src >= 0xe0000000 || h.dst >= 0xe0000000) return false;
  if (h.protocol === IPPROTO_ICMP && ip.length > h.headerLen) {
    const t = ip[h.headerLen]!;
    if (t === 3 || t === 4 || t === 5 || t === 11 || t === 12) return false;
  }
  return true;
}

/**
 * An ICMP error (type, code) from ownIp to the packet's source, quoting its IP header and the
 * first 8 bytes of its payload (RFC 792): destination unreachable (net unreachable) for no route,
 * time exceeded (in transit) for a TTL that runs out here.
 */
export function buildIcmpError(orig: Uint8Array, ownIp: number, type: number, code: number): Buffer {
  const headerLen = (orig[0]! & 0x0f) * 4;
  const quote = Math.min(orig.length, headerLen + 8);
  const out = Buffer.alloc(28 + quote);
  out[0] = 0x45;
  out[1] = 0xc0; // precedence "internetwork control", as Linux sends its ICMP errors
  put16(out, 2, out.length);
  out[8] = 64;
  out[9] = IPPROTO_ICMP;
  put32(out, 12, ownIp);
  out.set(orig.subarray(12, 16), 16);
  put16(out, 10, internetChecksum(out, 0, 20));
  out[20] = type;
  out[21] = code;
  out.set(orig.subarray(0, quote), 28);
  put16(out, 22, internetChecksum(out, 20));
  return out;
}

/**
 * Whether RFC 4443 2.4(e) allows an ICMPv6 error about this IPv6 packet: not about an ICMPv6
 * error message (type < 128, ICMPv6 being the first next header), not to a multicast destination,
 * not from an unspecified, loopback, multicast or link-local source (native/ipv6.cc Icmp6Allowed).
 */
export function icmp6ErrorAllowed(ip: Uint8Array, h: Extract<IpHeader, { version: 6 }>): boolean {
  if (h.dst >> 120n === 0xffn || h.src >> 120n === 0xffn) return false;
  if (h.src >> 118n === 0x3fan) return false; // fe80::/10
  if (h.src === 0n || h.src === 1n) return false;
  if (h.nextHeader === IPPROTO_ICMPV6 && ip.length > 40 && ip[40]! < 128) return false;
  return true;
}

/** ICMP net unreachable about orig, from ownIp. */
export const buildNetUnreachable = (orig: Uint8Array, ownIp: number): Buffer => buildIcmpError(orig, ownIp, ICMP_DEST_UNREACH, ICMP_NET_UNREACH);

/**
 * An ICMPv6 error (type, code) from ownIp6 to the packet's source, quoting as much of it as fits
 * in 1280 bytes (RFC 4443 2.4(c)): destination unreachable (no route to destination, 3.1) or time
 * exceeded (hop limit exceeded in transit, 3.3).
 */
export function buildIcmp6Error(orig: Uint8Array, ownIp6: bigint, type: number, code: number): Buffer {
  const quote = Math.min(orig.length, IPV6_MIN_MTU - 48);
  const icmpLen = 8 + quote;
  const out = Buffer.alloc(40 + icmpLen);
  out[0] = 0x60;
  put16(out, 4, icmpLen);
  out[6] = IPPROTO_ICMPV6;
  out[7] = 64;
  for (let i = 0; i < 4; i++) put32(out, 8 + 4 * i, Number((ownIp6 >> BigInt(96 - 32 * i)) & 0xffffffffn));
  out.set(orig.subarray(8, 24), 24);
  out[40] = type;
  out[41] = code;
  out.set(orig.subarray(0, quote), 48);
  // Pseudo-header (RFC 8200 8.1): source, destination, upper-layer length, next header.
  let pseudo = IPPROTO_ICMPV6 + (icmpLen >>> 16) + (icmpLen & 0xffff);
  for (let i = 8; i < 40; i += 2) pseudo += be16(out, i);
  put16(out, 42, internetChecksum(out, 40, icmpLen, pseudo));
  return out;
}

/** ICMPv6 no route to destination about orig, from ownIp6. */
export const buildNoRoute6 = (orig: Uint8Array, ownIp6: bigint): Buffer => buildIcmp6Error(orig, ownIp6, ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE);

/**
 * A token bucket: up to `burst` tokens, refilled at `perSecond`; take() spends one. The ICMP
 * errors written into the TUN use Linux's defaults for a host's ICMP errors (icmp_msgs_per_sec,
 * icmp_msgs_burst), as the native engine does.
 */
export class TokenBucket {
  private tokens: number;
  private last: number | undefined;
  constructor(
    private readonly perSecond = 1000,
    private readonly burst = 50,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
  }
  take(): boolean {
    const now = this.nowMs();
    if (this.last !== undefined) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** An IPv4 prefix: uint32 network (host bits clear) and length. */
export interface Net4 {
  readonly net: number;
  readonly prefixLen: number;
}

/** An IPv6 prefix: 128-bit network (host bits clear) and length. */
export interface Net6 {
  readonly net6: bigint;
  readonly prefixLen: number;
}

/**
 * A peer as the forwarder sees it: one of its subnets and where it listens (its IPv4 PublicIP,
 * and with an IPv6 underlay its PublicIPv6: over6 sends there).
 * An IPv4 subnet (uint32 network, prefix), or with family 6 an IPv6 one (net6).
 */
export type ForwardRoute = (({ readonly family?: 4 } & Net4) | ({ readonly family: 6 } & Net6)) & {
  readonly peerIp: string;
  readonly port: number;
  readonly peerIp6?: string;
  readonly over6?: boolean;
};

/**
 * The address a route's datagrams go to: the peer's PublicIPv6 (over6), else its PublicIP, as an
 * IPv4-mapped IPv6 address on an IPv6 socket (v6Socket), as native/table.cc Build makes it.
 */
export function datagramTarget(r: Pick<ForwardRoute, 'peerIp' | 'peerIp6' | 'over6'>, v6Socket: boolean): string {
  return r.over6 ? r.peerIp6! : v6Socket ? `::ffff:${r.peerIp}` : r.peerIp;
}

/** The IPv6 half of the forwarder's view (a dual-stack network). */
export interface ForwardV6<R> {
  /** Longest prefix match of an IPv6 destination. */
  lookup6(dst: bigint): R | undefined;
  /** The TUN's IPv6 address: the source of ICMPv6 errors. */
  readonly ownIp6: bigint;
}

/** What to do with a packet read from the TUN. */
export type TunVerdict<R> =
  | { action: 'send'; route: R }
  | { action: 'drop'; reason: DropReason; icmp?: Buffer; route?: R };

/** A drop verdict: against the peer it was for (route) and with the ICMP error to write back (icmp), when there are. */
function dropped<R>(reason: DropReason, route: R | undefined, icmp: Buffer | undefined): TunVerdict<R> {
  return { action: 'drop', reason, ...(route === undefined ? {} : { route }), ...(icmp === undefined ? {} : { icmp }) };
}

/**
 * Decides where a packet read from the TUN goes; on 'send' the TTL has been decremented in place.
 * No route → a counted drop plus, where allowed, the ICMP net unreachable to write into the TUN; a
 * TTL of 1 or 0 → a drop counted against the peer plus, where allowed, the ICMP time exceeded (as
 * a router's hop: traceroute shows the forwarder). IPv6 likewise by v6 (hop limit, ICMPv6);
 * without v6 (an IPv4-only network) IPv6 is a no_route drop without ICMP.
 */
export function routeFromTun<R extends ForwardRoute>(p: Uint8Array, lookup: (dst: number) => R | undefined, ownIp: number, v6?: ForwardV6<R>): TunVerdict<R> {
  if (p.length > 0 && p[0]! >> 4 === 6) {
    const h = parseIpHeader(p);
    if (typeof h === 'string' || h.version !== 6) return { action: 'drop', reason: 'malformed' };
    const route = v6?.lookup6(h.dst);
    if (!v6 || !route) return dropped<R>('no_route', undefined, v6 && icmp6ErrorAllowed(p, h) ? buildNoRoute6(p, v6.ownIp6) : undefined);
    if (h.hopLimit <= 1) return dropped('ttl', route, icmp6ErrorAllowed(p, h) ? buildIcmp6Error(p, v6.ownIp6, ICMPV6_TIME_EXCEED, ICMPV6_EXC_HOPLIMIT) : undefined);
    p[7] = h.hopLimit - 1;
    return { action: 'send', route };
  }
  const h = parseIpHeader(p);
  if (typeof h === 'string' || h.version !== 4) return { action: 'drop', reason: 'malformed' };
  const route = lookup(h.dst);
  if (!route) return dropped<R>('no_route', undefined, icmpErrorAllowed(p, h) ? buildNetUnreachable(p, ownIp) : undefined);
  if (h.ttl <= 1) return dropped('ttl', route, icmpErrorAllowed(p, h) ? buildIcmpError(p, ownIp, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL) : undefined);
  decrementTtl(p);
  return { action: 'send', route };
}

/**
 * Whether a datagram from `srcIp` may be written into the TUN: the sender must be a known peer
 * (checked first, so strangers are always counted as such), the payload one whole IPv4/IPv6
 * packet (header length == datagram length), its source inside one of that peer's subnets of
 * its family and its destination inside one of this host's (`own`, `own6`; else wrong_destination).
 */
export function checkDatagram<R extends ForwardRoute>(
  p: Uint8Array,
  routesOfPeer: readonly R[] | undefined,
  own: readonly Net4[],
  own6: readonly Net6[] = [],
): { ok: true; route: R } | { ok: false; reason: DropReason } {
  if (!routesOfPeer || routesOfPeer.length === 0) return { ok: false, reason: 'unknown_peer' };
  const h = parseIpHeader(p);
  if (typeof h === 'string' || h.totalLen !== p.length) return { ok: false, reason: 'malformed' };
  if (h.version === 6) {
    const route6 = routesOfPeer.find((r) => r.family === 6 && contains6(r, h.src));
    if (!route6) return { ok: false, reason: 'spoofed_source' };
    if (!own6.some((o) => contains6(o, h.dst))) return { ok: false, reason: 'wrong_destination' };
    return { ok: true, route: route6 };
  }
  const route = routesOfPeer.find((r) => r.family !== 6 && contains(r, h.src));
  if (!route) return { ok: false, reason: 'spoofed_source' };
  if (!own.some((o) => contains(o, h.dst))) return { ok: false, reason: 'wrong_destination' };
  return { ok: true, route };
}

export function contains(p: Net4, addr: number): boolean {
  return ((addr & mask4(p.prefixLen)) >>> 0) === p.net;
}

export function contains6(p: Net6, addr: bigint): boolean {
  return (addr & mask6(p.prefixLen)) === p.net6;
}
