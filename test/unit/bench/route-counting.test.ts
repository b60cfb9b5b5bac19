// The bench's light route counting (mainTableRoutes) against the full decoder
// (decodeRoute, itself checked against iproute2's bytes): the same IPv4
// main-table routes, added or deleted, from datagrams of one or several
// messages; other tables, IPv6 and other message types are not counted;
// broken datagrams are errors naming the offset.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mainTableRoutes, subnetKey } from '../../../bench/control-plane-entries.js';
import { parseIP4 } from '../../../lib/ip.js';
import { decodeRoute, encodeMessage, neighReplaceRequest, parseMessages, routeRequest, type RouteSpec, toMessage } from '../../../netlink/index.js';

const specs: [verb: 'replace' | 'del', spec: RouteSpec][] = [
  ['replace', { dst: '10.160.0.0/24', gateway: '10.160.0.0', index: 7, onlink: true, protocol: 87 }],
  ['replace', { dst: '10.160.1.0/24', index: 7 }],
  ['del', { dst: '10.160.2.0/24', index: 7 }],
  ['replace', { dst: '10.161.0.0/16', gateway: '192.0.2.1', index: 3, table: 100 }],
  ['replace', { dst: '10.162.0.0/24', gateway: '192.0.2.1', index: 3, table: 1000 }],
  ['replace', { dst: 'fd00::/64', index: 7 }],
  ['replace', { dst: '203.0.113.7/32', index: 3, metric: 100 }],
];

/** What the full decoder says the light one must report. */
function expected(buf: Buffer): [boolean, number][] {
  const out: [boolean, number][] = [];
  for (const m of parseMessages(buf)) {
    const r = decodeRoute(m);
    if (!r || r.family !== 4 || r.table !== 254) continue;
    const [ip, len] = r.dst.split('/');
    out.push([m.type === 24, subnetKey(parseIP4(ip!), Number(len))]);
  }
  return out;
}

function light(buf: Buffer): { seen: [boolean, number][]; any: boolean } {
  const seen: [boolean, number][] = [];
  const any = mainTableRoutes(buf, (added, key) => seen.push([added, key]));
  return { seen, any };
}

test('each route message alone: the same as the full decoder', () => {
  for (const [verb, spec] of specs) {
    const buf = toMessage(routeRequest(verb, spec), 1);
    assert.equal(light(buf).seen, expected(buf), `${verb} ${spec.dst}`);
  }
  assert.equal(light(toMessage(routeRequest('replace', specs[0]![1]), 1)).seen, [[true, subnetKey(parseIP4('10.160.0.0'), 24)]]);
  assert.equal(light(toMessage(routeRequest('del', specs[2]![1]), 1)).seen, [[false, subnetKey(parseIP4('10.160.2.0'), 24)]]);
});

test('a datagram of many messages, routes between other kinds: all of them, in order', () => {
  const parts = [
    toMessage(neighReplaceRequest({ index: 7, ip: '10.160.0.0', mac: '02:b5:a0:00:00:00' }), 1),
    ...specs.map(([verb, spec], i) => toMessage(routeRequest(verb, spec), 2 + i)),
  ];
  const buf = Buffer.concat(parts);
  const got = light(buf);
  assert.equal(got.seen, expected(buf));
  assert.is(got.seen.length, 4, 'main-table IPv4: 10.160.0.0/24, .1.0/24, .2.0/24 (del), 203.0.113.7/32');
  assert.is(got.any, true);
  assert.is(light(parts[0]!).any, false, 'a neighbour is no route notification');
  assert.is(light(toMessage(routeRequest('replace', specs[5]![1]), 1)).any, false, 'IPv6 is not counted');
});

test('broken datagrams are errors naming the offset (the shared parser\'s: parseMessages, splitBody, Attrs)', () => {
  const ok = toMessage(routeRequest('replace', specs[0]![1]), 1);
  assert.throws(() => light(ok.subarray(0, 10)), /at offset 0: truncated nlmsghdr: 10 bytes left, a header needs 16$/);
  const long = Buffer.from(ok);
  long.writeUInt32LE(ok.length + 8, 0);
  assert.throws(() => light(long), new RegExp(`at offset 0: nlmsg_len ${ok.length + 8} runs past the end \\(${ok.length} bytes left\\)$`));
  const badAttr = Buffer.from(ok);
  badAttr.writeUInt16LE(200, 16 + 12); // the first attribute's length runs past the message
  assert.throws(() => light(badAttr), new RegExp(`at offset 28: attribute type 1 length 200 runs past the end \\(${ok.length - 28} bytes left\\)$`));
  const short = encodeMessage(24, 0, 1, 0, Buffer.from([2, 24, 0, 0])); // an IPv4 RTM_NEWROUTE with 4 of rtmsg's 12 bytes
  assert.throws(() => light(short), /at offset 16: truncated message type 24 body: 4 bytes, need 12$/);
});

test.run();
