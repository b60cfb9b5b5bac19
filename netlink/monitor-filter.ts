// A classic BPF socket filter for a NetlinkMonitor: the kernel runs it on
// every notification before queueing it, so the ones a backend never looks at
// (above all its own additions: 40,000 RTM_NEW* for 10,000 VXLAN peers, each
// a datagram to receive and parse) cost it nothing. A notification is one
// netlink message per skb; the program reads its nlmsghdr (nlmsg_type at
// offset 4) and, for RTM_NEWROUTE, the rtmsg's protocol (offset 16 + 5):
//   ldh [4]; jeq #<type>, accept; ...            (the types always wanted)
//   jeq #RTM_NEWROUTE, 0, drop; ldb [21]; jeq #<ours>, drop, accept
//   drop: ret #0; accept: ret #-1
// BPF_ABS loads read packet data in network byte order; nlmsg_type is in
// host order, so the constants are byte-swapped on a little-endian host.
import { endianness } from 'node:os';
import { RTM_NEWROUTE } from './constants.js';

export interface MonitorFilter {
  /** Message types delivered whatever they hold (RTM_DEL*). */
  readonly types: readonly number[];
  /** RTM_NEWROUTE delivered unless its protocol is this one: additions that are not ours (the underlay's routing changed). */
  readonly foreignRoutesBesides?: number;
}

// struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }
const BPF_LD = 0x00, BPF_JMP = 0x05, BPF_RET = 0x06;
const BPF_H = 0x08, BPF_B = 0x10, BPF_ABS = 0x20;
const BPF_JEQ = 0x10, BPF_K = 0x00;
const NLMSG_TYPE_OFFSET = 4;
const RTM_PROTOCOL_OFFSET = 16 + 5;

export interface Insn { readonly code: number; readonly jt: number; readonly jf: number; readonly k: number }

/** nlmsg_type as a BPF_H|BPF_ABS load sees it. */
export function loadedType(type: number, order = endianness()): number {
  return order === 'LE' ? ((type & 0xff) << 8) | (type >> 8) : type;
}

/** The filter's instructions (see the file comment). */
export function monitorFilterProgram(f: MonitorFilter, order = endianness()): Insn[] {
  const types = [...new Set(f.types)];
  if (types.length === 0 && f.foreignRoutesBesides === undefined) throw new TypeError('a monitor filter that accepts nothing');
  for (const t of types) if (!Number.isInteger(t) || t < 0 || t > 0xffff) throw new TypeError(`netlink message type ${t} is not a 16-bit number`);
  const p = f.foreignRoutesBesides;
  if (p !== undefined && (!Number.isInteger(p) || p < 0 || p > 255)) throw new TypeError(`route protocol ${p} is not 0..255`);
  // Laid out: [ldh] [jeq type]* [route part: jeq, ldb, jeq]? [drop] [accept]
  const routePart = p === undefined ? 0 : 3;
  const out: Insn[] = [{ code: BPF_LD | BPF_H | BPF_ABS, jt: 0, jf: 0, k: NLMSG_TYPE_OFFSET }];
  const dropAt = 1 + types.length + routePart;
  const acceptAt = dropAt + 1;
  for (const t of types) {
    const here = out.length;
    out.push({ code: BPF_JMP | BPF_JEQ | BPF_K, jt: acceptAt - here - 1, jf: 0, k: loadedType(t, order) });
  }
  if (p !== undefined) {
    let here = out.length;
    out.push({ code: BPF_JMP | BPF_JEQ | BPF_K, jt: 0, jf: dropAt - here - 1, k: loadedType(RTM_NEWROUTE, order) });
    out.push({ code: BPF_LD | BPF_B | BPF_ABS, jt: 0, jf: 0, k: RTM_PROTOCOL_OFFSET });
    here = out.length;
    out.push({ code: BPF_JMP | BPF_JEQ | BPF_K, jt: dropAt - here - 1, jf: acceptAt - here - 1, k: p });
  }
  out.push({ code: BPF_RET | BPF_K, jt: 0, jf: 0, k: 0 });
  out.push({ code: BPF_RET | BPF_K, jt: 0, jf: 0, k: 0xffffffff });
  return out;
}

/** The program as the kernel takes it: sock_filter structs in host byte order. */
export function encodeFilter(insns: readonly Insn[], order = endianness()): Buffer {
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach((x, i) => {
    const o = i * 8;
    if (order === 'LE') {
      b.writeUInt16LE(x.code, o);
      b.writeUInt32LE(x.k >>> 0, o + 4);
    } else {
      b.writeUInt16BE(x.code, o);
      b.writeUInt32BE(x.k >>> 0, o + 4);
    }
    b[o + 2] = x.jt;
    b[o + 3] = x.jf;
  });
  return b;
}
