// ICMP echo over the overlay (raw-socket, needs CAP_NET_RAW): used by
// `weft status` to say whether each peer answers and how fast. IPv4 targets
// get ICMP echo, IPv6 ones ICMPv6 echo (the kernel fills in the ICMPv6
// checksum and delivers replies without the IPv6 header).
import { ipFamily } from '../lib/ip.js';
import raw from 'raw-socket';

export interface ProbeResult {
  readonly target: string;
  readonly sent: number;
  readonly received: number;
  /** Round-trip times of the replies, ms. */
  readonly rttsMs: readonly number[];
}

const ECHO_REQUEST = 8;
const ECHO_REPLY = 0;
const ECHO6_REQUEST = 128;
const ECHO6_REPLY = 129;

/** An echo request with the given id and sequence: ICMP, checksummed; or ICMPv6, whose checksum is the kernel's (it covers the IPv6 pseudo-header). */
export function echoRequest(id: number, seq: number, payload: Buffer = Buffer.from('weft status probe'), family: 4 | 6 = 4): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeUInt8(family === 4 ? ECHO_REQUEST : ECHO6_REQUEST, 0);
  b.writeUInt16BE(id & 0xffff, 4);
  b.writeUInt16BE(seq & 0xffff, 6);
  payload.copy(b, 8);
  if (family === 4) raw.writeChecksum(b, 2, raw.createChecksum(b));
  return b;
}

/** Reads an ICMPv6 echo reply (a raw ICMPv6 socket delivers the ICMPv6 message alone). */
export function parseEcho6Reply(msg: Buffer): { id: number; seq: number } | undefined {
  if (msg.length < 8 || msg[0] !== ECHO6_REPLY) return undefined;
  return { id: msg.readUInt16BE(4), seq: msg.readUInt16BE(6) };
}

/** Reads an echo reply out of an IPv4 datagram (raw ICMP sockets deliver the IP header). */
export function parseEchoReply(dgram: Buffer): { id: number; seq: number } | undefined {
  if (dgram.length < 20 || dgram[0]! >> 4 !== 4) return undefined;
  const ihl = (dgram[0]! & 0x0f) * 4;
  if (dgram.length < ihl + 8 || dgram[ihl] !== ECHO_REPLY) return undefined;
  return { id: dgram.readUInt16BE(ihl + 4), seq: dgram.readUInt16BE(ihl + 6) };
}

/**
 * Sends `count` echo requests to each target, `intervalMs` apart, and waits
 * up to `timeoutMs` after the last for replies. One socket per family.
 */
export async function probeAll(targets: readonly string[], opts: { count?: number; intervalMs?: number; timeoutMs?: number } = {}): Promise<Map<string, ProbeResult>> {
  const v4 = targets.filter((t) => ipFamily(t) === 4);
  const v6 = targets.filter((t) => ipFamily(t) === 6);
  const [a, b] = await Promise.all([v4.length ? probeFamily(v4, 4, opts) : new Map(), v6.length ? probeFamily(v6, 6, opts) : new Map()]);
  return new Map([...a, ...b]);
}

async function probeFamily(targets: readonly string[], family: 4 | 6, opts: { count?: number; intervalMs?: number; timeoutMs?: number }): Promise<Map<string, ProbeResult>> {
  const count = opts.count ?? 3;
  const intervalMs = opts.intervalMs ?? 50;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const id = process.pid & 0xffff;
  const sock = family === 4 ? raw.createSocket({ protocol: raw.Protocol.ICMP }) : raw.createSocket({ protocol: raw.Protocol.ICMPv6, addressFamily: raw.AddressFamily.IPv6 });
  const sentAt = new Map<number, { target: string; at: bigint }>();
  const results = new Map<string, { sent: number; rtts: number[] }>(targets.map((t) => [t, { sent: 0, rtts: [] }]));
  sock.on('message', (buf, source) => {
    const r = family === 4 ? parseEchoReply(buf) : parseEcho6Reply(buf);
    if (!r || r.id !== id) return;
    const s = sentAt.get(r.seq);
    if (!s || s.target !== source) return;
    sentAt.delete(r.seq);
    results.get(s.target)!.rtts.push(Number(process.hrtime.bigint() - s.at) / 1e6);
  });
  const errors: Error[] = [];
  sock.on('error', (e) => errors.push(e));
  try {
    let seq = 0;
    for (let round = 0; round < count; round++) {
      for (const target of targets) {
        const mySeq = ++seq;
        const pkt = echoRequest(id, mySeq, undefined, family);
        await new Promise<void>((resolve) => {
          sock.send(pkt, 0, pkt.length, target, () => sentAt.set(mySeq, { target, at: process.hrtime.bigint() }), (err) => {
            if (err) errors.push(new Error(`ICMP echo to ${target}: ${err.message}`));
            else results.get(target)!.sent++;
            resolve();
          });
        });
      }
      if (round < count - 1) await new Promise((r) => setTimeout(r, intervalMs));
    }
    const deadline = Date.now() + timeoutMs;
    while (sentAt.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  } finally {
    sock.close();
  }
  if (errors.length && [...results.values()].every((r) => r.sent === 0)) throw errors[0]!;
  return new Map([...results].map(([t, r]) => [t, { target: t, sent: r.sent, received: r.rtts.length, rttsMs: r.rtts }]));
}
