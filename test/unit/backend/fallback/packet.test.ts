// The probes' wire format: message round trip, inner IPv4/UDP headers and
// checksums (checked with the udp backend's own rules, as its forwarder will
// check them), the VXLAN header and inner Ethernet frame, full-size padding.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeMessage, ipv4Udp, MESSAGE_LEN, paddingFor, vxlanFrame } from '../../../../backend/fallback/packet.js';
import { checkDatagram, internetChecksum } from '../../../../backend/udp/packet.js';
import { ForwardingTable } from '../../../../backend/udp/table.js';
import { parseIP4 } from '../../../../lib/ip.js';

const nonce = Buffer.from('0102030405060708', 'hex');

test('a message round-trips; anything else decodes to undefined', () => {
  const m = { kind: 'probe' as const, path: 'vxlan' as const, nonce, seq: 0xfffffffe };
  const b = encodeMessage(m, 1000);
  assert.is(b.length, 1000);
  assert.equal(decodeMessage(b), m);
  assert.equal(decodeMessage(encodeMessage({ ...m, kind: 'ack', path: 'udp' })), { ...m, kind: 'ack', path: 'udp' });
  assert.is(encodeMessage(m).length, MESSAGE_LEN);
  assert.is(decodeMessage(b.subarray(0, 23)), undefined);
  assert.is(decodeMessage(Buffer.from('not a probe at all, really')), undefined);
  const bad = Buffer.from(b);
  bad[5] = 9;
  assert.is(decodeMessage(bad), undefined);
});

test('ipv4Udp: header, lengths and both checksums valid; the udp forwarder accepts it from the peer', () => {
  const p = ipv4Udp('10.244.3.0', '10.244.5.0', 8285, 8285, encodeMessage({ kind: 'probe', path: 'udp', nonce, seq: 1 }, paddingFor(1450)));
  assert.is(p.length, 1450, 'padded to the overlay MTU');
  assert.is(p.readUInt16BE(2), 1450);
  assert.is(internetChecksum(p, 0, 20), 0, 'IPv4 header checksum');
  const pseudo = Buffer.concat([p.subarray(12, 20), Buffer.from([0, 17]), p.subarray(24, 26), p.subarray(20)]);
  assert.is(internetChecksum(pseudo), 0, 'UDP checksum');
  const routes = new ForwardingTable([{ subnet: '10.244.3.0/24', peerIp: '192.0.2.11', port: 8285 }]).routesOf('192.0.2.11');
  assert.is(checkDatagram(p, routes, [{ net: parseIP4('10.244.5.0'), prefixLen: 24 }]).ok, true);
});

test('vxlanFrame: I flag, VNI, inner Ethernet to the peer VTEP MAC', () => {
  const ip = ipv4Udp('10.244.3.0', '10.244.5.0', 8285, 8285, encodeMessage({ kind: 'ack', path: 'vxlan', nonce, seq: 2 }));
  const f = vxlanFrame(0x123456, '02:00:00:00:00:05', '02:11:11:11:11:11', ip);
  assert.equal([...f.subarray(0, 8)], [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
  assert.is(f.subarray(8, 14).toString('hex'), '020000000005');
  assert.is(f.subarray(14, 20).toString('hex'), '021111111111');
  assert.is(f.readUInt16BE(20), 0x0800);
  assert.ok(f.subarray(22).equals(ip));
});

test.run();
