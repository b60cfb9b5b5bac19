// Property tests of the udp forwarder's receive and send checks: the TypeScript rules
// (backend/udp/packet.ts, the dgram engine's) and the C++ forwarder's (native/ipv4.cc through the
// test-only binding, and the real loops of native/tun-to-udp.cc and udp-to-tun.cc on scripted
// system calls) must agree on every packet: the same verdict, the same drop reason, the same
// bytes out. Neither may throw. Inputs: random bytes, valid IPv4 and IPv6 UDP/TCP packets with
// random addresses near the table's subnets of both families, and those packets mutated. packet-asan.test.ts runs this
// file again on the ASan+UBSan build of the addon.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { fc, property } from '../../property.js';
import { native, type NativeForwarderRoute, type NativePrefix, type ScriptedDatagram } from '../../../../native/index.js';
import {
  buildIcmp6Error, buildIcmpError, buildNetUnreachable, buildNoRoute6, checkDatagram, datagramTarget, decrementTtl, icmp6ErrorAllowed, icmpErrorAllowed, parseIpHeader, routeFromTun, type Net4, type Net6,
} from '../../../../backend/udp/packet.js';
import { ForwardingTable } from '../../../../backend/udp/table.js';
import { formatIP4, formatIpNumber, ipNumber, parseIP4 } from '../../../../lib/ip.js';
import { icmp6, tcp4, tcp6, udp4, udp6 } from '../../native/packet-builders.js';

const v4 = native().ipv4;
const loops = native().loops;

/** Addresses crowd 10.244.0.0/22 (and a few elsewhere) so that they hit, miss and straddle the subnets. */
const addr = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: parseIP4('10.244.0.0'), max: parseIP4('10.244.3.255') }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 0xffffffff, parseIP4('224.0.0.1'), parseIP4('8.8.8.8'), parseIP4('10.9.9.9')) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
).map((n) => formatIP4(n >>> 0));
const PEERS = ['192.0.2.12', '192.0.2.13', '192.0.2.14'];
/** The peers' IPv6 underlay addresses (a table "over IPv6" knows them). */
const PEER6: Record<string, string> = { '192.0.2.12': '2001:db8::12', '192.0.2.13': '2001:db8::13', '192.0.2.14': '2001:db8::14' };
/** Senders as a socket reports them: IPv4, IPv6, and IPv4 v4-mapped (an IPv6 socket's IPv4 senders); strangers of each. */
const sender = fc.constantFrom(...PEERS, '192.0.2.250', '2001:db8::12', '2001:db8::13', '::ffff:192.0.2.14', '2001:db8::250', '::ffff:192.0.2.250');
const prefix = fc.tuple(fc.integer({ min: parseIP4('10.244.0.0'), max: parseIP4('10.244.3.255') }), fc.integer({ min: 16, max: 32 })).map(([n, len]) => {
  const net = (n & (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)) >>> 0;
  return { subnet: formatIP4(net), prefixLen: len };
});
/** IPv6 addresses crowd fd00::/62 (and a few special ones) likewise. */
const BASE6 = ipNumber('fd00::').n;
const addr6 = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.boolean()).map(([s, lo, small]) => formatIpNumber(BASE6 | (BigInt(s) << 64n) | (small ? lo & 0xffn : lo), 6)) },
  { weight: 1, arbitrary: fc.constantFrom('::', '::1', 'ff02::1', 'fe80::1', '2001:db8::1', 'fd00:0:0:9::1') },
);
const prefix6 = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 48, max: 128 })).map(([s, lo, len]) => {
  const n = BASE6 | (BigInt(s) << 64n) | lo;
  const net = n & (((1n << 128n) - 1n) ^ ((1n << BigInt(128 - len)) - 1n));
  return { subnet: formatIpNumber(net, 6), prefixLen: len };
});
const anyPrefix = fc.oneof({ weight: 2, arbitrary: prefix }, { weight: 1, arbitrary: prefix6 });
/**
 * A forwarding table as the lease table would make it: distinct subnets (they may nest), each to one peer;
 * in a dual-stack table every peer is known by its IPv6 underlay address too, and over6 sends there.
 */
const routes = fc.tuple(
  fc.uniqueArray(fc.tuple(anyPrefix, fc.constantFrom(...PEERS), fc.constantFrom(8285, 9999)), { maxLength: 6, selector: ([p]) => `${p.subnet}/${p.prefixLen}` }),
  fc.constantFrom('ipv4', 'dual', 'over6'),
).map(([rs, u]) => rs.map(([p, peerIp, port]): NativeForwarderRoute => ({
  ...p, peerIp, port, ...(u !== 'ipv4' ? { peerIp6: PEER6[peerIp]! } : {}), ...(u === 'over6' ? { over6: true } : {}),
})));
const ownSubnets = fc.array(anyPrefix, { minLength: 1, maxLength: 3 });
const OWN_IP6 = 'fd00:0:0:1::';

const l4v4 = fc.record({ src: addr, dst: addr, ttl: fc.integer({ min: 0, max: 255 }), len: fc.nat({ max: 120 }), tcp: fc.boolean(), df: fc.boolean() })
  .map((o) => (o.tcp ? tcp4 : udp4)({ src: o.src, dst: o.dst, ttl: o.ttl, df: o.df, payload: Buffer.alloc(o.len, 0x5a) }));
const l4v6 = fc.record({ src: addr6, dst: addr6, hopLimit: fc.integer({ min: 0, max: 255 }), len: fc.nat({ max: 120 }), kind: fc.constantFrom('tcp', 'udp', 'icmp-error', 'echo') })
  .map((o) => {
    const base = { src: o.src, dst: o.dst, hopLimit: o.hopLimit };
    if (o.kind === 'tcp') return tcp6({ ...base, payload: Buffer.alloc(o.len, 0x5a) });
    if (o.kind === 'udp') return udp6({ ...base, payload: Buffer.alloc(o.len, 0x5a) });
    return icmp6({ ...base, type: o.kind === 'echo' ? 128 : 1, body: Buffer.alloc(4 + o.len, 0x33) });
  });
const l4 = fc.oneof({ weight: 2, arbitrary: l4v4 }, { weight: 1, arbitrary: l4v6 });
const mutation = fc.oneof(
  fc.record({ t: fc.constant('set' as const), at: fc.nat({ max: 60 }), v: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ t: fc.constant('cut' as const), at: fc.nat({ max: 200 }), v: fc.constant(0) }),
  fc.record({ t: fc.constant('grow' as const), at: fc.nat({ max: 8 }), v: fc.integer({ min: 0, max: 255 }) }),
);
const packet = fc.oneof(
  { weight: 4, arbitrary: l4 },
  { weight: 4, arbitrary: fc.tuple(l4, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([p, ms]) => {
    let b = Buffer.from(p);
    for (const m of ms) {
      if (m.t === 'set' && b.length) b[m.at % b.length] = m.v;
      else if (m.t === 'cut') b = b.subarray(0, m.at % (b.length + 1));
      else if (m.t === 'grow') b = Buffer.concat([b, Buffer.alloc(m.at, m.v)]);
    }
    return b;
  }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)) },
  { weight: 1, arbitrary: fc.tuple(fc.nat({ max: 60 }), fc.uint8Array({ maxLength: 70 })).map(([plen, rest]) => { // IPv6-looking
    const b = Buffer.concat([Buffer.alloc(40), Buffer.from(rest)]); b[0] = 0x60; b.writeUInt16BE(plen, 4); return b;
  }) },
);

const tsTable = (rs: readonly NativeForwarderRoute[]) => new ForwardingTable(rs.map((r) => ({
  subnet: `${r.subnet}/${r.prefixLen}`, peerIp: r.peerIp, port: r.port, ...(r.peerIp6 ? { peerIp6: r.peerIp6 } : {}), ...(r.over6 ? { over6: true } : {}),
})));
/** A table whose peers have IPv6 underlay addresses runs on an IPv6 socket. */
const v6Socket = (rs: readonly NativeForwarderRoute[]) => rs.some((r) => r.peerIp6 !== undefined);
/** Where the dgram engine sends a route's datagrams, as the C++ loop reports its sockaddr. */
const sentTo = (r: { peerIp: string; port: number; peerIp6?: string; over6?: boolean }, v6: boolean) => {
  const a = datagramTarget(r, v6);
  return a.includes(':') ? `[${a}]:${r.port}` : `${a}:${r.port}`;
};
const nets = (os: readonly NativePrefix[]): Net4[] => os.filter((o) => !o.subnet.includes(':')).map((o) => ({ net: parseIP4(o.subnet), prefixLen: o.prefixLen }));
const nets6 = (os: readonly NativePrefix[]): Net6[] => os.filter((o) => o.subnet.includes(':')).map((o) => ({ net6: ipNumber(o.subnet).n, prefixLen: o.prefixLen }));
/** The TypeScript verdict on a received datagram, in the C++ binding's terms. */
const tsReceive = (pkt: Buffer, from: string, t: ForwardingTable, own: readonly NativePrefix[]) => {
  const v = checkDatagram(pkt, t.routesOf(from), nets(own), nets6(own));
  return v.ok ? null : v.reason;
};
/** The TypeScript verdict on a packet from the TUN, with the IPv6 half on. */
const tsSend = (pkt: Buffer, t: ForwardingTable) => routeFromTun(pkt, (d) => t.lookup(d), parseIP4('10.244.1.0'), { lookup6: (d) => t.lookup6(d), ownIp6: ipNumber(OWN_IP6).n });

property('receive: checkDatagram (TypeScript) and ipv4::CheckDatagram (C++) give the same verdict on every datagram', fc.property(packet, sender, routes, ownSubnets, (pkt, from, rs, own) => {
  const ts = tsReceive(pkt, from, tsTable(rs), own);
  assert.is(v4.checkDatagram(pkt, from, rs, own), ts);
}));

property('send: routeFromTun (TypeScript) and the C++ verdict agree on drop reason, peer, ICMP and the bytes sent', fc.property(packet, routes, (pkt, rs) => {
  const t = tsTable(rs);
  const tsPkt = Buffer.from(pkt);
  const ts = tsSend(tsPkt, t);
  const cc = v4.routeFromTun(Buffer.from(pkt), rs);
  assert.equal(
    { drop: cc.drop, peer: cc.peer, icmp: cc.icmp, pkt: cc.pkt.toString('hex') },
    { drop: ts.action === 'drop' ? ts.reason : null, peer: ts.route ? `${ts.route.peerIp}:${ts.route.port}` : null, icmp: ts.action === 'drop' && ts.icmp !== undefined, pkt: tsPkt.toString('hex') },
  );
  if (ts.action === 'drop' && ts.icmp) {
    const cIcmp = v4.buildTunError(ts.reason as 'no_route' | 'ttl', pkt, '10.244.1.0', OWN_IP6);
    assert.is(cIcmp.toString('hex'), ts.icmp.toString('hex'));
  }
}));

property('ICMPv6 rules and the error built agree byte for byte on any IPv6 header', fc.property(packet.filter((p) => typeof parseIpHeader(p) !== 'string' && p[0]! >> 4 === 6), (pkt) => {
  const h = parseIpHeader(pkt) as Extract<ReturnType<typeof parseIpHeader>, { version: 6 }>;
  assert.is(v4.icmp6Allowed(pkt), icmp6ErrorAllowed(pkt, h));
  assert.is(v4.buildTunError('no_route', pkt, '10.244.1.0', OWN_IP6).toString('hex'), buildNoRoute6(pkt, ipNumber(OWN_IP6).n).toString('hex'));
  assert.is(v4.buildTunError('ttl', pkt, '10.244.1.0', OWN_IP6).toString('hex'), buildIcmp6Error(pkt, ipNumber(OWN_IP6).n, 3, 0).toString('hex'));
}));

property('ICMP rules, the error built and the TTL decrement agree byte for byte on any IPv4 header', fc.property(packet.filter((p) => typeof parseIpHeader(p) !== 'string' && p[0]! >> 4 === 4), (pkt) => {
  const h = parseIpHeader(pkt) as Extract<ReturnType<typeof parseIpHeader>, { version: 4 }>;
  assert.is(v4.icmpAllowed(pkt), icmpErrorAllowed(pkt, h));
  assert.is(v4.buildTunError('no_route', pkt, '10.244.1.0').toString('hex'), buildNetUnreachable(pkt, parseIP4('10.244.1.0')).toString('hex'));
  assert.is(v4.buildTunError('ttl', pkt, '10.244.1.0').toString('hex'), buildIcmpError(pkt, parseIP4('10.244.1.0'), 11, 0).toString('hex'));
  if (h.ttl > 1) {
    const ts = Buffer.from(pkt);
    decrementTtl(ts);
    assert.is(v4.decrementTtl(Buffer.from(pkt)).toString('hex'), ts.toString('hex'));
  }
}));

/** Up to 3 recvmmsg batches of datagrams from peers and strangers. */
const batches = fc.array(fc.array(fc.record({ from: sender, data: packet }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 });

property('the real UDP -> TUN loop writes exactly the datagrams checkDatagram accepts, in order, and counts each drop by the same reason', fc.property(batches, routes, ownSubnets, (bs, rs, own) => {
  const t = tsTable(rs);
  const want: string[] = [];
  const drops: Record<string, number> = {};
  for (const d of bs.flat()) {
    const v = tsReceive(d.data, d.from, t, own);
    if (v === null) want.push(d.data.toString('hex'));
    else drops[v] = (drops[v] ?? 0) + 1;
  }
  // An IPv4 socket cannot receive from IPv6 senders: those batches need the IPv6 socket.
  const r = loops.run({ ownIp: '10.244.1.0', ownSubnets: own, routes: rs, recvBatches: bs as ScriptedDatagram[][], v6Socket: true });
  assert.equal(r.tunWrites.map((w) => w.data.toString('hex')), want);
  assert.equal(Object.fromEntries(Object.entries(r.stats.drops).filter(([, n]) => n > 0)), drops);
}), 0.5);

property('the real TUN -> UDP loop sends what routeFromTun routes, to the same peer, and writes the same ICMP errors', fc.property(fc.array(packet, { minLength: 1, maxLength: 20 }), routes, (reads, rs) => {
  const t = tsTable(rs);
  const sent: string[] = [];
  const icmp: string[] = [];
  for (const p of reads) {
    if (p.length === 0) continue; // a zero-byte read is no packet
    const b = Buffer.from(p);
    const v = tsSend(b, t);
    if (v.action === 'send') sent.push(`${sentTo(v.route, v6Socket(rs))} ${b.toString('hex')}`);
    else if (v.icmp) icmp.push(v.icmp.toString('hex'));
  }
  const r = loops.run({ ownIp: '10.244.1.0', ownIp6: OWN_IP6, ownSubnets: [{ subnet: '10.244.1.0', prefixLen: 24 }, { subnet: 'fd00:0:0:1::', prefixLen: 64 }], routes: rs, tunReads: reads, v6Socket: v6Socket(rs) });
  assert.equal(r.sent.map((s) => `${s.to} ${s.data.toString('hex')}`), sent);
  assert.equal(r.tunWrites.map((w) => w.data.toString('hex')), icmp);
}), 0.5);

test('the generators reach every receive verdict and every send outcome', () => {
  const seen = new Set<string>();
  for (const [pkt, from, rs, own] of fc.sample(fc.tuple(packet, sender, routes, ownSubnets), { numRuns: 3000, seed: 7 })) {
    const fam = pkt.length > 0 && pkt[0]! >> 4 === 6 ? '6:' : '';
    seen.add(fam + String(tsReceive(pkt, from, tsTable(rs), own)));
    const v = tsSend(Buffer.from(pkt), tsTable(rs));
    seen.add(fam + (v.action === 'send' ? 'send' : `${v.reason}${v.icmp ? '+icmp' : ''}`));
  }
  for (const fam of ['', '6:']) {
    for (const k of ['null', 'malformed', 'unknown_peer', 'spoofed_source', 'wrong_destination', 'send', 'no_route', 'no_route+icmp', 'ttl+icmp']) assert.ok(seen.has(fam + k), `${fam}${k} never generated`);
  }
});

test.run();
