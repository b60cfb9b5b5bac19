// Decoding real kernel dump/get answers into the object model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AF_BRIDGE, decodeAddr, decodeFdb, decodeLink, decodeNeigh, decodeRoute, IFF_UP, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS,
  NLM_F_CAPPED, NLM_F_MULTI, NTF_SELF, NUD_NOARP, NUD_PERMANENT, parseDone, parseError, parseMessages, RTM_NEWADDR,
  RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE, RTN_UNICAST, RTNH_F_ONLINK, RTPROT_BOOT, RTPROT_KERNEL, RT_SCOPE_LINK,
  RT_TABLE_MAIN, RT_TABLE_LOCAL, type NlMsg, decodeNotification,
} from '../../../netlink/index.js';

// Real kernel answers (Linux 6.18), captured from a NetlinkHandle socket in a throwaway
// namespace set up with iproute2: veth u0 (index 3, 192.0.2.11/24), vxlan weft.1 (index 4,
// id 1 dstport 8472 nolearning local 192.0.2.11 dev u0, mtu 1450, 02:42:0a:f4:01:00,
// 10.244.1.0/32), then `ip neigh replace 10.244.3.0 lladdr c6:d2:32:6f:8f:44 dev weft.1
// nud permanent`, `bridge fdb append c6:d2:32:6f:8f:44 dev weft.1 dst 192.0.2.12 self
// permanent`, `ip route replace 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink`.
// Each entry is the list of datagrams, hex, as recv() returned them.
export const FIXTURES = {
  linkGet: [
    'a806000010000000e90300008f210000000001000400000043100100000000000b000300776566742e31000008000d00e8030000050010000000000005001100' +
      '00000000050043000000000008000400aa050000080032004400000008003300ffff000008001b000000000008001e000000000008003d000000000008001f00' +
      '0100000008002800ffff0000080029000000010008003a000000010008003f0000000100080040000000010008003b00f8ff070008003c00ffff000008004200' +
      '0000000008002000010000000500210001000000080023000000000008002f000000000008003000000000000600440040000000060045000000000005002700' +
      '000000000a00010002420af4010000000a000200ffffffffffff0000cc0017000000000000000000000000000000000000000000000000000000000000000000' +
      '00000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000' +
      '00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
      '00000000000000000000000000000000000000000000000000000000000000000000000000000000640007000000000000000000000000000000000000000000' +
      '00000000000000000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
      '0000000000000000000000000c002b000500020000000000e80012000a00010076786c616e000000d80002000800010001000000080003000300000008000400' +
      'c000020b050005000000000005001c0000000000050006000000000005001d000000000008001a00000000000800200000000000050007000000000005000b00' +
      '0000000005000c000000000005000d000000000005000e00000000000500190000000000080008002c010000080009000000000006000f002118000005001200' +
      '01000000050013000000000005001400000000000500150000000000050016000000000005001f000100000008000a00000000000c002100f7ffffff000000ff' +
      '0c0006006e6f71756575650030031a008c0002008800010000000000000000000000000001000000010000000100000001000000000000000100000000000000' +
      '00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
      '10270000e80300000000000000000000000000000000000001000000a0020a00080001000000008014000500ffff0000bc280100bca60000e8030000f4000200' +
      '0000000040000000aa05000001000000010000000100000001000000ffffffffa00f0000e803000000000000803a090080510100030000005802000010000000' +
      '0000000001000000010000000100000060ea000000000000000000000000000000000000000000000000000001000000000000000000000010270000e8030000' +
      '010000000000000000000000010000000000000000000000010000000000000000000000000000000000000080ee360000000000000000000100000000000000' +
      '000000000000000000000000000000000004000000000000ffff0000ffffffff0100000000000000000000000000000034010300260000000000000000000000' +
      '00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010000000000000001000000' +
      '000000004c0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
      '00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
      '0000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000004c000000' +
      '0000000000000000000000000000000000000000000000000000000000000000000000003c000600070000000000000000000000000000000000000000000000' +
      '01000000000000000000000000000000000000000000000000000000000000001400070000000000000000000000000000000000050008000000000024000e00' +
      '000000000000000000000000000000000000000000000000000000000000000004003e8004004180',
    '2400000002000001e90300008f210000000000002c00000012000500e903000000000000',
  ],
  neighDump: [
    '4c0000001c000200ea0300008f210000020000000400000080000001080001000af403000a000200c6d2326f8f4400000800040000000000140003000a000000' +
      '0a0000000a000000000000001400000003000200ea0300008f21000000000000',
  ],
  fdbDump: [
    '280000001c000200eb0300008f2100000700000002000000800002000a0002003333000000010000280000001c000200eb0300008f2100000700000002000000' +
      '800002000a00020001005e0000010000280000001c000200eb0300008f2100000700000002000000800002000a0002003333ffa952550000280000001c000200' +
      'eb0300008f2100000700000003000000800002000a0002003333000000010000280000001c000200eb0300008f2100000700000003000000800002000a000200' +
      '01005e0000010000280000001c000200eb0300008f2100000700000003000000800002000a0002003333ff00020b0000440000001c000200eb0300008f210000' +
      '0700000004000000c00002010a000200c6d2326f8f44000008000100c000020c14000300000000000a0000000a00000000000000',
    '1400000003000200eb0300008f21000000000000',
  ],
  routeDump: [
    '3c00000018000200ec0300008f21000002180000fe0300010400000008000f00fe000000080001000af40300080005000af4030008000400040000003c000000' +
      '18000200ec0300008f21000002180000fe02fd010000000008000f00fe00000008000100c000020008000700c000020b08000400030000003c00000018000200' +
      'ec0300008f21000002200000ff02fe020000000008000f00ff000000080001000af40100080007000af4010008000400040000003c00000018000200ec030000' +
      '8f21000002200000ff02fe020000000008000f00ff00000008000100c000020b08000700c000020b08000400030000003c00000018000200ec0300008f210000' +
      '02200000ff02fd030000000008000f00ff00000008000100c00002ff08000700c000020b0800040003000000',
    '1400000003000200ec0300008f21000000000000',
  ],
  addrDump: [
    '4c00000014000200ed0300008f210000021880000300000008000100c000020b08000200c000020b0700030075300000080008008000000014000600ffffffff' +
      'ffffffffbb280100bb2801005000000014000200ed0300008f2100000220800004000000080001000af40100080002000af401000b000300776566742e310000' +
      '080008008000000014000600ffffffffffffffffbc280100bc280100',
    '1400000003000200ed0300008f21000000000000',
  ],
  dummyErr: [
    '3c00000002000003ee0300008f210000a1ffffff3800000010000506ee0300000000000018000100556e6b6e6f776e20646576696365207479706500',
  ],
  vxlanExists: [
    '2400000002000001ef0300008f210000efffffff5800000010000506ef03000000000000',
  ],
  routeDelMissing: [
    '2400000002000001f00300008f210000fdffffff2c00000019000500f003000000000000',
  ],
} as const;

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
