// WireGuard's generic netlink family, byte for byte: nlctrl's family lookup as
// wg(8) sends it, WG_CMD_SET_DEVICE against wgctrl's own test vector (its
// internal/wglinux configure test, "ok, all"), wgctrl's batching, and the
// GET_DEVICE decoder on a device split over two messages. The expected bytes
// are built here with a separate little TLV writer, not with weft's encoder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeFamily, decodeSockaddr, decodeWgDevice, encodeMessage, encodeSockaddr, GenlHandle, getFamilyRequest, NetlinkError,
  type NetlinkSocket, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, parseMessages, toMessage, wgGetRequest, wgSetRequests, WireguardNetlink,
} from '../../../netlink/index.js';
import { Prefix } from '../../../lib/ip.js';

/** One netlink attribute: u16 length (unpadded), u16 type, payload, zero padding to 4 bytes. */
function tlv(type: number, ...payload: Buffer[]): Buffer {
  const p = Buffer.concat(payload);
  const h = Buffer.alloc(4);
  h.writeUInt16LE(4 + p.length, 0);
  h.writeUInt16LE(type, 2);
  return Buffer.concat([h, p, Buffer.alloc((4 - (p.length % 4)) % 4)]);
}
const NESTED = 0x8000;
const u16 = (v: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const hexb = (s: string) => Buffer.from(s, 'hex');
const genlhdr = (cmd: number, version = 1) => Buffer.from([cmd, version, 0, 0]);
/** nlmsghdr + body, as the kernel sees it. */
function nlmsg(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  return Buffer.concat([h, body]);
}

test('CTRL_CMD_GETFAMILY "wireguard": the 36 bytes wg(8) sends (libmnl: version 1, REQUEST|ACK)', () => {
  const want = '24000000' + '1000' + '0500' + '01000000' + '00000000' + '03010000' + '0e00' + '0200' + Buffer.from('wireguard\0').toString('hex') + '0000';
  assert.is(toMessage(getFamilyRequest('wireguard'), 1).toString('hex'), want);
});

test('nlctrl\'s answer gives the family id', () => {
  const answer = nlmsg(0x10, 0, 1, Buffer.concat([genlhdr(1, 2), tlv(2, Buffer.from('wireguard\0')), tlv(1, u16(27)), tlv(3, u32(1))]));
  assert.equal(decodeFamily(parseMessages(answer)[0]!), { id: 27, name: 'wireguard', version: 1 });
});

const K = {
  priv: 'e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a',
  p1: 'b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33',
  psk: '188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52',
  p2: '58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376',
  p3: '662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58',
  p4: 'e818b58db5274087fcc1be5dc728cf53d3b5726b4cef6b9bab8f8f8c2452c25c',
};
function sockaddr4(ip: number[], port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0);
  b.writeUInt16BE(port, 2);
  Buffer.from(ip).copy(b, 4);
  return b;
}
function sockaddr6(addr: string, port: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(10, 0);
  b.writeUInt16BE(port, 2);
  hexb(addr).copy(b, 8);
  return b;
}
const allowed = (i: number, ip: number[], mask: number) => tlv(NESTED | i, tlv(1, u16(2)), tlv(2, Buffer.from(ip)), tlv(3, Buffer.from([mask])));

test('WG_CMD_SET_DEVICE: wgctrl\'s "ok, all" vector, byte for byte', () => {
  const [req, ...more] = wgSetRequests(27, 'wg0', {
    privateKey: hexb(K.priv),
    listenPort: 12912,
    fwmark: 0,
    replacePeers: true,
    peers: [
      { publicKey: hexb(K.p1), presharedKey: hexb(K.psk), endpoint: { ip: 'abcd:23::33', port: 51820 }, replaceAllowedIps: true, allowedIps: [Prefix.parse('192.168.4.4/32')] },
      { publicKey: hexb(K.p2), updateOnly: true, endpoint: { ip: '182.122.22.19', port: 3233 }, persistentKeepalive: 111, replaceAllowedIps: true, allowedIps: [Prefix.parse('192.168.4.6/32')] },
      { publicKey: hexb(K.p3), endpoint: { ip: '5.152.198.39', port: 51820 }, replaceAllowedIps: true, allowedIps: [Prefix.parse('192.168.4.10/32'), Prefix.parse('192.168.4.11/32')] },
      { publicKey: hexb(K.p4), remove: true },
    ],
  });
  assert.is(more.length, 0);
  const attrs = Buffer.concat([
    tlv(2, Buffer.from('wg0\0')),
    tlv(3, hexb(K.priv)),
    tlv(6, u16(12912)),
    tlv(7, u32(0)),
    tlv(5, u32(1)),
    tlv(NESTED | 8,
      tlv(NESTED | 0, tlv(1, hexb(K.p1)), tlv(3, u32(2)), tlv(2, hexb(K.psk)), tlv(4, sockaddr6('abcd0023000000000000000000000033', 51820)), tlv(NESTED | 9, allowed(0, [192, 168, 4, 4], 32))),
      tlv(NESTED | 1, tlv(1, hexb(K.p2)), tlv(3, u32(6)), tlv(4, sockaddr4([182, 122, 22, 19], 3233)), tlv(5, u16(111)), tlv(NESTED | 9, allowed(0, [192, 168, 4, 6], 32))),
      tlv(NESTED | 2, tlv(1, hexb(K.p3)), tlv(3, u32(2)), tlv(4, sockaddr4([5, 152, 198, 39], 51820)), tlv(NESTED | 9, allowed(0, [192, 168, 4, 10], 32), allowed(1, [192, 168, 4, 11], 32))),
      tlv(NESTED | 3, tlv(1, hexb(K.p4)), tlv(3, u32(1))),
    ),
  ]);
  const want = nlmsg(27, NLM_F_REQUEST | NLM_F_ACK, 7, Buffer.concat([genlhdr(1), attrs]));
  assert.is(toMessage(req!, 7).toString('hex'), want.toString('hex'));
  assert.not.match(req!.op, /e84b5a6d|6EtabScX/i, 'the private key is not in the operation text used in errors');
});

test('more than 32 peers: one peer per message (wgctrl\'s batching), replace-peers only in the first, device fields in each', () => {
  const peers = Array.from({ length: 40 }, (_, i) => ({ publicKey: Buffer.alloc(32, i + 1), allowedIps: [Prefix.parse(`10.244.${i}.0/24`)], replaceAllowedIps: true }));
  const reqs = wgSetRequests(27, 'weft-wg', { listenPort: 51820, replacePeers: true, peers });
  assert.is(reqs.length, 40);
  const flagsAttr = tlv(5, u32(1)).toString('hex');
  assert.ok(reqs[0]!.body.toString('hex').includes(flagsAttr));
  for (const r of reqs.slice(1)) assert.not.ok(r.body.toString('hex').includes(flagsAttr));
  for (const r of reqs) assert.ok(r.body.toString('hex').includes(tlv(6, u16(51820)).toString('hex')));
  assert.ok(reqs[39]!.body.toString('hex').includes(Buffer.alloc(32, 40).toString('hex')));
});

test('WG_CMD_GET_DEVICE is a dump by name', () => {
  const m = toMessage(wgGetRequest(27, 'weft-wg'), 9, 0, false);
  assert.is(m.toString('hex'), nlmsg(27, NLM_F_REQUEST | NLM_F_DUMP, 9, Buffer.concat([genlhdr(0), tlv(2, Buffer.from('weft-wg\0'))])).toString('hex'));
});

test('a device split over two messages: the repeated peer\'s allowed IPs are merged; zero keys mean none', () => {
  const ts = Buffer.alloc(16);
  ts.writeBigInt64LE(1700000000n, 0);
  ts.writeBigInt64LE(500000000n, 8);
  const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
  const dev = (peers: Buffer[]) => tlv(NESTED | 8, ...peers);
  const m1 = nlmsg(27, 2, 5, Buffer.concat([genlhdr(0), tlv(1, u32(4)), tlv(2, Buffer.from('weft-wg\0')), tlv(3, hexb(K.priv)), tlv(4, hexb(K.p4)), tlv(6, u16(51820)), tlv(7, u32(0)),
    dev([
      tlv(NESTED | 0, tlv(1, hexb(K.p1)), tlv(2, Buffer.alloc(32)), tlv(4, sockaddr4([192, 0, 2, 12], 51820)), tlv(5, u16(0)), tlv(6, ts), tlv(7, u64(1234)), tlv(8, u64(5678)), tlv(NESTED | 9, allowed(0, [10, 244, 1, 0], 24))),
      tlv(NESTED | 1, tlv(1, hexb(K.p2)), tlv(2, hexb(K.psk)), tlv(5, u16(25)), tlv(6, Buffer.alloc(16)), tlv(NESTED | 9, allowed(0, [10, 244, 2, 0], 24))),
    ])]));
  const m2 = nlmsg(27, 2, 5, Buffer.concat([genlhdr(0), tlv(1, u32(4)), tlv(2, Buffer.from('weft-wg\0')),
    dev([tlv(NESTED | 0, tlv(1, hexb(K.p2)), tlv(NESTED | 9, allowed(0, [10, 244, 3, 0], 24)))])]));
  const d = decodeWgDevice([...parseMessages(m1), ...parseMessages(m2)]);
  assert.is(d.name, 'weft-wg');
  assert.is(d.privateKey!.toString('hex'), K.priv);
  assert.is(d.listenPort, 51820);
  assert.is(d.peers.length, 2);
  const [a, b] = d.peers;
  assert.equal(a!.endpoint, { ip: '192.0.2.12', port: 51820 });
  assert.is(a!.presharedKey, undefined);
  assert.is(a!.lastHandshake!.getTime(), 1700000000500);
  assert.is(a!.rxBytes, 1234);
  assert.is(a!.txBytes, 5678);
  assert.equal(a!.allowedIps.map(String), ['10.244.1.0/24']);
  assert.is(b!.presharedKey!.toString('hex'), K.psk);
  assert.is(b!.lastHandshake, null);
  assert.is(b!.persistentKeepalive, 25);
  assert.equal(b!.allowedIps.map(String), ['10.244.2.0/24', '10.244.3.0/24']);
});

test('sockaddr: IPv4 16 bytes and IPv6 28 bytes, port big-endian, round trip', () => {
  assert.is(encodeSockaddr({ ip: '192.0.2.11', port: 51820 }).toString('hex'), '0200ca6cc000020b0000000000000000');
  assert.equal(decodeSockaddr(encodeSockaddr({ ip: '2001:db8::1', port: 51821 })), { ip: '2001:db8::1', port: 51821 });
  assert.is(encodeSockaddr({ ip: '2001:db8::1', port: 1 }).length, 28);
  assert.throws(() => encodeSockaddr({ ip: '192.0.2.1', port: 70000 }), /0\.\.65535/);
});

/** Answers requests by command: nlctrl (unless no family), then SET with an ACK. */
class FakeGenl implements NetlinkSocket {
  readonly portId = 77;
  sent: Buffer[] = [];
  private q: Buffer[] = [];
  constructor(private readonly hasFamily: boolean) {}
  send(msg: Buffer): void {
    this.sent.push(msg);
    const [m] = parseMessages(msg);
    const ack = (errno: number) => { const e = Buffer.alloc(4); e.writeInt32LE(-errno); return encodeMessage(2, 0x100, m!.seq, 77, e, msg.subarray(0, 16)); };
    if (m!.type === 0x10) {
      if (!this.hasFamily) this.q.push(ack(2));
      else this.q.push(Buffer.concat([nlmsg(0x10, 0, m!.seq, Buffer.concat([genlhdr(1, 2), tlv(1, u16(27)), tlv(2, Buffer.from('wireguard\0'))])), ack(0)]));
    } else {
      this.q.push(ack(0));
    }
  }
  recv(): Buffer | null { return this.q.shift() ?? null; }
  close(): void {}
}

test('WireguardNetlink: family resolved once; a kernel without the family says so (EOPNOTSUPP)', () => {
  const s = new FakeGenl(true);
  const wg = new WireguardNetlink(new GenlHandle(s));
  wg.set('weft-wg', { listenPort: 51820 });
  wg.set('weft-wg', { listenPort: 51821 });
  assert.equal(s.sent.map((b) => b.readUInt16LE(4)), [0x10, 27, 27]);
  const none = new WireguardNetlink(new GenlHandle(new FakeGenl(false)));
  assert.is(none.familyId(), undefined);
  try {
    none.set('weft-wg', { listenPort: 1 });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, NetlinkError);
    assert.is((e as NetlinkError).code, 'EOPNOTSUPP');
    assert.match((e as Error).message, /wg set weft-wg: .*no WireGuard generic netlink family/);
  }
});

test.run();
