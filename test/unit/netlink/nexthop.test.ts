// Nexthop objects and routes through them, byte for byte against iproute2 6.1
// (captured with `strace -e trace=sendmsg,recvmsg -xx ip ...` on Linux 6.18,
// weft.1 = ifindex 2): the requests weft sends, and the kernel's dump answers
// decoded (a route through an object with and without nexthop_compat_mode).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeNexthop, decodeNotification, decodeRoute, nexthopDumpRequest, nexthopRequest, parseMessages, routeRequest, RTM_GETNEXTHOP, RTM_NEWNEXTHOP,
  RT_SCOPE_LINK, toMessage, type NlMsg, type Request,
} from '../../../netlink/index.js';
import { classifyNotifications } from '../../../backend/route-events.js';

const SEQ = 1795873244;
/** A netlink header + body as the capture shows them. */
function msg(type: number, flags: number, body: string): string {
  const b = Buffer.from(body.replace(/ /g, ''), 'hex');
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + b.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(SEQ, 8);
  return h.toString('hex') + b.toString('hex');
}

const IPROUTE2 = {
  // ip nexthop replace id 1459617793 via 10.244.3.0 dev weft.1 onlink proto 87
  nhReplace: msg(0x68, 0x505, '02005700 04000000 08000100 01000057 08000600 0af40300 08000500 02000000'),
  // ip route replace 10.244.3.0/24 nhid 1459617793 proto 87
  routeNhid: msg(0x18, 0x505, '02180000 fe570001 00000000 08000100 0af40300 08001e00 01000057'),
  // ip nexthop del id 1459617793
  nhDel: msg(0x69, 0x005, '00000000 00000000 08000100 01000057'),
};

const KERNEL = {
  // ip nexthop show: id 1459617793 via 10.244.3.0 dev weft.1 scope link proto 87 onlink
  nexthop: msg(0x68, 0x2, '02fd5700 04000000 08000100 01000057 08000500 02000000 08000600 0af40300'),
  // ip route show, net.ipv4.nexthop_compat_mode=1: the object's gateway, device and onlink repeated
  routeCompat: msg(0x18, 0x22, '02180000 fe570001 04000000 08000f00 fe000000 08000100 0af40300 08001e00 01000057 08000500 0af40300 08000400 02000000'),
  // the same with nexthop_compat_mode=0: only the id
  routeBare: msg(0x18, 0x22, '02180000 fe570001 00000000 08000f00 fe000000 08000100 0af40300 08001e00 01000057'),
};

function same(req: Request, hex: string): void {
  assert.is(toMessage(req, SEQ, 0, true).toString('hex'), hex, req.op);
}
const one = (hex: string): NlMsg => parseMessages(Buffer.from(hex, 'hex'))[0]!;

test('nexthop replace, route replace nhid, nexthop del: the bytes iproute2 sends', () => {
  same(nexthopRequest('replace', { id: 1459617793, gateway: '10.244.3.0', index: 2, onlink: true, protocol: 87 }), IPROUTE2.nhReplace);
  same(routeRequest('replace', { dst: '10.244.3.0/24', nhid: 1459617793, protocol: 87 }), IPROUTE2.routeNhid);
  same(nexthopRequest('del', { id: 1459617793 }), IPROUTE2.nhDel);
});

test('nexthop add is exclusive (NLM_F_CREATE|NLM_F_EXCL), otherwise the same message', () => {
  const add = toMessage(nexthopRequest('add', { id: 1459617793, gateway: '10.244.3.0', index: 2, onlink: true, protocol: 87 }), SEQ, 0, true);
  assert.is(add.readUInt16LE(6), 0x605);
  assert.is(add.subarray(16).toString('hex'), Buffer.from(IPROUTE2.nhReplace, 'hex').subarray(16).toString('hex'));
});

test('nexthop requests name their operation and refuse bad values', () => {
  assert.is(nexthopRequest('add', { id: 7, gateway: '192.0.2.12', index: 3, protocol: 87 }).op, 'nexthop add id 7 via 192.0.2.12 dev 3 proto 87');
  assert.throws(() => nexthopRequest('add', { id: 0, gateway: '192.0.2.12', index: 3 }), /nexthop id must be an integer in 1\.\.4294967295, got 0/);
  assert.throws(() => nexthopRequest('add', { id: 7, gateway: '192.0.2.12' }), /nexthop 7 needs a device/);
  assert.throws(() => routeRequest('replace', { dst: '10.244.3.0/24', nhid: 0 }), /route nhid must be an integer/);
  const dump = nexthopDumpRequest();
  assert.is(dump.type, RTM_GETNEXTHOP);
  assert.is(dump.body.length, 8);
});

test('the kernel\'s nexthop decodes to what ip -d nexthop shows', () => {
  const m = one(KERNEL.nexthop);
  assert.is(m.type, RTM_NEWNEXTHOP);
  assert.equal(decodeNexthop(m), {
    id: 1459617793, family: 4, onlink: true, protocol: 87, scope: RT_SCOPE_LINK, flags: 4, group: false, blackhole: false,
    gateway: '10.244.3.0', index: 2,
  });
});

test('a route through an object decodes with its nhid, with and without compat mode', () => {
  const compat = decodeRoute(one(KERNEL.routeCompat))!;
  assert.is(compat.nhid, 1459617793);
  assert.is(compat.gateway, '10.244.3.0');
  assert.is(compat.index, 2);
  assert.is(compat.onlink, true);
  const bare = decodeRoute(one(KERNEL.routeBare))!;
  assert.equal(bare, { family: 4, dst: '10.244.3.0/24', onlink: false, table: 254, protocol: 87, scope: 0, type: 1, flags: 0, nhid: 1459617793 });
});

test('a deleted object is a notification; one of weft\'s protocol is a deletion of ours (its routes went without a notice)', () => {
  const del = Buffer.from(KERNEL.nexthop, 'hex');
  del.writeUInt16LE(0x69, 4); // RTM_DELNEXTHOP, as `ip monitor nexthop` shows "Deleted id ..."
  const n = decodeNotification(one(del.toString('hex')))!;
  assert.is(n.kind, 'nexthop');
  assert.is(n.kind === 'nexthop' && n.action, 'del');
  assert.equal(classifyNotifications([n], { protocol: 87 }), { oursDeleted: true, underlayChanged: false });
  assert.equal(classifyNotifications([n], { protocol: 88 }), { oursDeleted: false, underlayChanged: false });
  const added = decodeNotification(one(KERNEL.nexthop))!;
  assert.equal(classifyNotifications([added], { protocol: 87 }), { oursDeleted: false, underlayChanged: false });
});

test.run();
