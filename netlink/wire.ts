// Wire layer: nlmsghdr framing, rtattr TLVs (4-byte aligned, nestable) and the
// fixed rtnetlink structs. Pure functions over Buffers; no sockets here.
// Everything is host byte order (little-endian on every platform weft targets)
// except where the kernel says __be16/__be32 (IFLA_VXLAN_PORT, NDA_PORT).
import {
  IFADDRMSG_LEN, IFINFOMSG_LEN, NDMSG_LEN, NHMSG_LEN, NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN,
  NLA_TYPE_MASK, NLMSG_ALIGNTO, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS, NLM_F_ACK_TLVS, NLM_F_CAPPED, RTMSG_LEN,
} from './constants.js';
import { NetlinkParseError } from './errors.js';
import { formatIp } from '../lib/ip.js';

export const align = (n: number): number => (n + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);

// ---------------------------------------------------------------- nlmsghdr

/** struct nlmsghdr plus the bytes after it (exactly nlmsg_len - 16 of them). */
export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  data: Buffer;
}

/**
 * One message: header + body parts, each part padded to 4 bytes. Written into one
 * buffer (from Node's pool for small messages): 10,000 peers are 40,000 of these.
 */
export function encodeMessage(type: number, flags: number, seq: number, pid: number, ...parts: Buffer[]): Buffer {
  let len = NLMSG_HDRLEN;
  for (const p of parts) len += align(p.length);
  const b = Buffer.allocUnsafe(len);
  writeHeader(b, 0, len, type, flags, seq, pid);
  let off = NLMSG_HDRLEN;
  for (const p of parts) off = writePadded(b, off, p);
  return b;
}

/** An nlmsghdr at b[off..]: nlmsg_len `len` (header included), type, flags, seq, pid. */
export function writeHeader(b: Buffer, off: number, len: number, type: number, flags: number, seq: number, pid: number): void {
  b.writeUInt32LE(len, off);
  b.writeUInt16LE(type, off + 4);
  b.writeUInt16LE(flags, off + 6);
  b.writeUInt32LE(seq >>> 0, off + 8);
  b.writeUInt32LE(pid >>> 0, off + 12);
}

/** `part` at b[off..], zero padded to 4 bytes; returns the offset after the padding. */
export function writePadded(b: Buffer, off: number, part: Buffer): number {
  part.copy(b, off);
  const end = off + align(part.length);
  zero(b, off + part.length, end);
  return end;
}

export function encodeNlMsg(m: NlMsg): Buffer {
  return encodeMessage(m.type, m.flags, m.seq, m.pid, m.data);
}

/**
 * Splits one datagram into its messages. Throws NetlinkParseError on a
 * truncated header or a length that is too small or runs past the end.
 */
export function parseMessages(buf: Buffer): NlMsg[] {
  const out: NlMsg[] = [];
  let off = 0;
  while (off < buf.length) {
    const left = buf.length - off;
    if (left < NLMSG_HDRLEN) {
      throw new NetlinkParseError(`truncated nlmsghdr: ${left} bytes left, a header needs ${NLMSG_HDRLEN}`, off);
    }
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN) throw new NetlinkParseError(`nlmsg_len ${len} is shorter than the header`, off);
    if (len > left) throw new NetlinkParseError(`nlmsg_len ${len} runs past the end (${left} bytes left)`, off);
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      data: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align(len);
  }
  return out;
}

// ---------------------------------------------------------------- rtattr

export interface NlAttr {
  /** Attribute type with NLA_F_NESTED / NLA_F_NET_BYTEORDER masked off. */
  type: number;
  nested: boolean;
  netByteOrder: boolean;
  data: Buffer;
}

/** Parses a run of attributes. `base` is only used to report offsets in errors. */
export function parseAttrs(buf: Buffer, base = 0): NlAttr[] {
  return Attrs.parse(buf, base).list;
}

/** An attribute header at b[at..] for `dataLen` bytes of value; returns where the value goes. */
export function writeAttrHeader(b: Buffer, at: number, type: number, dataLen: number): number {
  b.writeUInt16LE(NLA_HDRLEN + dataLen, at);
  b.writeUInt16LE(type, at + 2);
  return at + NLA_HDRLEN;
}

/** One attribute: header, value, zero padding to 4 bytes. */
export function attr(type: number, data?: Buffer): Buffer {
  const len = NLA_HDRLEN + (data ? data.length : 0);
  if (len > 0xffff) throw new RangeError(`attribute type ${type} is too long (${len} bytes)`);
  const b = Buffer.allocUnsafe(align(len));
  writeAttrHeader(b, 0, type, len - NLA_HDRLEN);
  if (data) data.copy(b, NLA_HDRLEN);
  b.fill(0, len);
  return b;
}

export function encodeAttr(a: NlAttr): Buffer {
  return attr(a.type | (a.nested ? NLA_F_NESTED : 0) | (a.netByteOrder ? NLA_F_NET_BYTEORDER : 0), a.data);
}

export function encodeAttrs(list: NlAttr[]): Buffer {
  return Buffer.concat(list.map(encodeAttr));
}

/** A fixed-size number attribute, its value written in place. */
const num = (size: number, write: (b: Buffer, v: number, off: number) => void) => (type: number, v: number): Buffer => {
  const b = Buffer.allocUnsafe(align(NLA_HDRLEN + size));
  b.fill(0, writeAttrHeader(b, 0, type, size));
  write(b, v, NLA_HDRLEN);
  return b;
};
export const attrU8 = num(1, (b, v, o) => b.writeUInt8(v, o));
export const attrU16 = num(2, (b, v, o) => b.writeUInt16LE(v, o));
export const attrU16BE = num(2, (b, v, o) => b.writeUInt16BE(v, o));
export const attrU32 = num(4, (b, v, o) => b.writeUInt32LE(v >>> 0, o));
export const attrS32 = num(4, (b, v, o) => b.writeInt32LE(v, o));
/** NUL-terminated string, as the kernel's NLA_STRING / NLA_NUL_STRING want. */
export const attrStr = (type: number, s: string): Buffer => attr(type, Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]));
/** Zero-length flag attribute (NLA_FLAG). */
export const attrFlag = (type: number): Buffer => attr(type);
/**
 * Nested attribute. NLA_F_NESTED is left clear, as iproute2 does for
 * IFLA_LINKINFO: older kernels reject unknown flag bits in some families.
 */
export const attrNested = (type: number, ...children: Buffer[]): Buffer => attr(type, Buffer.concat(children));

/**
 * Typed read access to a parsed attribute run; later duplicates win, like nla_parse. The run is
 * checked whole when parsed (the same errors as parseAttrs), but an attribute's bytes become a
 * Buffer only when asked for: a dump of 10,000 routes is 60,000 attributes, most never read.
 */
export class Attrs {
  private constructor(
    private readonly buf: Buffer,
    /** Per attribute: its type (flags masked off), raw type, data offset and data length in buf. */
    private readonly meta: number[],
  ) {}

  static parse(buf: Buffer, base = 0): Attrs {
    const meta: number[] = [];
    let off = 0;
    while (off < buf.length) {
      const left = buf.length - off;
      if (left < NLA_HDRLEN) throw new NetlinkParseError(`truncated attribute header: ${left} bytes left`, base + off);
      const len = buf.readUInt16LE(off);
      const rawType = buf.readUInt16LE(off + 2);
      if (len < NLA_HDRLEN) throw new NetlinkParseError(`attribute type ${rawType & NLA_TYPE_MASK} has length ${len} < ${NLA_HDRLEN}`, base + off);
      if (len > left) {
        throw new NetlinkParseError(`attribute type ${rawType & NLA_TYPE_MASK} length ${len} runs past the end (${left} bytes left)`, base + off);
      }
      meta.push(rawType & NLA_TYPE_MASK, rawType, off + NLA_HDRLEN, len - NLA_HDRLEN);
      off += align(len);
    }
    return new Attrs(buf, meta);
  }

  /** Every attribute, in order (duplicates included), as parseAttrs gives them. */
  get list(): NlAttr[] {
    const out: NlAttr[] = [];
    for (let i = 0; i < this.meta.length; i += 4) {
      const raw = this.meta[i + 1]!;
      out.push({ type: this.meta[i]!, nested: (raw & NLA_F_NESTED) !== 0, netByteOrder: (raw & NLA_F_NET_BYTEORDER) !== 0, data: this.data(i) });
    }
    return out;
  }

  /** The bytes of the attribute at meta index i. */
  private data(i: number): Buffer {
    return this.buf.subarray(this.meta[i + 2]!, this.meta[i + 2]! + this.meta[i + 3]!);
  }

  /** The index in meta of the last attribute of `type`, or -1. */
  private find(type: number): number {
    for (let i = this.meta.length - 4; i >= 0; i -= 4) if (this.meta[i] === type) return i;
    return -1;
  }

  has(type: number): boolean {
    return this.find(type) >= 0;
  }

  get(type: number): Buffer | undefined {
    const i = this.find(type);
    return i < 0 ? undefined : this.data(i);
  }

  /** The data offset of `type`'s attribute when it has at least `size` bytes; undefined when absent. */
  private sized(type: number, size: number): number | undefined {
    const i = this.find(type);
    if (i < 0) return undefined;
    const len = this.meta[i + 3]!;
    if (len < size) throw new NetlinkParseError(`attribute type ${type} has ${len} bytes, expected at least ${size}`, 0);
    return this.meta[i + 2]!;
  }

  u8(type: number): number | undefined {
    const o = this.sized(type, 1);
    return o === undefined ? undefined : this.buf.readUInt8(o);
  }
  u16(type: number): number | undefined {
    const o = this.sized(type, 2);
    return o === undefined ? undefined : this.buf.readUInt16LE(o);
  }
  u16be(type: number): number | undefined {
    const o = this.sized(type, 2);
    return o === undefined ? undefined : this.buf.readUInt16BE(o);
  }
  u32(type: number): number | undefined {
    const o = this.sized(type, 4);
    return o === undefined ? undefined : this.buf.readUInt32LE(o);
  }
  /** A 4-byte value in network order (an IPv4 address as a number). */
  u32be(type: number): number | undefined {
    const o = this.sized(type, 4);
    return o === undefined ? undefined : this.buf.readUInt32BE(o);
  }
  s32(type: number): number | undefined {
    const o = this.sized(type, 4);
    return o === undefined ? undefined : this.buf.readInt32LE(o);
  }
  /** An IPv4 or IPv6 address attribute, formatted; any length but 4 or 16 bytes is a NetlinkParseError. */
  ip(type: number): string | undefined {
    const i = this.find(type);
    if (i < 0) return undefined;
    const off = this.meta[i + 2]!;
    const len = this.meta[i + 3]!;
    if (len === 4) return [this.buf[off], this.buf[off + 1], this.buf[off + 2], this.buf[off + 3]].join('.');
    if (len !== 16) throw new NetlinkParseError(`address attribute type ${type} has ${len} bytes, expected 4 or 16`, 0);
    return formatIp(this.data(i));
  }
  /** String attribute; stops at the first NUL. */
  str(type: number): string | undefined {
    const d = this.get(type);
    if (d === undefined) return undefined;
    const nul = d.indexOf(0);
    return d.subarray(0, nul < 0 ? d.length : nul).toString('utf8');
  }
  nested(type: number): Attrs | undefined {
    const d = this.get(type);
    return d === undefined ? undefined : Attrs.parse(d);
  }
}

// ---------------------------------------------------------------- fixed structs

function need(buf: Buffer, size: number, what: string): void {
  if (buf.length < size) throw new NetlinkParseError(`truncated ${what}: ${buf.length} bytes, need ${size}`, NLMSG_HDRLEN);
}

type FieldType = 'u8' | 'u16' | 's32' | 'u32';

/** b[from..to) = 0, for the few bytes of a struct or padding (Buffer.fill costs more for so few). */
export function zero(b: Buffer, from: number, to: number): void {
  for (let i = from; i < to; i++) b[i] = 0;
}

/** What BodyWriter (body-writer.ts) needs of a fixed struct. */
export interface FixedStruct<T> {
  write(m: Partial<T>, b: Buffer, at: number): number;
}

/** A fixed kernel struct as a table of (field, type, offset): one encoder and one decoder for all of them. */
function struct<T extends Record<string, number>>(what: string, size: number, layout: ReadonlyArray<readonly [keyof T & string, FieldType, number]>) {
  const padded = align(size);
  return {
    /** Writes the struct at b[at..], zero padded to 4 bytes; returns the offset after it. */
    write(m: Partial<T>, b: Buffer, at: number): number {
      zero(b, at, at + padded);
      for (let i = 0; i < layout.length; i++) {
        const [k, t, off] = layout[i]!;
        const v = m[k] ?? 0;
        if (t === 'u8') b.writeUInt8(v, at + off);
        else if (t === 'u16') b.writeUInt16LE(v, at + off);
        else if (t === 's32') b.writeInt32LE(v, at + off);
        else b.writeUInt32LE(v >>> 0, at + off);
      }
      return at + padded;
    },
    encode(m: Partial<T>): Buffer {
      const b = Buffer.allocUnsafe(padded);
      this.write(m, b, 0);
      return padded === size ? b : b.subarray(0, size);
    },
    decode(b: Buffer): T {
      need(b, size, what);
      const o: Record<string, number> = {};
      for (const [k, t, off] of layout) o[k] = t === 'u8' ? b.readUInt8(off) : t === 'u16' ? b.readUInt16LE(off) : t === 's32' ? b.readInt32LE(off) : b.readUInt32LE(off);
      return o as T;
    },
  };
}

/** struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; } */
export interface IfInfoMsg {
  family: number;
  type: number;
  index: number;
  flags: number;
  change: number;
}
const ifinfomsg = struct<IfInfoMsg & Record<string, number>>('ifinfomsg', IFINFOMSG_LEN, [['family', 'u8', 0], ['type', 'u16', 2], ['index', 's32', 4], ['flags', 'u32', 8], ['change', 'u32', 12]]);
export const encodeIfInfoMsg = (m: Partial<IfInfoMsg>): Buffer => ifinfomsg.encode(m);
export const decodeIfInfoMsg = (b: Buffer): IfInfoMsg => ifinfomsg.decode(b);

/** struct ifaddrmsg { u8 family, prefixlen, flags, scope; u32 index; } */
export interface IfAddrMsg {
  family: number;
  prefixLen: number;
  flags: number;
  scope: number;
  index: number;
}
const ifaddrmsg = struct<IfAddrMsg & Record<string, number>>('ifaddrmsg', IFADDRMSG_LEN, [['family', 'u8', 0], ['prefixLen', 'u8', 1], ['flags', 'u8', 2], ['scope', 'u8', 3], ['index', 'u32', 4]]);
export const encodeIfAddrMsg = (m: Partial<IfAddrMsg>): Buffer => ifaddrmsg.encode(m);
export const decodeIfAddrMsg = (b: Buffer): IfAddrMsg => ifaddrmsg.decode(b);

/** struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; } */
export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}
const rtmsg = struct<RtMsg & Record<string, number>>('rtmsg', RTMSG_LEN, [
  ['family', 'u8', 0], ['dstLen', 'u8', 1], ['srcLen', 'u8', 2], ['tos', 'u8', 3], ['table', 'u8', 4], ['protocol', 'u8', 5], ['scope', 'u8', 6], ['type', 'u8', 7], ['flags', 'u32', 8],
]);
export const encodeRtMsg = (m: Partial<RtMsg>): Buffer => rtmsg.encode(m);
export const RTMSG: FixedStruct<RtMsg> = rtmsg;
export const decodeRtMsg = (b: Buffer): RtMsg => rtmsg.decode(b);

/** struct ndmsg { u8 family, pad1; u16 pad2; s32 ifindex; u16 state; u8 flags, type; } */
export interface NdMsg {
  family: number;
  index: number;
  state: number;
  flags: number;
  type: number;
}
const ndmsg = struct<NdMsg & Record<string, number>>('ndmsg', NDMSG_LEN, [['family', 'u8', 0], ['index', 's32', 4], ['state', 'u16', 8], ['flags', 'u8', 10], ['type', 'u8', 11]]);
export const encodeNdMsg = (m: Partial<NdMsg>): Buffer => ndmsg.encode(m);
export const NDMSG: FixedStruct<NdMsg> = ndmsg;
export const decodeNdMsg = (b: Buffer): NdMsg => ndmsg.decode(b);

/** struct nhmsg { u8 nh_family, nh_scope, nh_protocol, resvd; u32 nh_flags; } (linux/nexthop.h) */
export interface NhMsg {
  family: number;
  scope: number;
  protocol: number;
  flags: number;
}
const nhmsg = struct<NhMsg & Record<string, number>>('nhmsg', NHMSG_LEN, [['family', 'u8', 0], ['scope', 'u8', 1], ['protocol', 'u8', 2], ['flags', 'u32', 4]]);
export const encodeNhMsg = (m: Partial<NhMsg>): Buffer => nhmsg.encode(m);
export const NHMSG: FixedStruct<NhMsg> = nhmsg;
export const decodeNhMsg = (b: Buffer): NhMsg => nhmsg.decode(b);

/** The fixed struct, then attributes: how every rtnetlink message body is laid out. */
export function splitBody(m: NlMsg, fixedLen: number): { fixed: Buffer; attrs: Attrs } {
  need(m.data, fixedLen, `message type ${m.type} body`);
  return { fixed: m.data.subarray(0, fixedLen), attrs: Attrs.parse(m.data.subarray(align(fixedLen)), NLMSG_HDRLEN + align(fixedLen)) };
}

// ---------------------------------------------------------------- NLMSG_ERROR / NLMSG_DONE

export interface NlError {
  /** 0 for an ACK, otherwise the positive errno. */
  errno: number;
  /** Header of the request this answers. */
  orig: { len: number; type: number; flags: number; seq: number; pid: number };
  /** NLMSGERR_ATTR_MSG: the kernel's human-readable reason, when it gave one. */
  extAck?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset of the offending attribute in the request. */
  extAckOffset?: number;
}

function parseExtAck(tlvs: Buffer, base: number): Pick<NlError, 'extAck' | 'extAckOffset'> {
  const out: Pick<NlError, 'extAck' | 'extAckOffset'> = {};
  const a = Attrs.parse(tlvs, base);
  const msg = a.str(NLMSGERR_ATTR_MSG);
  if (msg) out.extAck = msg;
  const offs = a.u32(NLMSGERR_ATTR_OFFS);
  if (offs !== undefined) out.extAckOffset = offs;
  return out;
}

/** struct nlmsgerr { int error; struct nlmsghdr msg; } [+ original payload] [+ ext-ack TLVs]. */
export function parseError(m: NlMsg): NlError {
  if (m.type !== NLMSG_ERROR) throw new TypeError(`not an NLMSG_ERROR (type ${m.type})`);
  const d = m.data;
  if (d.length < 4 + NLMSG_HDRLEN) throw new NetlinkParseError(`truncated nlmsgerr: ${d.length} bytes, need ${4 + NLMSG_HDRLEN}`, NLMSG_HDRLEN);
  const error = d.readInt32LE(0);
  const orig = { len: d.readUInt32LE(4), type: d.readUInt16LE(8), flags: d.readUInt16LE(10), seq: d.readUInt32LE(12), pid: d.readUInt32LE(16) };
  const e: NlError = { errno: -error, orig };
  if (m.flags & NLM_F_ACK_TLVS) {
    // Uncapped errors echo the whole request before the TLVs.
    let off = 4 + NLMSG_HDRLEN;
    if (!(m.flags & NLM_F_CAPPED)) off += align(Math.max(0, orig.len - NLMSG_HDRLEN));
    if (off < d.length) Object.assign(e, parseExtAck(d.subarray(off), NLMSG_HDRLEN + off));
  }
  return e;
}

/** NLMSG_DONE carries an int: 0, or a negative errno when a dump failed part way. */
export function parseDone(m: NlMsg): { errno: number; extAck?: string } {
  if (m.type !== NLMSG_DONE) throw new TypeError(`not an NLMSG_DONE (type ${m.type})`);
  if (m.data.length < 4) return { errno: 0 };
  const errno = -m.data.readInt32LE(0);
  const out: { errno: number; extAck?: string } = { errno };
  if (m.flags & NLM_F_ACK_TLVS && m.data.length > 4) {
    const x = parseExtAck(m.data.subarray(4), NLMSG_HDRLEN + 4);
    if (x.extAck) out.extAck = x.extAck;
  }
  return out;
}

/** Hex with no separators, for fixtures and debugging. */
export const toHex = (b: Buffer): string => b.toString('hex');
export const fromHex = (s: string): Buffer => Buffer.from(s.replace(/[^0-9a-fA-F]/g, ''), 'hex');
