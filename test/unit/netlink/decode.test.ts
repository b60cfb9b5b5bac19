// Decoding real kernel dump/get answers into the object model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AF_BRIDGE, decodeAddr, decodeFdb, decodeLink, decodeNeigh, decodeRoute, IFF_UP, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS,
  NLM_F_CAPPED, NLM_F_MULTI, NTF_SELF, NUD_NOARP, NUD_PERMANENT, parseDone, parseError, parseMessages, RTM_NEWADDR,
  RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE, RTN_UNICAST, RTNH_F_ONLINK, RTPROT_BOOT, RTPROT_KERNEL, RT_SCOPE_LINK,
  RT_TABLE_MAIN, RT_TABLE_LOCAL, type NlMsg, decodeNotification,
} from '../../../netlink/index.js';

// Real kernel answers (Linux 6.18): fixtures/decode-fixtures.ts says how they were made.
import { FIXTURES } from './fixtures/decode-fixtures.js';

function msgs(dgrams: readonly string[]): NlMsg[] {
  return dgrams.flatMap((h) => parseMessages(Buffer.from(h, 'hex')));
}

test('link get: one RTM_NEWLINK then the ACK in a second datagram', () => {
  const [reply, ack] = FIXTURES.linkGet.map((h) => parseMessages(Buffer.from(h, 'hex')));
  assert.is(reply!.length, 1);
  assert.is(reply![0]!.type, RTM_NEWLINK);
  assert.is(ack!.length, 1);
  assert.is(ack![0]!.type, NLMSG_ERROR);
  assert.is(parseError(ack![0]!).errno, 0);
  assert.is(ack![0]!.seq, reply![0]!.seq);
});

test('link get: vxlan device decodes to the object iproute2 describes', () => {
  const link = decodeLink(msgs(FIXTURES.linkGet)[0]!);
  // ip -d link show weft.1: "4: weft.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 ... link/ether 02:42:0a:f4:01:00
  //   vxlan id 1 local 192.0.2.11 dev u0 srcport 0 0 dstport 8472 nolearning ttl auto"
  assert.is(link.index, 4);
  assert.is(link.name, 'weft.1');
  assert.is(link.kind, 'vxlan');
  assert.is(link.mtu, 1450);
  assert.is(link.up, true);
  assert.ok(link.flags & IFF_UP);
  assert.is(link.mac, '02:42:0a:f4:01:00');
  assert.is(link.masterIndex, undefined);
  assert.equal(link.vxlan, { id: 1, port: 8472, local: '192.0.2.11', linkIndex: 3, learning: false, ttl: 0, srcPortMin: 0, srcPortMax: 0 });
});

test('neigh dump: the permanent ARP entry on weft.1', () => {
  const all = msgs(FIXTURES.neighDump);
  assert.is(all[0]!.type, RTM_NEWNEIGH);
  assert.ok(all[0]!.flags & NLM_F_MULTI, 'dump parts carry NLM_F_MULTI');
  assert.is(all.at(-1)!.type, NLMSG_DONE);
  assert.equal(decodeNeigh(all[0]!), { index: 4, family: 4, ip: '10.244.3.0', mac: 'c6:d2:32:6f:8f:44', state: NUD_PERMANENT, flags: 0, type: RTN_UNICAST });
  // The same message is not an FDB entry.
  assert.is(decodeFdb(all[0]!), undefined);
});

test('fdb dump: vxlan remote entry plus the veths\' multicast entries', () => {
  const all = msgs(FIXTURES.fdbDump).filter((m) => m.type === RTM_NEWNEIGH);
  const fdb = all.map((m) => decodeFdb(m)!);
  assert.is(fdb.length, 7);
  assert.ok(all.every((m) => m.data[0] === AF_BRIDGE));
  const remote = fdb.filter((f) => f.index === 4);
  // bridge fdb show dev weft.1: "c6:d2:32:6f:8f:44 dst 192.0.2.12 self permanent"
  assert.equal(remote, [{ index: 4, mac: 'c6:d2:32:6f:8f:44', dst: '192.0.2.12', state: NUD_PERMANENT | NUD_NOARP, flags: NTF_SELF, self: true, master: false }]);
  assert.equal(fdb.filter((f) => f.index === 3).map((f) => f.mac), ['33:33:00:00:00:01', '01:00:5e:00:00:01', '33:33:ff:00:02:0b']);
  assert.is(decodeNeigh(all[0]!), undefined);
});

test('route dump: onlink overlay route, kernel link route, local table', () => {
  const routes = msgs(FIXTURES.routeDump).filter((m) => m.type === RTM_NEWROUTE).map((m) => decodeRoute(m)!);
  assert.is(routes.length, 5);
  assert.equal(routes[0], {
    family: 4, dst: '10.244.3.0/24', gateway: '10.244.3.0', index: 4, onlink: true, table: RT_TABLE_MAIN,
    protocol: RTPROT_BOOT, scope: 0, type: RTN_UNICAST, flags: RTNH_F_ONLINK,
  });
  // 192.0.2.0/24 dev u0 proto kernel scope link src 192.0.2.11
  assert.equal(routes[1], {
    family: 4, dst: '192.0.2.0/24', index: 3, src: '192.0.2.11', onlink: false, table: RT_TABLE_MAIN,
    protocol: RTPROT_KERNEL, scope: RT_SCOPE_LINK, type: RTN_UNICAST, flags: 0,
  });
  assert.ok(routes.slice(2).every((r) => r.table === RT_TABLE_LOCAL));
  assert.equal(routes.slice(2).map((r) => r.dst), ['10.244.1.0/32', '192.0.2.11/32', '192.0.2.255/32']);
});

test('addr dump: underlay /24 (added without brd, so no IFA_BROADCAST) and the vtep /32 with its label', () => {
  const addrs = msgs(FIXTURES.addrDump).filter((m) => m.type === RTM_NEWADDR).map((m) => decodeAddr(m)!);
  assert.equal(addrs, [
    { index: 3, family: 4, address: '192.0.2.11', prefixLen: 24, scope: 0, flags: 0x80, label: 'u0' },
    { index: 4, family: 4, address: '10.244.1.0', prefixLen: 32, scope: 0, flags: 0x80, label: 'weft.1' },
  ]);
});

test('dump DONE carries no error', () => {
  for (const f of [FIXTURES.neighDump, FIXTURES.fdbDump, FIXTURES.routeDump, FIXTURES.addrDump]) {
    const done = msgs(f).at(-1)!;
    assert.is(done.type, NLMSG_DONE);
    assert.equal(parseDone(done), { errno: 0 });
  }
});

test('NLMSG_ERROR with ext-ack: link add type dummy on a kernel without it', () => {
  const [m] = msgs(FIXTURES.dummyErr);
  assert.is(m!.flags, NLM_F_CAPPED | NLM_F_ACK_TLVS);
  const e = parseError(m!);
  assert.is(e.errno, 95); // EOPNOTSUPP
  assert.is(e.extAck, 'Unknown device type');
  assert.is(e.orig.type, RTM_NEWLINK);
  assert.is(e.orig.seq, m!.seq);
});

test('NLMSG_ERROR without ext-ack: EEXIST and ESRCH', () => {
  const exists = parseError(msgs(FIXTURES.vxlanExists)[0]!);
  assert.is(exists.errno, 17);
  assert.is(exists.extAck, undefined);
  const missing = parseError(msgs(FIXTURES.routeDelMissing)[0]!);
  assert.is(missing.errno, 3);
});

test('notifications decode with the same parsers', () => {
  const n = decodeNotification(msgs(FIXTURES.linkGet)[0]!);
  assert.is(n?.kind, 'link');
  assert.is(n?.kind === 'link' && n.link.name, 'weft.1');
  const f = decodeNotification(msgs(FIXTURES.fdbDump).find((m) => m.data.readInt32LE(4) === 4)!);
  assert.is(f?.kind, 'fdb');
  const r = decodeNotification(msgs(FIXTURES.routeDump)[0]!);
  assert.is(r?.kind === 'route' && r.route.dst, '10.244.3.0/24');
  assert.is(decodeNotification(msgs(FIXTURES.routeDump).at(-1)!), undefined, 'DONE is not a notification');
});

test.run();
