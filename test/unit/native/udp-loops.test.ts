// The native engine's real forwarding loops (native/tun-to-udp.cc, udp-to-tun.cc)
// on scripted system calls, through the test-only binding: one regression test
// per finding of issue 10, each with a crafted input that the old code got wrong.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native, type NativeForwarderRoute, type ScriptedDatagram } from '../../../native/index.js';
import { fold, ipv4HeaderOk, l4ChecksumOk, pattern, sum16, tcp4, udp4, vnetHdr } from './packet-builders.js';
import { parseIP4 } from '../../../lib/ip.js';

const loops = native().loops;
const off = native().offload;

// This host: 10.244.1.0/24 behind 192.0.2.11; peers h2 (10.244.2.0/24) and h3 (10.244.3.0/24).
const H2 = '192.0.2.12';
const H3 = '192.0.2.13';
const routes: NativeForwarderRoute[] = [
  { subnet: '10.244.2.0', prefixLen: 24, peerIp: H2, port: 8285 },
  { subnet: '10.244.3.0', prefixLen: 24, peerIp: H3, port: 8285 },
];
const base = { ownIp: '10.244.1.0', ownSubnets: [{ subnet: '10.244.1.0', prefixLen: 24 }], routes };

/** n segments of one TCP flow 10.244.2.7 -> 10.244.1.5 with `size` payload bytes each, in sequence. */
function flow(n: number, size: number, seq0 = 1_000_000): Buffer[] {
  return Array.from({ length: n }, (_, i) => tcp4({ src: '10.244.2.7', dst: '10.244.1.5', seq: seq0 + i * size, id: i, payload: pattern(size, i) }));
}

/** GRO messages of up to `per` equal-sized datagrams each, as the kernel's UDP_GRO hands them over. */
function groMessages(from: string, pkts: Buffer[], per = 64): ScriptedDatagram[] {
  const out: ScriptedDatagram[] = [];
  for (let i = 0; i < pkts.length; i += per) {
    const run = pkts.slice(i, i + per);
    out.push({ from, data: Buffer.concat(run), gro: run[0]!.length });
  }
  return out;
}

/** Splits what the loop wrote to a vnet TUN back into the inner packets (offload::Segment), checking each. */
function resplit(writes: { data: Buffer }[]): Buffer[] {
  const out: Buffer[] = [];
  for (const w of writes) {
    const segs = off.segment(w.data.subarray(10), w.data.subarray(0, 10));
    for (const s of segs) {
      assert.ok(ipv4HeaderOk(s), 'IPv4 header checksum of a re-split segment');
      assert.ok(l4ChecksumOk(s), 'TCP checksum of a re-split segment');
      out.push(s);
    }
  }
  return out;
}

const payloadOf = (p: Buffer) => p.subarray(20 + (p[32]! >> 4) * 4);

for (const size of [1, 536, 900, 1007]) {
  test(`overflow: one flow of ${size}-byte segments across 2 GRO messages of one recvmmsg batch is written whole, in bounded writes`, () => {
    const n = size === 1 ? 128 : Math.floor((65535 - 52) / size) + 8; // more than one super-packet's worth, > 64 segments
    const segs = flow(n, size);
    const r = loops.run({ ...base, vnetHdr: true, recvBatches: [groMessages(H2, segs, Math.ceil(n / 2))] });
    assert.ok(r.tunWrites.length > 0);
    for (const w of r.tunWrites) assert.ok(w.iovcnt <= 2 + 64, `a TUN write of ${w.iovcnt} iovecs`);
    const got = resplit(r.tunWrites);
    assert.is(Buffer.concat(got.map(payloadOf)).toString('hex'), Buffer.concat(segs.map(payloadOf)).toString('hex'), 'every byte, in order');
    assert.is(r.stats.rxPackets, n);
    // Segments below the smallest gso_size (32) are never merged: a merged packet must re-split.
    assert.is(r.stats.offload.coalescedWrites > 0, size >= 32, 'segments were merged');
    assert.equal(Object.values(r.stats.drops).filter((x) => x > 0), []);
  });
}

test('coalescer: a flow of 130 small segments becomes super-packets of at most 64 segments each', () => {
  const segs = flow(130, 100);
  const out = off.coalesce(segs);
  const counts = out.map((o) => (o.pkt.length - 52) / 100);
  assert.equal(counts, [64, 64, 2]);
});

test('a super-packet the TUN refuses (EINVAL) is written again segment by segment, as the segments came', () => {
  const segs = flow(10, 1000);
  const r = loops.run({ ...base, vnetHdr: true, mergedWriteErrno: 22, recvBatches: [groMessages(H2, segs)] });
  assert.is(r.tunWrites.length, 10);
  r.tunWrites.forEach((w, i) => assert.ok(w.data.subarray(10).equals(segs[i]!), `segment ${i} as it came`));
  assert.is(r.stats.offload.mergeFallbacks, 1);
  assert.is(r.stats.rxPackets, 10);
});

/** A packet as the TUN hands it over with IFF_VNET_HDR: the virtio header, then the packet. */
const fromTun = (p: Buffer, h: Parameters<typeof vnetHdr>[0] = {}) => Buffer.concat([vnetHdr(h), p]);

test('checksum offset: a non-GSO NEEDS_CSUM packet whose csum_start lies in the IP header is dropped, not rewritten after routing', () => {
  // csum_start 2 + csum_offset 16 would store the checksum over bytes 18-19: the destination address.
  const p = udp4({ src: '10.244.1.5', dst: '10.244.2.7', payload: pattern(100) });
  const bad = [{ csumStart: 2, csumOffset: 16 }, { csumStart: 19, csumOffset: 6 }, { csumStart: 0, csumOffset: 16 }];
  const r = loops.run({ ...base, vnetHdr: true, tunReads: bad.map((h) => fromTun(p, { flags: 1, ...h })) });
  assert.is(r.sent.length, 0, 'nothing sent');
  assert.is(r.stats.drops.malformed, 3);
  assert.is(r.stats.peers[`${H2}:8285`]!.drops.malformed, 3);
  // The same packet with the checksum where it belongs (csum_start 20, offset 6) goes to h2, checksum completed.
  const partial = Buffer.from(p);
  partial.writeUInt16BE(fold(sum16(p, 12, 20) + 17 + p.length - 20), 26); // what the kernel leaves: the pseudo-header sum
  const ok = loops.run({ ...base, vnetHdr: true, tunReads: [fromTun(partial, { flags: 1, csumStart: 20, csumOffset: 6 })] });
  assert.is(ok.sent.length, 1);
  assert.is(ok.sent[0]!.to, `${H2}:8285`);
  assert.is(ok.sent[0]!.data.readUInt32BE(16), parseIP4('10.244.2.7'), 'destination untouched');
  assert.ok(l4ChecksumOk(ok.sent[0]!.data) && ipv4HeaderOk(ok.sent[0]!.data));
});

test('tiny gso_size: a 64 KiB TSO read with gso_size 1 or 31 is dropped; 32 is split and sent in batched GSO messages', () => {
  const sup = tcp4({ src: '10.244.1.5', dst: '10.244.2.7', payload: pattern(65535 - 52) });
  const tso = (gsoSize: number) => fromTun(sup, { gsoType: 1, hdrLen: 52, gsoSize });
  const r = loops.run({ ...base, vnetHdr: true, tunReads: [tso(1), tso(31)] });
  assert.is(r.sent.length, 0);
  assert.is(r.stats.drops.malformed, 2);
  const ok = loops.run({ ...base, vnetHdr: true, tunReads: [tso(32)] });
  const n = Math.ceil((65535 - 52) / 32);
  assert.is(ok.stats.txPackets, n);
  assert.is(ok.sent.length, Math.ceil(n / 64), 'UDP_SEGMENT messages of 64 datagrams');
  let payload = 0;
  for (const m of ok.sent) {
    assert.is(m.segSize, 84);
    for (let o = 0; o < m.data.length; o += m.segSize) {
      const d = m.data.subarray(o, o + m.segSize);
      assert.ok(ipv4HeaderOk(d) && l4ChecksumOk(d));
      payload += d.length - 52;
    }
  }
  assert.is(payload, 65535 - 52);
  assert.throws(() => off.segment(sup, vnetHdr({ gsoType: 1, hdrLen: 52, gsoSize: 31 })), (e: { code?: string }) => e.code === 'bad_gso_size');
});

test('a zero-byte TUN read means drained, with and without the virtio header: not malformed, the next packets still go', () => {
  const p = (i: number) => udp4({ src: '10.244.1.5', dst: '10.244.3.9', id: i, payload: pattern(50, i) });
  for (const vnet of [false, true]) {
    const wrap = (b: Buffer) => (vnet ? fromTun(b) : b);
    const r = loops.run({ ...base, vnetHdr: vnet, tunReads: [wrap(p(1)), Buffer.alloc(0), wrap(p(2)), wrap(p(3))] });
    assert.is(r.stats.drops.malformed, 0, `vnetHdr ${vnet}`);
    assert.is(r.stats.txPackets, 3);
    // With offloads the two equal-sized packets read after the drain leave in one GSO message.
    assert.equal(r.sent.map((s) => s.segSize), vnet ? [0, 78] : [0, 0, 0]);
    assert.ok(r.sent.every((s) => s.to === `${H3}:8285`));
  }
  // A read of the virtio header alone carries no packet: that one is malformed.
  const h = loops.run({ ...base, vnetHdr: true, tunReads: [vnetHdr()] });
  assert.is(h.stats.drops.malformed, 1);
});

test('checksums of single datagrams are verified: a corrupt segment in a flow is never merged, it goes alone as it came', () => {
  const segs = flow(4, 1000);
  segs[1]![100] = segs[1]![100]! ^ 0xff;
  // One datagram per message (no GRO): the outer UDP checksum may have been 0, nothing vouches for the bytes.
  const r = loops.run({ ...base, vnetHdr: true, recvBatches: [segs.map((data) => ({ from: H2, data }))] });
  const gso = r.tunWrites.filter((w) => w.data[1] !== 0);
  assert.is(gso.length, 1, 'only segments 2 and 3 merge');
  assert.ok(r.tunWrites.some((w) => w.data.subarray(10).equals(segs[1]!)), 'the corrupt one is written unchanged (the kernel drops it)');
  assert.ok(!gso.some((w) => w.data.includes(payloadOf(segs[1]!))), 'and never inside a super-packet');
});

test('the datagrams of a GRO message are not summed again: the kernel verified their UDP checksum, which covers every inner byte', () => {
  // The kernel's UDP GRO takes only datagrams with a non-zero, valid UDP checksum. A wrong
  // inner TCP checksum inside one is what its sender wrote (and could have written right):
  // it merges like the others, and the super-packet's re-split segments carry valid checksums.
  const segs = flow(4, 1000);
  segs[1]!.writeUInt16BE(segs[1]!.readUInt16BE(36) ^ 0x5555, 36);
  const r = loops.run({ ...base, vnetHdr: true, recvBatches: [groMessages(H2, segs)] });
  assert.is(r.tunWrites.length, 1, 'all four in one super-packet');
  assert.is(r.tunWrites[0]!.data[1], 1, 'GSO_TCPV4');
  assert.equal(resplit(r.tunWrites).map(payloadOf), segs.map(payloadOf));
});

test('ICMP net-unreachable into the TUN is rate-limited (burst 50, 1000/s) and counts what it suppresses; a failed write is no icmpSent', () => {
  const strays = Array.from({ length: 200 }, (_, i) => udp4({ src: '10.244.1.5', dst: '10.244.250.9', id: i, payload: pattern(8, i) }));
  const burst = loops.run({ ...base, tunReads: strays });
  assert.is(burst.stats.drops.no_route, 200);
  assert.is(burst.stats.icmpSent, 50);
  assert.is(burst.stats.icmpSuppressed, 150);
  assert.is(burst.tunWrites.length, 50);
  const w = burst.tunWrites[0]!.data;
  assert.is(w[20], 3, 'ICMP destination unreachable');
  assert.is(w.readUInt32BE(16), parseIP4('10.244.1.5'), 'back to the sender');
  // One read per millisecond: a token per read at 1000/s, nothing held back.
  const paced = loops.run({ ...base, vnetHdr: true, nsPerRead: 1_000_000, tunReads: strays.map((p) => fromTun(p)) });
  assert.is(paced.stats.icmpSent, 200);
  assert.is(paced.stats.icmpSuppressed, 0);
  const failed = loops.run({ ...base, tunWriteErrno: 5, tunReads: strays.slice(0, 3) });
  assert.is(failed.stats.icmpSent, 0);
  assert.is(failed.stats.drops.tun_write_error, 3);
});

test('trust model: a peer\'s datagram from inside its subnet but not to this host is a wrong_destination drop, charged to it', () => {
  const to = (dst: string, i: number) => udp4({ src: '10.244.2.7', dst, id: i, payload: pattern(40, i) });
  const pkts = [to('10.244.1.5', 0), to('10.244.3.9', 1), to('8.8.8.8', 2), to('10.244.1.255', 3), to('255.255.255.255', 4)];
  for (const vnet of [false, true]) {
    const r = loops.run({ ...base, vnetHdr: vnet, recvBatches: [pkts.map((data) => ({ from: H2, data }))] });
    assert.is(r.stats.drops.wrong_destination, 2 + 1, `vnetHdr ${vnet}`);
    assert.is(r.stats.peers[`${H2}:8285`]!.drops.wrong_destination, 3);
    assert.equal(r.tunWrites.map((w) => w.data.subarray(vnet ? 10 : 0).readUInt32BE(16)), [parseIP4('10.244.1.5'), parseIP4('10.244.1.255')]);
  }
});

test.run();
