// IPv4 and IPv6 packets for the forwarder's tests, built and checked independently of
// the code under test (plain RFC 1071 sums over 16-bit words).
import { parseIP4, parseIp } from '../../../lib/ip.js';

export function sum16(b: Uint8Array, start = 0, end = b.length, init = 0): number {
  let s = init;
  let i = start;
  for (; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < end) s += b[i]! << 8;
  return s;
}

export function fold(s: number): number {
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

const pseudo4 = (p: Uint8Array, proto: number, l4Len: number) => sum16(p, 12, 20) + proto + l4Len;

export const ipv4HeaderOk = (p: Uint8Array): boolean => fold(sum16(p, 0, (p[0]! & 0x0f) * 4)) === 0xffff;

/** The TCP/UDP checksum of an IPv4 packet verifies (proto 6 or 17, no options beyond IHL). */
export function l4ChecksumOk(p: Uint8Array): boolean {
  const l4 = (p[0]! & 0x0f) * 4;
  return fold(sum16(p, l4, p.length, pseudo4(p, p[9]!, p.length - l4))) === 0xffff;
}

export interface Ip4Opts {
  src: string;
  dst: string;
  ttl?: number;
  id?: number;
  df?: boolean;
}

function ip4(o: Ip4Opts, proto: number, l4: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h.writeUInt16BE(o.id ?? 0x1234, 4);
  h.writeUInt16BE(o.df === false ? 0 : 0x4000, 6);
  h[8] = o.ttl ?? 64;
  h[9] = proto;
  h.writeUInt32BE(parseIP4(o.src), 12);
  h.writeUInt32BE(parseIP4(o.dst), 16);
  h.writeUInt16BE(0xffff - fold(sum16(h)), 10);
  return Buffer.concat([h, l4]);
}

export interface TcpOpts extends Ip4Opts {
  sport?: number;
  dport?: number;
  seq?: number;
  flags?: number;
  payload: Buffer;
}

/** An IPv4 TCP segment with the timestamp option (a 32-byte TCP header) and full checksums. */
export function tcp4(o: TcpOpts): Buffer {
  const t = Buffer.alloc(32 + o.payload.length);
  t.writeUInt16BE(o.sport ?? 40000, 0);
  t.writeUInt16BE(o.dport ?? 5201, 2);
  t.writeUInt32BE((o.seq ?? 1000) >>> 0, 4);
  t.writeUInt32BE(0x01020304, 8);
  t[12] = 8 << 4;
  t[13] = o.flags ?? 0x10;
  t.writeUInt16BE(502, 14);
  Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]).copy(t, 20);
  o.payload.copy(t, 32);
  const p = ip4(o, 6, t);
  p.writeUInt16BE(0xffff - fold(sum16(p, 20, p.length, pseudo4(p, 6, p.length - 20))), 36);
  return p;
}

/** An IPv4 UDP datagram with a full checksum. */
export function udp4(o: Ip4Opts & { payload: Buffer; sport?: number; dport?: number }): Buffer {
  const u = Buffer.alloc(8 + o.payload.length);
  u.writeUInt16BE(o.sport ?? 4444, 0);
  u.writeUInt16BE(o.dport ?? 9999, 2);
  u.writeUInt16BE(u.length, 4);
  o.payload.copy(u, 8);
  const p = ip4(o, 17, u);
  p.writeUInt16BE(0xffff - fold(sum16(p, 20, p.length, pseudo4(p, 17, p.length - 20))) || 0xffff, 26);
  return p;
}

export interface Ip6Opts {
  src: string;
  dst: string;
  hopLimit?: number;
}

/** The pseudo-header sum of an IPv6 packet (RFC 8200 8.1), unfolded. */
export const pseudo6 = (p: Uint8Array, proto: number, l4Len: number) => sum16(p, 8, 40) + proto + l4Len;

function ip6(o: Ip6Opts, proto: number, l4: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(l4.length, 4);
  h[6] = proto;
  h[7] = o.hopLimit ?? 64;
  parseIp(o.src).bytes.copy(h, 8);
  parseIp(o.dst).bytes.copy(h, 24);
  return Buffer.concat([h, l4]);
}

/** An IPv6 TCP segment (a 32-byte TCP header, as tcp4's) with a full checksum. */
export function tcp6(o: Ip6Opts & { sport?: number; dport?: number; seq?: number; flags?: number; payload: Buffer }): Buffer {
  const t = tcp4({ ...o, src: '0.0.0.0', dst: '0.0.0.0' }).subarray(20);
  const p = ip6(o, 6, Buffer.from(t));
  p.writeUInt16BE(0, 56);
  p.writeUInt16BE(0xffff - fold(sum16(p, 40, p.length, pseudo6(p, 6, p.length - 40))), 56);
  return p;
}

/** An IPv6 UDP datagram with a full checksum. */
export function udp6(o: Ip6Opts & { payload: Buffer; sport?: number; dport?: number }): Buffer {
  const u = Buffer.alloc(8 + o.payload.length);
  u.writeUInt16BE(o.sport ?? 4444, 0);
  u.writeUInt16BE(o.dport ?? 9999, 2);
  u.writeUInt16BE(u.length, 4);
  o.payload.copy(u, 8);
  const p = ip6(o, 17, u);
  p.writeUInt16BE(0xffff - fold(sum16(p, 40, p.length, pseudo6(p, 17, p.length - 40))) || 0xffff, 46);
  return p;
}

/** An ICMPv6 message (type, code, then body) with a full checksum. */
export function icmp6(o: Ip6Opts & { type: number; code?: number; body?: Buffer }): Buffer {
  const m = Buffer.concat([Buffer.from([o.type, o.code ?? 0, 0, 0]), o.body ?? Buffer.alloc(4)]);
  const p = ip6(o, 58, m);
  p.writeUInt16BE(0xffff - fold(sum16(p, 40, p.length, pseudo6(p, 58, p.length - 40))), 42);
  return p;
}

/** n bytes of a position-dependent pattern, so a reordered or lost byte shows. */
export function pattern(n: number, salt = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3 + salt) & 0xff;
  return b;
}

export interface VnetHdr {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
}

/** The 10-byte little-endian virtio_net_hdr. */
export function vnetHdr(h: VnetHdr = {}): Buffer {
  const b = Buffer.alloc(10);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  b.writeUInt16LE(h.hdrLen ?? 0, 2);
  b.writeUInt16LE(h.gsoSize ?? 0, 4);
  b.writeUInt16LE(h.csumStart ?? 0, 6);
  b.writeUInt16LE(h.csumOffset ?? 0, 8);
  return b;
}
