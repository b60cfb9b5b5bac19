// The udp forwarder's packet rules on byte vectors: header parsing, checksum,
// TTL decrement (checked against an independent full recomputation), ICMP
// net-unreachable bytes, and the send/receive verdicts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  buildNetUnreachable, checkDatagram, decrementTtl, icmpErrorAllowed, internetChecksum, parseIpHeader, routeFromTun, TokenBucket,
} from '../../../../backend/udp/packet.js';
import { ForwardingTable } from '../../../../backend/udp/table.js';
import { parseIP4 } from '../../../../lib/ip.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Checksum the slow, obvious way, independent of packet.ts: 32-bit sum of 16-bit words, folded. */
function referenceChecksum(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += i + 1 < b.length ? dv.getUint16(i) : b[i]! * 256;
  while (sum >>> 16) sum = (sum & 0xffff) + (sum >>> 16);
  return 0xffff - sum;
}

/** An IPv4 packet src -> dst, protocol, TTL, payload; with a correct header checksum. */
function ipv4(src: string, dst: string, opts: { ttl?: number; proto?: number; payload?: Buffer; frag?: number; ihl?: number } = {}): Buffer {
  const ihl = opts.ihl ?? 5;
  const payload = opts.payload ?? Buffer.from('0800f7ff00000000', 'hex'); // ICMP echo request
  const h = Buffer.alloc(ihl * 4);
  h[0] = 0x40 | ihl;
  h.writeUInt16BE(h.length + payload.length, 2);
  h.writeUInt16BE(0x1234, 4);
  h.writeUInt16BE(opts.frag ?? 0x4000, 6);
  h[8] = opts.ttl ?? 64;
  h[9] = opts.proto ?? 1;
  h.writeUInt32BE(parseIP4(src), 12);
  h.writeUInt32BE(parseIP4(dst), 16);
  h.writeUInt16BE(referenceChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

function ipv6(payloadLen: number): Buffer {
  const b = Buffer.alloc(40 + payloadLen);
  b[0] = 0x60;
  b.writeUInt16BE(payloadLen, 4);
  b[6] = 58;
  b[7] = 64;
  return b;
}

test('parseIpHeader reads IPv4 and IPv6 headers', () => {
  const p = ipv4('10.244.1.2', '10.244.2.3', { ttl: 17, proto: 6 });
  assert.equal(parseIpHeader(p), {
    version: 4, headerLen: 20, totalLen: 28, ttl: 17, protocol: 6, fragOffset: 0, src: parseIP4('10.244.1.2'), dst: parseIP4('10.244.2.3'),
  });
  assert.equal(parseIpHeader(ipv6(8)), { version: 6, headerLen: 40, totalLen: 48, hopLimit: 64, nextHeader: 58, src: 0n, dst: 0n });
  const opts = ipv4('10.0.0.1', '10.0.0.2', { ihl: 6 });
  assert.is((parseIpHeader(opts) as { headerLen: number }).headerLen, 24);
});

test('parseIpHeader says why a packet is malformed', () => {
  assert.match(parseIpHeader(Buffer.alloc(0)) as string, /empty/);
  assert.match(parseIpHeader(Buffer.from([0x45, 0, 0, 19])) as string, /IPv4 packet of 4 bytes is shorter than a header/);
  const ihl4 = ipv4('10.0.0.1', '10.0.0.2');
  ihl4[0] = 0x44;
  assert.match(parseIpHeader(ihl4) as string, /IHL 4 is below 5/);
  const ihlLong = Buffer.alloc(24);
  ihlLong[0] = 0x4f; // 60-byte header in a 24-byte packet
  assert.match(parseIpHeader(ihlLong) as string, /header of 60 bytes is longer than the 24-byte packet/);
  assert.match(parseIpHeader(Buffer.alloc(39, 0x60)) as string, /IPv6 packet of 39 bytes/);
  assert.match(parseIpHeader(Buffer.from([0x55, 0, 0, 0])) as string, /IP version 5 is neither 4 nor 6/);
});

test('internetChecksum matches a textbook IPv4 header (checksum b861) and odd lengths', () => {
  const h = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
  assert.is(internetChecksum(h).toString(16), 'b861');
  assert.is(referenceChecksum(h).toString(16), 'b861');
  const odd = Buffer.from([1, 2, 3, 4, 5]);
  assert.is(internetChecksum(odd), referenceChecksum(odd));
});

test('decrementTtl: TTL - 1 and the incrementally updated checksum equals a full recomputation (10,000 random headers)', () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
  for (let i = 0; i < 10_000; i++) {
    const h = Buffer.alloc(20);
    for (let k = 0; k < 20; k++) h[k] = rnd() & 0xff;
    h[0] = 0x45;
    h[8] = 2 + (rnd() % 254);
    h.writeUInt16BE(0, 10);
    h.writeUInt16BE(referenceChecksum(h), 10);
    const ttl = h[8]!;
    decrementTtl(h);
    assert.is(h[8], ttl - 1);
    const got = h.readUInt16BE(10);
    h.writeUInt16BE(0, 10);
    const want = referenceChecksum(h);
    if (got !== want) assert.unreachable(`header ${i} TTL ${ttl}: incremental ${got.toString(16)}, recomputed ${want.toString(16)}`);
  }
});

test('buildNetUnreachable: the exact bytes of ICMP type 3 code 0 quoting header + 8 bytes', () => {
  const orig = ipv4('10.244.1.2', '10.244.250.9', { payload: hex('0800 1122 3344 5566 7788 99aa') });
  const out = buildNetUnreachable(orig, parseIP4('10.244.1.0'));
  const want = Buffer.concat([
    hex('45c0 0038 0000 0000 4001 0000 0af4 0100 0af4 0102'),
    hex('0300 0000 0000 0000'),
    orig.subarray(0, 28),
  ]);
  want.writeUInt16BE(referenceChecksum(want.subarray(0, 20)), 10);
  want.writeUInt16BE(referenceChecksum(want.subarray(20)), 22);
  assert.is(out.toString('hex'), want.toString('hex'));
  assert.is(referenceChecksum(out.subarray(0, 20)), 0, 'IP header verifies');
  assert.is(referenceChecksum(out.subarray(20)), 0, 'ICMP message verifies');
  // A packet shorter than header + 8 is quoted whole.
  const short = ipv4('10.244.1.2', '10.244.250.9', { payload: hex('0800') });
  const s = buildNetUnreachable(short, parseIP4('10.244.1.0'));
  assert.is(s.length, 28 + 22);
  assert.is(s.readUInt16BE(2), 50);
});

test('icmpErrorAllowed follows RFC 1812: never about ICMP errors, later fragments or multicast/zero addresses', () => {
  const ok = (p: Buffer) => icmpErrorAllowed(p, parseIpHeader(p) as any);
  assert.ok(ok(ipv4('10.244.1.2', '10.244.250.9')), 'echo request');
  assert.ok(ok(ipv4('10.244.1.2', '10.244.250.9', { proto: 6, payload: Buffer.alloc(20) })), 'tcp');
  assert.not.ok(ok(ipv4('10.244.1.2', '10.244.250.9', { payload: hex('0300 0000 0000 0000') })), 'dest unreachable');
  assert.not.ok(ok(ipv4('10.244.1.2', '10.244.250.9', { payload: hex('0b00 0000 0000 0000') })), 'time exceeded');
  assert.not.ok(ok(ipv4('10.244.1.2', '10.244.250.9', { frag: 0x2005 })), 'non-first fragment');
  assert.not.ok(ok(ipv4('0.0.0.0', '10.244.250.9')), 'zero source');
  assert.not.ok(ok(ipv4('10.244.1.2', '239.1.1.1')), 'multicast destination');
  assert.not.ok(ok(ipv4('10.244.1.2', '255.255.255.255')), 'broadcast');
});

const table = new ForwardingTable([
  { subnet: '10.244.2.0/24', peerIp: '192.0.2.12', port: 8285 },
  { subnet: '10.244.3.0/24', peerIp: '192.0.2.13', port: 8285 },
  { subnet: '10.244.3.128/25', peerIp: '192.0.2.14', port: 8285 },
  { subnet: '10.244.9.9/32', peerIp: '192.0.2.13', port: 8285 },
  { subnet: '10.0.0.0/8', peerIp: '192.0.2.99', port: 9999 },
]);
const own = parseIP4('10.244.1.0');
const lookup = (d: number) => table.lookup(d);

test('ForwardingTable: longest prefix wins, /32 and /8 included, misses are undefined', () => {
  const peer = (ip: string) => table.lookup(parseIP4(ip))?.peerIp;
  assert.is(peer('10.244.2.77'), '192.0.2.12');
  assert.is(peer('10.244.3.5'), '192.0.2.13');
  assert.is(peer('10.244.3.200'), '192.0.2.14');
  assert.is(peer('10.244.9.9'), '192.0.2.13');
  assert.is(peer('10.244.9.8'), '192.0.2.99');
  assert.is(peer('11.0.0.1'), undefined);
  assert.is(new ForwardingTable([{ subnet: '0.0.0.0/0', peerIp: '192.0.2.1', port: 1 }]).lookup(parseIP4('8.8.8.8'))?.peerIp, '192.0.2.1');
  assert.equal(table.routesOf('192.0.2.13')!.map((r) => r.subnet), ['10.244.3.0/24', '10.244.9.9/32']);
  assert.is(table.routesOf('192.0.2.250'), undefined);
  assert.throws(() => new ForwardingTable([{ subnet: '10.244.3.1/24', peerIp: '192.0.2.1', port: 1 }]), /host bits/);
  assert.throws(() => new ForwardingTable([{ subnet: '10.244.3.0/24', peerIp: 'nope', port: 1 }]), /invalid IPv4/);
});

test('routeFromTun: a routed packet is sent with TTL - 1 and a valid checksum', () => {
  const p = ipv4('10.244.1.2', '10.244.3.200', { ttl: 63 });
  const v = routeFromTun(p, lookup, own);
  assert.is(v.action, 'send');
  assert.is((v as { route: { peerIp: string } }).route.peerIp, '192.0.2.14');
  assert.is(p[8], 62);
  assert.is(referenceChecksum(p.subarray(0, 20)), 0);
});

test('routeFromTun: TTL 1 and 0 are ttl drops, untouched, with an ICMP time exceeded back to the sender; none about an ICMP error', () => {
  for (const ttl of [0, 1]) {
    const p = ipv4('10.244.1.2', '10.244.2.3', { ttl, payload: hex('0800 f7ff 0000 0000 aabb') });
    const copy = Buffer.from(p);
    const v = routeFromTun(p, lookup, own) as { action: string; reason: string; route: unknown; icmp?: Buffer };
    assert.equal({ ...v, icmp: undefined }, { action: 'drop', reason: 'ttl', route: table.routesOf('192.0.2.12')![0], icmp: undefined }, 'counted against the peer it was for');
    assert.equal(p, copy);
    const icmp = v.icmp!;
    assert.is(icmp.length, 20 + 8 + 20 + 8, 'its header and 8 bytes quoted');
    assert.is(icmp.readUInt32BE(12), own, 'from the TUN\'s address');
    assert.is(icmp.readUInt32BE(16), parseIP4('10.244.1.2'), 'to the sender');
    assert.equal([icmp[20], icmp[21]], [11, 0], 'time exceeded in transit');
    assert.equal(icmp.subarray(28), p.subarray(0, 28));
    assert.is(referenceChecksum(icmp.subarray(0, 20)), 0);
    assert.is(referenceChecksum(icmp.subarray(20)), 0);
  }
  const err = ipv4('10.244.1.2', '10.244.2.3', { ttl: 1, proto: 1, payload: hex('0b00 0000 0000 0000') });
  assert.equal(routeFromTun(err, lookup, own), { action: 'drop', reason: 'ttl', route: table.routesOf('192.0.2.12')![0] });
});

test('routeFromTun: no route -> no_route with an ICMP net unreachable back to the sender; none for ICMP errors or IPv6', () => {
  const p = ipv4('10.244.1.2', '172.16.0.1');
  const v = routeFromTun(p, lookup, own) as { action: string; reason: string; icmp?: Buffer };
  assert.is(v.reason, 'no_route');
  assert.ok(v.icmp);
  assert.equal(v.icmp, buildNetUnreachable(p, own));
  assert.is(v.icmp!.readUInt32BE(12), own);
  assert.is(v.icmp!.readUInt32BE(16), parseIP4('10.244.1.2'));
  const err = ipv4('10.244.1.2', '172.16.0.1', { payload: hex('0300 0000 0000 0000') });
  assert.equal(routeFromTun(err, lookup, own), { action: 'drop', reason: 'no_route' });
  assert.equal(routeFromTun(ipv6(8), lookup, own), { action: 'drop', reason: 'no_route' });
  assert.equal(routeFromTun(Buffer.from([0x45, 0, 0]), lookup, own), { action: 'drop', reason: 'malformed' });
  assert.equal(routeFromTun(Buffer.alloc(20, 0x15), lookup, own), { action: 'drop', reason: 'malformed' });
});

test('checkDatagram: only a known peer, with a whole packet whose source is in its subnet, is delivered', () => {
  const of = (ip: string) => table.routesOf(ip);
  const mine = [{ net: parseIP4('10.244.1.0'), prefixLen: 24 }];
  const good = ipv4('10.244.3.7', '10.244.1.2');
  const ok = checkDatagram(good, of('192.0.2.13'), mine);
  assert.ok(ok.ok);
  assert.is((ok as { route: { subnet: string } }).route.subnet, '10.244.3.0/24');
  assert.ok(checkDatagram(ipv4('10.244.9.9', '10.244.1.2'), of('192.0.2.13'), mine).ok, 'its /32 too');
  assert.equal(checkDatagram(good, of('192.0.2.250'), mine), { ok: false, reason: 'unknown_peer' });
  assert.equal(checkDatagram(Buffer.from('garbage'), of('192.0.2.250'), mine), { ok: false, reason: 'unknown_peer' }, 'strangers first');
  assert.equal(checkDatagram(ipv4('10.244.2.7', '10.244.1.2'), of('192.0.2.13'), mine), { ok: false, reason: 'spoofed_source' });
  assert.equal(checkDatagram(ipv4('10.244.3.200', '10.244.1.2'), of('192.0.2.13'), mine), { ok: true, route: table.routesOf('192.0.2.13')![0] },
    'inside the peer\'s /24 even though 192.0.2.14 owns the /25 for routing');
  assert.equal(checkDatagram(ipv6(8), of('192.0.2.13'), mine), { ok: false, reason: 'spoofed_source' });
  // From a real peer, from inside its subnet, but not to this host: another peer's subnet, the world, broadcast.
  for (const dst of ['10.244.2.7', '8.8.8.8', '255.255.255.255', '10.244.3.9']) {
    assert.equal(checkDatagram(ipv4('10.244.3.7', dst), of('192.0.2.13'), mine), { ok: false, reason: 'wrong_destination' }, dst);
  }
  assert.equal(checkDatagram(ipv4('10.244.3.7', '10.244.1.0'), of('192.0.2.13'), mine).ok, true, 'this host\'s own overlay address');
  assert.equal(checkDatagram(good, of('192.0.2.13'), []), { ok: false, reason: 'wrong_destination' }, 'no own subnet: nothing is ours');
  const malformed = [
    Buffer.alloc(0),
    Buffer.alloc(10, 0x45),
    Buffer.concat([good, Buffer.from([0])]), // longer than the header says
    good.subarray(0, good.length - 1), // shorter
    ipv6(8).subarray(0, 47),
    Buffer.concat([Buffer.from([0x75]), good.subarray(1)]), // version 7
  ];
  for (const m of malformed) assert.equal(checkDatagram(m, of('192.0.2.13'), mine), { ok: false, reason: 'malformed' }, m.toString('hex'));
});

test('TokenBucket: a burst, then one token per 1/perSecond', () => {
  let now = 0;
  const b = new TokenBucket(1000, 50, () => now);
  let took = 0;
  for (let i = 0; i < 200; i++) if (b.take()) took++;
  assert.is(took, 50);
  now += 10;
  took = 0;
  for (let i = 0; i < 20; i++) if (b.take()) took++;
  assert.is(took, 10);
  now += 1e6;
  took = 0;
  for (let i = 0; i < 200; i++) if (b.take()) took++;
  assert.is(took, 50, 'never more than the burst');
});

test.run();
