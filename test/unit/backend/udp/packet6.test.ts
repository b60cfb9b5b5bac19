// The udp forwarder's IPv6 rules on byte vectors, in TypeScript (backend/udp/packet.ts, the dgram
// engine's) and in C++ (native/ipv4.cc + ipv6.cc through the test-only binding), checked against
// sums computed here: LPM over IPv6 subnets, hop limit - 1 (nothing else changes), ICMPv6 no
// route to destination (RFC 4443: type 1 code 0, quoting up to 1280 bytes, pseudo-header
// checksum) and when none may be sent, and the receive checks (the inner IPv6 source inside the
// sending peer's IPv6 subnet, the destination inside ours).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildNoRoute6, checkDatagram, routeFromTun } from '../../../../backend/udp/packet.js';
import { ForwardingTable } from '../../../../backend/udp/table.js';
import { ipNumber, parseIP4 } from '../../../../lib/ip.js';
import { native, type NativeForwarderRoute, type NativePrefix } from '../../../../native/index.js';
import { fold, icmp6, pseudo6, sum16, tcp4, tcp6, udp6 } from '../../native/packet-builders.js';

const c = native().ipv4;
const routes: NativeForwarderRoute[] = [
  { subnet: '10.244.2.0', prefixLen: 24, peerIp: '192.0.2.12', port: 8285 },
  { subnet: 'fd00:0:0:2::', prefixLen: 64, peerIp: '192.0.2.12', port: 8285 },
  { subnet: 'fd00:0:0:3::', prefixLen: 64, peerIp: '192.0.2.13', port: 8285 },
  { subnet: 'fd00:0:0:3:8000::', prefixLen: 65, peerIp: '192.0.2.14', port: 8285 },
  { subnet: 'fd00:0:0:9::9', prefixLen: 128, peerIp: '192.0.2.13', port: 8285 },
  { subnet: 'fd00::', prefixLen: 48, peerIp: '192.0.2.99', port: 9999 },
];
const table = new ForwardingTable(routes.map((r) => ({ subnet: `${r.subnet}/${r.prefixLen}`, peerIp: r.peerIp, port: r.port })));
const OWN6 = 'fd00:0:0:1::';
const own6 = ipNumber(OWN6).n;
const v6 = { lookup6: (d: bigint) => table.lookup6(d), ownIp6: own6 };
const ownNets: NativePrefix[] = [{ subnet: '10.244.1.0', prefixLen: 24 }, { subnet: 'fd00:0:0:1::', prefixLen: 64 }];
const mine4 = [{ net: parseIP4('10.244.1.0'), prefixLen: 24 }];
const mine6 = [{ net6: ipNumber('fd00:0:0:1::').n, prefixLen: 64 }];

/** TS and C++ verdicts on a packet from the TUN, and the bytes after each; they must agree. */
function send(p: Buffer) {
  const ts = Buffer.from(p);
  const v = routeFromTun(ts, (d) => table.lookup(d), parseIP4('10.244.1.0'), v6);
  const cc = c.routeFromTun(Buffer.from(p), routes);
  const tsView = { drop: v.action === 'drop' ? v.reason : null, peer: v.route ? `${v.route.peerIp}:${v.route.port}` : null, icmp: v.action === 'drop' && !!v.icmp, pkt: ts.toString('hex') };
  assert.equal({ ...cc, pkt: cc.pkt.toString('hex') }, tsView, 'C++ and TypeScript agree');
  if (v.action === 'drop' && v.icmp) assert.is(c.buildTunError(v.reason as 'no_route' | 'ttl', p, '10.244.1.0', OWN6).toString('hex'), v.icmp.toString('hex'), 'the same ICMPv6 bytes');
  return { v, after: ts };
}

/** Both verdicts on a datagram from `from`; they must agree. */
function receive(p: Buffer, from: string): string | null {
  const v = checkDatagram(p, table.routesOf(from), mine4, mine6);
  const ts = v.ok ? null : v.reason;
  assert.is(c.checkDatagram(p, from, routes, ownNets), ts, 'C++ and TypeScript agree');
  return ts;
}

test('IPv6 longest prefix match: /128 over /64 over /48, /65 inside a /64', () => {
  const peer = (a: string) => table.lookup6(ipNumber(a).n)?.peerIp;
  assert.is(peer('fd00:0:0:2::5'), '192.0.2.12');
  assert.is(peer('fd00:0:0:3::5'), '192.0.2.13');
  assert.is(peer('fd00:0:0:3:8000::1'), '192.0.2.14');
  assert.is(peer('fd00:0:0:9::9'), '192.0.2.13');
  assert.is(peer('fd00:0:0:9::8'), '192.0.2.99');
  assert.is(peer('fd01::1'), undefined);
  assert.equal(table.routesOf('192.0.2.13')!.map((r) => r.subnet), ['fd00:0:0:3::/64', 'fd00:0:0:9::9/128']);
  assert.is(table.lookup(parseIP4('10.244.2.1'))?.peerIp, '192.0.2.12', 'IPv4 beside it');
  assert.throws(() => new ForwardingTable([{ subnet: 'fd00::1/64', peerIp: '192.0.2.1', port: 1 }]), /host bits/);
});

test('routeFromTun IPv6: sent with hop limit - 1 and every other byte unchanged', () => {
  const p = tcp6({ src: 'fd00:0:0:1::2', dst: 'fd00:0:0:3:8000::7', hopLimit: 63, payload: Buffer.alloc(100, 1) });
  const { v, after } = send(p);
  assert.is(v.action, 'send');
  assert.is(v.route!.peerIp, '192.0.2.14');
  assert.is(after[7], 62);
  const expect = Buffer.from(p);
  expect[7] = 62;
  assert.equal(after, expect);
});

test('routeFromTun IPv6: hop limit 1 and 0 are ttl drops against the peer, untouched, with an ICMPv6 hop limit exceeded back', () => {
  for (const hopLimit of [0, 1]) {
    const p = udp6({ src: 'fd00:0:0:1::2', dst: 'fd00:0:0:2::3', hopLimit, payload: Buffer.alloc(8) });
    const { v, after } = send(p);
    const icmp = (v as { icmp: Buffer }).icmp;
    assert.equal({ ...v, icmp: undefined }, { action: 'drop', reason: 'ttl', route: table.routesOf('192.0.2.12')![1], icmp: undefined });
    assert.equal(after, p);
    assert.equal(icmp.subarray(8, 24), ipNumberBytes(OWN6), 'from the TUN\'s IPv6 address');
    assert.equal(icmp.subarray(24, 40), p.subarray(8, 24), 'to the sender');
    assert.equal([icmp[40], icmp[41]], [3, 0], 'time exceeded, hop limit exceeded in transit');
    assert.equal(icmp.subarray(48), p, 'the whole packet quoted');
    assert.is(fold(sum16(icmp, 40, icmp.length, pseudo6(icmp, 58, icmp.length - 40))), 0xffff, 'the checksum verifies');
  }
});

test('routeFromTun IPv6: no route -> ICMPv6 no route to destination, the exact bytes', () => {
  const p = udp6({ src: 'fd00:0:0:1::2', dst: 'fd01::1', payload: Buffer.alloc(16, 7) });
  const { v } = send(p);
  assert.is(v.action === 'drop' && v.reason, 'no_route');
  const icmp = (v as { icmp: Buffer }).icmp;
  assert.is(icmp.length, 40 + 8 + p.length);
  assert.is(icmp.readUInt32BE(0), 0x60000000, 'version 6, class 0, flow 0');
  assert.is(icmp.readUInt16BE(4), 8 + p.length, 'payload length');
  assert.is(icmp[6], 58);
  assert.is(icmp[7], 64);
  assert.equal(icmp.subarray(8, 24), ipNumberBytes(OWN6), 'from the TUN\'s IPv6 address');
  assert.equal(icmp.subarray(24, 40), p.subarray(8, 24), 'to the sender');
  assert.equal([icmp[40], icmp[41]], [1, 0], 'destination unreachable, no route');
  assert.is(icmp.readUInt32BE(44), 0, 'unused');
  assert.equal(icmp.subarray(48), p, 'the whole packet quoted');
  assert.is(fold(sum16(icmp, 40, icmp.length, pseudo6(icmp, 58, icmp.length - 40))), 0xffff, 'the checksum verifies');
});

test('ICMPv6 error quotes at most up to the 1280-byte minimum MTU', () => {
  const big = udp6({ src: 'fd00:0:0:1::2', dst: 'fd01::1', payload: Buffer.alloc(1400, 9) });
  const icmp = buildNoRoute6(big, own6);
  assert.is(icmp.length, 1280);
  assert.equal(icmp.subarray(48), big.subarray(0, 1232));
  assert.is(fold(sum16(icmp, 40, icmp.length, pseudo6(icmp, 58, icmp.length - 40))), 0xffff);
  assert.is(c.buildTunError('no_route', big, '10.244.1.0', OWN6).toString('hex'), icmp.toString('hex'));
});

test('no ICMPv6 error about an ICMPv6 error, to multicast, or from ::, ::1, multicast or link-local; echo gets one', () => {
  const none = [
    icmp6({ src: 'fd00:0:0:1::2', dst: 'fd01::1', type: 1 }),
    icmp6({ src: 'fd00:0:0:1::2', dst: 'fd01::1', type: 3 }),
    udp6({ src: 'fd00:0:0:1::2', dst: 'ff02::1', payload: Buffer.alloc(4) }),
    udp6({ src: '::', dst: 'fd01::1', payload: Buffer.alloc(4) }),
    udp6({ src: '::1', dst: 'fd01::1', payload: Buffer.alloc(4) }),
    udp6({ src: 'ff05::2', dst: 'fd01::1', payload: Buffer.alloc(4) }),
    udp6({ src: 'fe80::1', dst: 'fd01::1', payload: Buffer.alloc(4) }),
  ];
  for (const p of none) assert.equal(send(p).v, { action: 'drop', reason: 'no_route' }, p.subarray(8, 40).toString('hex'));
  const echo = icmp6({ src: 'fd00:0:0:1::2', dst: 'fd01::1', type: 128 });
  assert.ok((send(echo).v as { icmp?: Buffer }).icmp);
  assert.equal(send(Buffer.alloc(39, 0x60)).v, { action: 'drop', reason: 'malformed' });
});

test('IPv6 without an IPv6 half (an IPv4-only network): no_route, no ICMPv6', () => {
  const p = udp6({ src: 'fd00:0:0:1::2', dst: 'fd00:0:0:2::3', payload: Buffer.alloc(8) });
  assert.equal(routeFromTun(p, (d) => table.lookup(d), parseIP4('10.244.1.0')), { action: 'drop', reason: 'no_route' });
});

test('receive IPv6: the inner source must be inside the sender\'s IPv6 subnet, the destination inside ours', () => {
  const pkt = (src: string, dst: string) => udp6({ src, dst, payload: Buffer.alloc(12, 3) });
  assert.is(receive(pkt('fd00:0:0:3::7', 'fd00:0:0:1::2'), '192.0.2.13'), null);
  assert.is(receive(pkt('fd00:0:0:9::9', 'fd00:0:0:1::2'), '192.0.2.13'), null, 'its /128 too');
  assert.is(receive(pkt('fd00:0:0:3:8000::1', 'fd00:0:0:1::2'), '192.0.2.13'), null, 'inside its /64 though .14 owns the /65 for routing');
  assert.is(receive(pkt('fd00:0:0:2::7', 'fd00:0:0:1::2'), '192.0.2.13'), 'spoofed_source', 'another peer\'s IPv6 subnet');
  assert.is(receive(pkt('fd00:0:0:1::9', 'fd00:0:0:1::2'), '192.0.2.13'), 'spoofed_source', 'our own subnet as source');
  assert.is(receive(pkt('2001:db8::1', 'fd00:0:0:1::2'), '192.0.2.13'), 'spoofed_source', 'the world');
  assert.is(receive(pkt('fd00:0:0:3::7', 'fd00:0:0:2::1'), '192.0.2.13'), 'wrong_destination');
  assert.is(receive(pkt('fd00:0:0:3::7', 'ff02::1'), '192.0.2.13'), 'wrong_destination');
  assert.is(receive(pkt('fd00:0:0:3::7', 'fd00:0:0:1::2'), '192.0.2.250'), 'unknown_peer');
  // A peer with only an IPv4 subnet (a v4-only lease) owns no IPv6 source.
  assert.is(receive(pkt('fd00:0:0:3::7', 'fd00:0:0:1::2'), '192.0.2.12'), 'spoofed_source');
  const good = pkt('fd00:0:0:3::7', 'fd00:0:0:1::2');
  assert.is(receive(good.subarray(0, good.length - 1), '192.0.2.13'), 'malformed', 'shorter than its payload length');
  assert.is(receive(Buffer.concat([good, Buffer.alloc(1)]), '192.0.2.13'), 'malformed', 'longer');
  assert.is(receive(good.subarray(0, 39), '192.0.2.13'), 'malformed', 'no whole header');
  // IPv4 from the same peer still needs an IPv4 source in its IPv4 subnet: an IPv6 route never matches it.
  assert.is(receive(tcp4({ src: '10.244.2.5', dst: '10.244.1.2', payload: Buffer.alloc(4) }), '192.0.2.12'), null);
  assert.is(receive(tcp4({ src: '0.0.0.1', dst: '10.244.1.2', payload: Buffer.alloc(4) }), '192.0.2.13'), 'spoofed_source');
});

function ipNumberBytes(a: string): Buffer {
  const b = Buffer.alloc(16);
  let n = ipNumber(a).n;
  for (let i = 15; i >= 0; i--, n >>= 8n) b[i] = Number(n & 0xffn);
  return b;
}

test.run();
