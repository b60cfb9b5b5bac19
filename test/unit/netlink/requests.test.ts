// Requests we build, byte for byte against what iproute2 6.1 sent for the same
// command (captured with `strace -e trace=sendmsg -e write=3,4 ip ...`), and
// bytes → object → bytes round trips through the decoders.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  addrRequest, decodeAddr, decodeFdb, decodeLink, decodeNeigh, decodeRoute, fdbRequest, linkAddRequest, linkDelRequest,
  linkSetMasterRequest, linkSetMtuRequest, linkSetUpRequest, neighDelRequest, neighReplaceRequest, NLM_F_ACK, NLM_F_APPEND,
  NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NUD_NOARP, NUD_PERMANENT, NTF_SELF, parseMessages, type Request,
  frameBatch, routeGetRequest, routeRequest, RTM_DELLINK, RTM_F_LOOKUP_TABLE, RTM_GETROUTE, RTM_NEWLINK, RT_SCOPE_NOWHERE, toMessage,
} from '../../../netlink/index.js';

// In the namespace of the capture: u0 = 7, weft.1 = 8, cni0 = 9, ve0 = 11.
const IPROUTE2 = {
  // ip link add weft.1 type vxlan id 1 dstport 8472 nolearning local 192.0.2.11 dev u0
  vxlanAdd:
    '68000000100005068' + '25e026b00000000' + '00000000000000000000000000000000' +
    '0b000300776566742e3100003c001200' + '0900010076786c616e0000002c000200' +
    '080003000700000008000100010000000800040' + '0c000020b0500070000000000' + '06000f0021180000',
  // ip link add cni0 type bridge
  bridgeAdd: '3c000000100005068f5e026b000000000000000000000000000000000000000009000300636e693000000000100012000a0001006272696467650000',
  // ip link add ve0 type veth peer name ve1
  vethAdd:
    '54000000100005068f5e026b000000000000000000000000000000000000000008000300766530002c0012000800010076657468' +
    '200002001c000100000000000000000000000000000000000800030076653100',
  // ip link set dev weft.1 up
  linkUp: '20000000100005008f5e026b0000000000000000080000000100000001000000',
  // ip link set dev weft.1 mtu 1450
  linkMtu: '28000000100005008f5e026b000000000000000008000000000000000000000008000400aa050000',
  // ip link set dev ve0 master cni0
  linkMaster: '2800000010000500905e026b00000000000000000b000000000000000000000008000a0009000000',
  // ip addr add 10.244.1.0/32 dev weft.1
  addrAdd: '28000000140005068f5e026b000000000220000008000000080002000af40100080001000af40100',
  // ip neigh replace 10.244.3.0 lladdr c6:d2:32:6f:8f:44 dev weft.1 nud permanent
  neighReplace: '300000001c000505905e026b00000000020000000800000080000000080001000af403000a000200c6d2326f8f440000',
  // ip neigh del 10.244.3.0 dev weft.1
  neighDel: '240000001d000500915e026b00000000020000000800000080000000080001000af40300',
  // bridge fdb append c6:d2:32:6f:8f:44 dev weft.1 dst 192.0.2.12 self permanent
  fdbAppend: '300000001c00050c905e026b000000000700000008000000c00002000a000200c6d2326f8f44000008000100c000020c',
  // bridge fdb del c6:d2:32:6f:8f:44 dev weft.1 dst 192.0.2.12 self
  fdbDel: '300000001d000500915e026b000000000700000008000000c00002000a000200c6d2326f8f44000008000100c000020c',
  // ip route replace 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink
  routeReplace: '34000000180005058f5e026b0000000002180000fe03000104000000080001000af40300080005000af403000800040008000000',
  // ip route del 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink
  routeDel: '3400000019000500905e026b0000000002180000fe00ff0004000000080001000af40300080005000af403000800040008000000',
};

/** Frames `req` with the captured message's seq, so whole messages compare. */
function same(req: Request, hex: string): void {
  const want = Buffer.from(hex, 'hex');
  const got = toMessage(req, want.readUInt32LE(8), 0, true);
  assert.is(got.toString('hex'), want.toString('hex'), req.op);
}

function captured(hex: string) {
  const ms = parseMessages(Buffer.from(hex, 'hex'));
  assert.is(ms.length, 1);
  return ms[0]!;
}

test('vxlan link add matches iproute2', () => {
  same(linkAddRequest({ kind: 'vxlan', name: 'weft.1', vni: 1, port: 8472, local: '192.0.2.11', linkIndex: 7 }), IPROUTE2.vxlanAdd);
  const m = captured(IPROUTE2.vxlanAdd);
  assert.is(m.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
});

test('vxlan link add: learning, port byte order and vni are where the kernel reads them', () => {
  const r = linkAddRequest({ kind: 'vxlan', name: 'v', vni: 0x123456, port: 4789, learning: true });
  const hex = r.body.toString('hex');
  assert.ok(hex.includes('08000100' + '56341200'), 'IFLA_VXLAN_ID u32 host order');
  assert.ok(hex.includes('06000f00' + '12b5' + '0000'), 'IFLA_VXLAN_PORT big-endian 4789 = 0x12b5');
  assert.ok(hex.includes('05000700' + '01000000'), 'IFLA_VXLAN_LEARNING 1');
  assert.not.ok(hex.includes('08000300'), 'no IFLA_VXLAN_LINK without linkIndex');
});

test('bridge and veth link add match iproute2', () => {
  same(linkAddRequest({ kind: 'bridge', name: 'cni0' }), IPROUTE2.bridgeAdd);
  same(linkAddRequest({ kind: 'veth', name: 've0', peerName: 've1' }), IPROUTE2.vethAdd);
});

test('link set up / mtu / master match iproute2', () => {
  same(linkSetUpRequest(8, true), IPROUTE2.linkUp);
  same(linkSetMtuRequest(8, 1450), IPROUTE2.linkMtu);
  same(linkSetMasterRequest(11, 9), IPROUTE2.linkMaster);
  const down = linkSetUpRequest(8, false).body;
  assert.is(down.readUInt32LE(8), 0, 'down clears IFF_UP');
  assert.is(down.readUInt32LE(12), 1, '...and only IFF_UP changes');
});

test('addr add matches iproute2 (IFA_LOCAL then IFA_ADDRESS)', () => {
  same(addrRequest('add', { index: 8, address: '10.244.1.0', prefixLen: 32 }), IPROUTE2.addrAdd);
  assert.is(addrRequest('replace', { index: 8, address: '10.244.1.0', prefixLen: 32 }).flags, NLM_F_CREATE | NLM_F_REPLACE);
  assert.is(addrRequest('del', { index: 8, address: '10.244.1.0', prefixLen: 32 }).flags, 0);
});

test('neigh replace / del match iproute2', () => {
  same(neighReplaceRequest({ index: 8, ip: '10.244.3.0', mac: 'c6:d2:32:6f:8f:44' }), IPROUTE2.neighReplace);
  same(neighDelRequest({ index: 8, ip: '10.244.3.0' }), IPROUTE2.neighDel);
});

test('fdb append / del with dst match iproute2 (bridge sends permanent|noarp)', () => {
  const spec = { index: 8, mac: 'c6:d2:32:6f:8f:44', dst: '192.0.2.12', state: NUD_PERMANENT | NUD_NOARP };
  same(fdbRequest('append', spec), IPROUTE2.fdbAppend);
  same(fdbRequest('del', spec), IPROUTE2.fdbDel);
  const dflt = fdbRequest('append', { index: 8, mac: 'c6:d2:32:6f:8f:44' });
  assert.is(dflt.body.readUInt16LE(8), NUD_PERMANENT, 'default state NUD_PERMANENT');
  assert.is(dflt.body[10], NTF_SELF, 'default NTF_SELF');
  assert.is(dflt.flags, NLM_F_CREATE | NLM_F_APPEND);
  assert.is(fdbRequest('replace', spec).flags, NLM_F_CREATE | NLM_F_REPLACE);
});

test('route replace onlink / del match iproute2', () => {
  const spec = { dst: '10.244.3.0/24', gateway: '10.244.3.0', index: 8, onlink: true };
  const r = routeRequest('replace', spec);
  same(r, IPROUTE2.routeReplace);
  assert.is(r.op, 'route replace 10.244.3.0/24 via 10.244.3.0 dev 8 onlink');
  same(routeRequest('del', spec), IPROUTE2.routeDel);
});

test('route options: table >= 256 goes to RTA_TABLE, default has no RTA_DST, no gateway means scope link', () => {
  const big = routeRequest('add', { dst: '10.0.0.0/8', index: 3, table: 1000 });
  assert.is(big.body[4], 0, 'rtm_table RT_TABLE_UNSPEC');
  assert.ok(big.body.toString('hex').includes('08000f00' + 'e8030000'), 'RTA_TABLE 1000');
  assert.is(big.body[6], 253, 'RT_SCOPE_LINK without a gateway');
  const dflt = routeRequest('replace', { dst: 'default', gateway: '192.0.2.1' });
  assert.is(dflt.body[1], 0, 'dst_len 0');
  assert.is(dflt.body.length, 12 + 8, 'rtmsg + RTA_GATEWAY only');
  const v6 = routeRequest('add', { dst: 'fd00:0:0:3::/64', gateway: 'fe80::1', index: 3, metric: 1024, mtu: 1400 });
  const back = decodeRoute({ type: 24, flags: 0, seq: 0, pid: 0, data: v6.body })!;
  assert.equal([back.family, back.dst, back.gateway, back.index, back.metric, back.mtu], [6, 'fd00:0:0:3::/64', 'fe80::1', 3, 1024, 1400]);
  assert.is(routeRequest('del', { dst: '10.0.0.0/8' }).body[6], RT_SCOPE_NOWHERE);
});

test('route get: RTM_GETROUTE for one address (dst_len 32/128, RTA_DST), RTM_F_LOOKUP_TABLE as vishvananda/netlink\'s RouteGet', () => {
  const r = routeGetRequest('192.0.2.7');
  assert.is(r.type, RTM_GETROUTE);
  assert.is(r.flags, 0, 'not a dump');
  assert.is(r.op, 'route get 192.0.2.7');
  assert.is(r.body.toString('hex'), '02200000' + '00000000' + '00100000' + '08000100c0000207');
  assert.is(r.body.readUInt32LE(8), RTM_F_LOOKUP_TABLE);
  const v6 = routeGetRequest('2001:db8::7');
  assert.equal([v6.body[0], v6.body[1], v6.body.length], [10, 128, 12 + 20]);
  assert.is(routeRequest('replace', { dst: '10.244.3.0/24', gateway: '192.0.2.13', index: 2, protocol: 87 }).op, 'route replace 10.244.3.0/24 via 192.0.2.13 dev 2 proto 87');
  assert.is(routeRequest('replace', { dst: '10.244.3.0/24', gateway: '192.0.2.13', index: 2, protocol: 87 }).body[5], 87, 'rtm_protocol');
});

test('link del by name and by index', () => {
  const byName = linkDelRequest('weft.1');
  assert.is(byName.type, RTM_DELLINK);
  assert.is(byName.body.toString('hex'), '00'.repeat(16) + '0b000300776566742e310000');
  assert.is(linkDelRequest(8).body.readInt32LE(4), 8);
});

// ---------------------------------------------------------------- bytes → object → bytes

test('round trip: vxlan link add', () => {
  const m = captured(IPROUTE2.vxlanAdd);
  assert.is(m.type, RTM_NEWLINK);
  const l = decodeLink(m);
  assert.is(l.kind, 'vxlan');
  const v = l.vxlan!;
  assert.equal(v, { id: 1, port: 8472, local: '192.0.2.11', linkIndex: 7, learning: false });
  same(linkAddRequest({ kind: 'vxlan', name: l.name, vni: v.id, port: v.port, local: v.local!, linkIndex: v.linkIndex!, learning: v.learning }), IPROUTE2.vxlanAdd);
});

test('round trip: neigh replace', () => {
  const n = decodeNeigh(captured(IPROUTE2.neighReplace))!;
  assert.equal(n, { index: 8, family: 4, ip: '10.244.3.0', mac: 'c6:d2:32:6f:8f:44', state: NUD_PERMANENT, flags: 0, type: 0 });
  same(neighReplaceRequest({ index: n.index, ip: n.ip, mac: n.mac!, state: n.state }), IPROUTE2.neighReplace);
});

test('round trip: fdb append', () => {
  const f = decodeFdb(captured(IPROUTE2.fdbAppend))!;
  assert.equal(f, { index: 8, mac: 'c6:d2:32:6f:8f:44', dst: '192.0.2.12', state: NUD_PERMANENT | NUD_NOARP, flags: NTF_SELF, self: true, master: false });
  same(fdbRequest('append', { index: f.index, mac: f.mac, dst: f.dst!, state: f.state, self: f.self }), IPROUTE2.fdbAppend);
});

test('round trip: route replace', () => {
  const r = decodeRoute(captured(IPROUTE2.routeReplace))!;
  assert.equal([r.dst, r.gateway, r.index, r.onlink], ['10.244.3.0/24', '10.244.3.0', 8, true]);
  same(routeRequest('replace', { dst: r.dst, gateway: r.gateway!, index: r.index!, onlink: r.onlink, table: r.table, protocol: r.protocol, scope: r.scope, type: r.type }), IPROUTE2.routeReplace);
});

test('round trip: addr add', () => {
  const a = decodeAddr(captured(IPROUTE2.addrAdd))!;
  assert.equal([a.index, a.address, a.prefixLen, a.peer], [8, '10.244.1.0', 32, undefined]);
  same(addrRequest('add', { index: a.index, address: a.address, prefixLen: a.prefixLen, scope: a.scope }), IPROUTE2.addrAdd);
});

test('round trip: veth with a peer namespace fd keeps the nested peer ifinfomsg', () => {
  const r = linkAddRequest({ kind: 'veth', name: 'h1-eth0', peerName: 'eth0', peerNetnsFd: 21, mtu: 1450 });
  const l = decodeLink({ type: RTM_NEWLINK, flags: 0, seq: 0, pid: 0, data: r.body });
  assert.equal([l.name, l.kind, l.mtu], ['h1-eth0', 'veth', 1450]);
  assert.ok(r.body.toString('hex').includes('08001c00' + '15000000'), 'IFLA_NET_NS_FD 21 inside the peer');
});

test('specs are validated before anything is sent, quoting the bad value', () => {
  assert.throws(() => linkAddRequest({ kind: 'vxlan', name: 'weft.1', vni: 1 << 24, port: 8472 }), /vxlan vni .* got 16777216/);
  assert.throws(() => linkAddRequest({ kind: 'bridge', name: 'a-name-longer-than-15' }), /invalid interface name "a-name-longer-than-15"/);
  assert.throws(() => neighReplaceRequest({ index: 8, ip: '10.244.3', mac: 'c6:d2:32:6f:8f:44' }), /invalid IP address "10.244.3"/);
  assert.throws(() => fdbRequest('append', { index: 8, mac: 'c6:d2:32:6f:8f' }), /invalid MAC address/);
  assert.throws(() => routeRequest('add', { dst: '10.0.0.0/33' }), /invalid prefix "10.0.0.0\/33"/);
  assert.throws(() => routeRequest('add', { dst: '10.0.0.0/8', gateway: 'fe80::1' }), /not in the family/);
  assert.throws(() => linkSetMtuRequest(0, 1500), /positive interface index, got 0/);
});

test.run();

test('a batch frame is the requests framed one by one and concatenated, only the last asking for an ACK; descriptions are written when read', () => {
  const reqs = [
    neighReplaceRequest({ index: 8, ip: '10.244.3.0', mac: 'c6:d2:32:6f:8f:44' }),
    fdbRequest('replace', { index: 8, mac: 'c6:d2:32:6f:8f:44', dst: '192.0.2.13' }),
    routeRequest('replace', { dst: '10.244.3.0/24', nhid: 7, protocol: 87 }),
  ];
  const seqs = [41, 42, 43];
  const want = Buffer.concat(reqs.map((r, i) => toMessage(r, seqs[i]!, 0, i === reqs.length - 1)));
  assert.is(frameBatch(reqs, seqs).toString('hex'), want.toString('hex'));
  assert.equal(parseMessages(frameBatch(reqs, seqs)).map((m) => (m.flags & NLM_F_ACK) !== 0), [false, false, true]);
  // The text of each, as before (and settable, as the link layer rewrites a veth's netns in it).
  assert.is(reqs[0]!.op, 'neigh replace 10.244.3.0 lladdr c6:d2:32:6f:8f:44 dev 8 nud permanent');
  assert.is(reqs[1]!.op, 'fdb replace c6:d2:32:6f:8f:44 dev 8 dst 192.0.2.13 self permanent');
  assert.is(reqs[2]!.op, 'route replace 10.244.3.0/24 proto 87 nhid 7');
  reqs[2]!.op = 'route replace (rewritten)';
  assert.is(reqs[2]!.op, 'route replace (rewritten)');
});
