// IP packet handling for the udp backend's forwarder, shared by the dgram
// engine and the unit tests (native/forwarder.cc implements the same rules):
// header parsing, the Internet checksum, TTL decrement with an incremental
// checksum update, ICMP net-unreachable, and the verdicts on a packet read
// from the TUN (send where?) and on a datagram from the wire (deliver?).

/** Drop reasons, the same names as the native engine's counters. */
export const DROP_REASONS = ['no_route', 'ttl', 'unknown_peer', 'spoofed_source', 'wrong_destination', 'malformed', 'tun_write_error', 'send_error'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export const IPPROTO_ICMP = 1;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_NET_UNREACH = 0;

export type IpHeader =
  | { version: 4; headerLen: number; totalLen: number; ttl: number; protocol: number; fragOffset: number; src: number; dst: number }
  | { version: 6; headerLen: 40; totalLen: number; hopLimit: number; nextHeader: number };

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
    return { version: 6, headerLen: 40, totalLen: 40 + be16(p, 4), hopLimit: p[7]!, nextHeader: p[6]! };
  }
  return `IP version ${version} is neither 4 nor 6`;
}

export function be16(p: Uint8Array, off: number): number {
  return (p[off]! << 8) | p[off + 1]!;
}

export function be32(p: Uint8Array, off: number): number {
  return ((p[off]! << 24) | (p[off + 1]! << 16) | (p[off + 2]! << 8) | p[off + 3]!) >>> 0;
}

function put16(p: Uint8Array, off: number, v: number): void {
  p[off] = (v >>> 8) & 0xff;
  p[off + 1] = v & 0xff;
}

function put32(p: Uint8Array, off: number, v: number): void {
  put16(p, off, v >>> 16);
  put16(p, off + 2, v & 0xffff);
}

/** The Internet checksum (RFC 1071) of p[off, off+len). */
export function internetChecksum(p: Uint8Array, off = 0, len = p.length - off): number {
  let sum = 0;
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
 * ICMP destination unreachable, code 0 (net unreachable), from ownIp to the packet's source,
 * quoting its IP header and the first 8 bytes of its payload (RFC 792).
 */
export function buildNetUnreachable(orig: Uint8Array, ownIp: number): Buffer {
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
  out[20] = ICMP_DEST_UNREACH;
  out[21] = ICMP_NET_UNREACH;
  out.set(orig.subarray(0, quote), 28);
  put16(out, 22, internetChecksum(out, 20));
  return out;
}

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

/** A peer as the forwarder sees it: its subnet (uint32 network, prefix) and where it listens. */
export interface ForwardRoute extends Net4 {
  readonly peerIp: string;
  readonly port: number;
}

/** What to do with a packet read from the TUN. */
export type TunVerdict<R> =
  | { action: 'send'; route: R }
  | { action: 'drop'; reason: DropReason; icmp?: Buffer; route?: R };

/**
 * Decides where a packet read from the TUN goes; on 'send' the TTL has been decremented in place.
 * No route → a counted drop plus, where allowed, the ICMP net-unreachable to write into the TUN.
 * IPv6 is a no_route drop (the overlay is IPv4) without ICMP.
 */
export function routeFromTun<R extends ForwardRoute>(p: Uint8Array, lookup: (dst: number) => R | undefined, ownIp: number): TunVerdict<R> {
  if (p.length > 0 && p[0]! >> 4 === 6) return { action: 'drop', reason: 'no_route' };
  const h = parseIpHeader(p);
  if (typeof h === 'string' || h.version !== 4) return { action: 'drop', reason: 'malformed' };
  const route = lookup(h.dst);
  if (!route) {
    return icmpErrorAllowed(p, h) ? { action: 'drop', reason: 'no_route', icmp: buildNetUnreachable(p, ownIp) } : { action: 'drop', reason: 'no_route' };
  }
  if (h.ttl <= 1) return { action: 'drop', reason: 'ttl', route };
  decrementTtl(p);
  return { action: 'send', route };
}

/**
 * Whether a datagram from `srcIp` may be written into the TUN: the sender must be a known peer
 * (checked first, so strangers are always counted as such), the payload one whole IPv4/IPv6
 * packet (header length == datagram length), its source inside one of that peer's subnets and
 * its destination inside one of this host's (`own`; else wrong_destination).
 */
export function checkDatagram<R extends ForwardRoute>(p: Uint8Array, routesOfPeer: readonly R[] | undefined, own: readonly Net4[]): { ok: true; route: R } | { ok: false; reason: DropReason } {
  if (!routesOfPeer || routesOfPeer.length === 0) return { ok: false, reason: 'unknown_peer' };
  const h = parseIpHeader(p);
  if (typeof h === 'string' || h.totalLen !== p.length) return { ok: false, reason: 'malformed' };
  if (h.version === 6) return { ok: false, reason: 'spoofed_source' }; // a peer's subnet is IPv4
  const route = routesOfPeer.find((r) => contains(r, h.src));
  if (!route) return { ok: false, reason: 'spoofed_source' };
  if (!own.some((o) => contains(o, h.dst))) return { ok: false, reason: 'wrong_destination' };
  return { ok: true, route };
}

export function contains(p: Net4, addr: number): boolean {
  return ((addr & mask(p.prefixLen)) >>> 0) === p.net;
}

export function mask(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}
