// One set of vectors for the udp forwarder's IPv4 rules, run against both
// engines' implementations: native/ipv4.cc (through the test-only binding) and
// backend/udp/packet.ts. They must agree on every verdict and every byte.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native, type NativeForwarderRoute } from '../../../../native/index.js';
import {
  buildIcmpError, buildNetUnreachable, checkDatagram, decrementTtl, ICMP_EXC_TTL, ICMP_TIME_EXCEEDED, icmpErrorAllowed, parseIpHeader, routeFromTun, type Net4,
} from '../../../../backend/udp/packet.js';
import { ForwardingTable } from '../../../../backend/udp/table.js';
import { formatIP4, parseIP4 } from '../../../../lib/ip.js';
import { pattern, tcp4, udp4 } from '../../native/packet-builders.js';

const v4 = native().ipv4;

const routes: NativeForwarderRoute[] = [
  { subnet: '10.244.2.0', prefixLen: 24, peerIp: '192.0.2.12', port: 8285 },
  { subnet: '10.244.3.0', prefixLen: 24, peerIp: '192.0.2.13', port: 8285 },
  { subnet: '10.244.3.128', prefixLen: 25, peerIp: '192.0.2.14', port: 8285 },
  { subnet: '10.244.9.9', prefixLen: 32, peerIp: '192.0.2.13', port: 8285 },
  { subnet: '10.0.0.0', prefixLen: 8, peerIp: '192.0.2.99', port: 9999 },
];
const table = new ForwardingTable(routes.map((r) => ({ subnet: `${r.subnet}/${r.prefixLen}`, peerIp: r.peerIp, port: r.port })));
const ownNets: Net4[] = [{ net: parseIP4('10.244.1.0'), prefixLen: 24 }, { net: parseIP4('10.244.77.0'), prefixLen: 26 }];
const ownSubnets = ownNets.map((p) => ({ subnet: formatIP4(p.net), prefixLen: p.prefixLen }));

const mutate = (p: Buffer, f: (b: Buffer) => void) => {
  const b = Buffer.from(p);
  f(b);
  return b;
};
const good = udp4({ src: '10.244.3.7', dst: '10.244.1.2', payload: pattern(30) });
const ipv6 = (payloadLen: number) => mutate(Buffer.alloc(40 + payloadLen), (b) => {
  b[0] = 0x60;
  b.writeUInt16BE(payloadLen, 4);
});

/** [what, sender, packet] */
const datagrams: Array<[string, string, Buffer]> = [
  ['good', '192.0.2.13', good],
  ['good TCP', '192.0.2.13', tcp4({ src: '10.244.3.7', dst: '10.244.1.200', payload: pattern(100) })],
  ['to the second own subnet', '192.0.2.13', udp4({ src: '10.244.3.7', dst: '10.244.77.63', payload: pattern(3) })],
  ['just outside the second own subnet', '192.0.2.13', udp4({ src: '10.244.3.7', dst: '10.244.77.64', payload: pattern(3) })],
  ['to this host\'s overlay address', '192.0.2.13', udp4({ src: '10.244.3.7', dst: '10.244.1.0', payload: pattern(3) })],
  ['from a /32 of the sender', '192.0.2.13', udp4({ src: '10.244.9.9', dst: '10.244.1.2', payload: pattern(3) })],
  ['from the /25 another peer routes', '192.0.2.13', udp4({ src: '10.244.3.200', dst: '10.244.1.2', payload: pattern(3) })],
  ['stranger', '192.0.2.250', good],
  ['stranger with garbage', '192.0.2.250', Buffer.from('garbage')],
  ['spoofed source', '192.0.2.13', udp4({ src: '10.244.2.7', dst: '10.244.1.2', payload: pattern(3) })],
  ['to another peer\'s subnet', '192.0.2.13', udp4({ src: '10.244.3.7', dst: '10.244.2.9', payload: pattern(3) })],
  ['to the internet', '192.0.2.12', udp4({ src: '10.244.2.7', dst: '8.8.8.8', payload: pattern(3) })],
  ['to broadcast', '192.0.2.12', udp4({ src: '10.244.2.7', dst: '255.255.255.255', payload: pattern(3) })],
  ['spoofed and to the wrong place: spoofed first', '192.0.2.12', udp4({ src: '10.244.3.7', dst: '8.8.8.8', payload: pattern(3) })],
  ['IPv6', '192.0.2.13', ipv6(8)],
  ['IPv6 length mismatch', '192.0.2.13', ipv6(8).subarray(0, 47)],
  ['empty', '192.0.2.13', Buffer.alloc(0)],
  ['19 bytes', '192.0.2.13', good.subarray(0, 19)],
  ['trailing byte', '192.0.2.13', Buffer.concat([good, Buffer.from([0])])],
  ['one byte short', '192.0.2.13', good.subarray(0, good.length - 1)],
  ['version 7', '192.0.2.13', mutate(good, (b) => { b[0] = 0x75; })],
  ['IHL 4', '192.0.2.13', mutate(good, (b) => { b[0] = 0x44; })],
  ['IHL 15 in a short packet', '192.0.2.13', mutate(good.subarray(0, 40), (b) => { b[0] = 0x4f; b.writeUInt16BE(40, 2); })],
];

for (const [what, from, pkt] of datagrams) {
  test(`checkDatagram agrees: ${what}`, () => {
    const ts = checkDatagram(pkt, table.routesOf(from), ownNets);
    const cc = v4.checkDatagram(pkt, from, routes, ownSubnets);
    assert.is(cc, ts.ok ? null : ts.reason, `${what}: C++ ${cc}, TypeScript ${JSON.stringify(ts)}`);
  });
}

test('the checkDatagram vectors cover every receive verdict', () => {
  const seen = [...new Set(datagrams.map(([, from, pkt]) => String(v4.checkDatagram(pkt, from, routes, ownSubnets))))].sort();
  assert.equal(seen, ['malformed', 'null', 'spoofed_source', 'unknown_peer', 'wrong_destination']);
});

const own = parseIP4('10.244.1.0');
const fromTun: Array<[string, Buffer]> = [
  ['routed', udp4({ src: '10.244.1.2', dst: '10.244.3.200', ttl: 63, payload: pattern(20) })],
  ['routed, longest prefix', udp4({ src: '10.244.1.2', dst: '10.244.3.5', payload: pattern(20) })],
  ['routed by the /8', udp4({ src: '10.244.1.2', dst: '10.9.9.9', payload: pattern(20) })],
  ['TTL 2', udp4({ src: '10.244.1.2', dst: '10.244.2.3', ttl: 2, payload: pattern(20) })],
  ['TTL 1', udp4({ src: '10.244.1.2', dst: '10.244.2.3', ttl: 1, payload: pattern(20) })],
  ['TTL 0', udp4({ src: '10.244.1.2', dst: '10.244.2.3', ttl: 0, payload: pattern(20) })],
  ['no route', udp4({ src: '10.244.1.2', dst: '172.16.0.1', payload: pattern(20) })],
  ['no route, to multicast', udp4({ src: '10.244.1.2', dst: '239.1.1.1', payload: pattern(20) })],
  ['no route, from 0.0.0.0', udp4({ src: '0.0.0.0', dst: '172.16.0.1', payload: pattern(20) })],
  ['no route, a later fragment', mutate(udp4({ src: '10.244.1.2', dst: '172.16.0.1', payload: pattern(20) }), (b) => b.writeUInt16BE(0x2005, 6))],
  ['no route, an ICMP error', mutate(udp4({ src: '10.244.1.2', dst: '172.16.0.1', payload: pattern(20) }), (b) => { b[9] = 1; b[20] = 3; })],
  ['no route, an ICMP echo', mutate(udp4({ src: '10.244.1.2', dst: '172.16.0.1', payload: pattern(20) }), (b) => { b[9] = 1; b[20] = 8; })],
  ['IPv6', ipv6(8)],
  ['malformed: 3 bytes', Buffer.from([0x45, 0, 0])],
  ['malformed: version 1', Buffer.alloc(20, 0x15)],
  ['malformed: IHL beyond', mutate(good.subarray(0, 24), (b) => { b[0] = 0x47; })],
  ['empty', Buffer.alloc(0)],
];

for (const [what, pkt] of fromTun) {
  test(`routeFromTun agrees: ${what}`, () => {
    const tsPkt = Buffer.from(pkt);
    const ts = routeFromTun(tsPkt, (d) => table.lookup(d), own);
    const cc = v4.routeFromTun(Buffer.from(pkt), routes);
    const tsRoute = ts.route ? `${ts.route.peerIp}:${ts.route.port}` : null;
    assert.equal(
      { drop: cc.drop, peer: cc.peer, icmp: cc.icmp, pkt: cc.pkt.toString('hex') },
      { drop: ts.action === 'drop' ? ts.reason : null, peer: tsRoute, icmp: ts.action === 'drop' && ts.icmp !== undefined, pkt: tsPkt.toString('hex') },
      what,
    );
    if (ts.action === 'drop' && ts.icmp) assert.is(v4.buildTunError(ts.reason as 'no_route' | 'ttl', pkt, '10.244.1.0').toString('hex'), ts.icmp.toString('hex'), 'the ICMP bytes');
  });
}

test('the ICMP errors (net unreachable, time exceeded), icmpAllowed and decrementTtl agree byte for byte', () => {
  const quoted = [
    udp4({ src: '10.244.1.2', dst: '172.16.0.1', payload: pattern(100) }),
    udp4({ src: '10.244.1.2', dst: '172.16.0.1', payload: pattern(1) }),
    Buffer.concat([mutate(Buffer.alloc(24), (b) => { b[0] = 0x46; b.writeUInt16BE(34, 2); b[8] = 9; b[9] = 17; b.writeUInt32BE(parseIP4('10.244.1.9'), 12); }), pattern(10)]),
  ];
  for (const p of quoted) {
    assert.is(v4.buildTunError('no_route', p, '10.244.1.0').toString('hex'), buildNetUnreachable(p, own).toString('hex'));
    assert.is(v4.buildTunError('ttl', p, '10.244.1.0').toString('hex'), buildIcmpError(p, own, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL).toString('hex'));
    assert.is(v4.icmpAllowed(p), icmpErrorAllowed(p, parseIpHeader(p) as Extract<ReturnType<typeof parseIpHeader>, { version: 4 }>));
  }
  let seed = 99;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
  for (let i = 0; i < 2000; i++) {
    const h = Buffer.alloc(20);
    for (let k = 0; k < 20; k++) h[k] = rnd() & 0xff;
    h[0] = 0x45;
    h[8] = 2 + (rnd() % 254);
    const ts = Buffer.from(h);
    decrementTtl(ts);
    assert.is(v4.decrementTtl(h).toString('hex'), ts.toString('hex'));
    assert.is(v4.icmpAllowed(h), icmpErrorAllowed(h, parseIpHeader(h) as Extract<ReturnType<typeof parseIpHeader>, { version: 4 }>));
  }
});

test.run();
