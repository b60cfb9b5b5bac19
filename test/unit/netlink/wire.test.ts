// Wire layer: framing, attribute alignment, NLMSG_ERROR/DONE, malformed input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  align, attr, attrFlag, attrNested, attrStr, attrU16BE, attrU32, attrU8, Attrs, decodeLink, encodeAttrs, encodeMessage,
  encodeNlMsg, NetlinkParseError, NLMSG_DONE, NLMSG_ERROR, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
  NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_MULTI, parseAttrs, parseDone, parseError, parseMessages,
  RTM_NEWLINK, RTM_NEWROUTE, splitBody,
} from '../../../netlink/index.js';

test('align rounds up to 4', () => {
  assert.equal([0, 1, 2, 3, 4, 5, 8, 9].map(align), [0, 4, 4, 4, 4, 8, 8, 12]);
});

test('attributes: length excludes padding, padding is zero, every size 0..7 round-trips', () => {
  for (let n = 0; n < 8; n++) {
    const data = Buffer.alloc(n, 0xab);
    const a = attr(42, data);
    assert.is(a.length, align(4 + n), `size ${n}`);
    assert.is(a.readUInt16LE(0), 4 + n, 'nla_len has no padding');
    assert.ok(a.subarray(4 + n).every((b) => b === 0), 'padding is zero');
    const two = Buffer.concat([a, attrU32(7, 0xdeadbeef)]);
    const parsed = parseAttrs(two);
    assert.is(parsed.length, 2);
    assert.is(parsed[0]!.data.toString('hex'), data.toString('hex'));
    assert.is(parsed[1]!.data.readUInt32LE(0), 0xdeadbeef, 'next attribute found after padding');
    assert.is(encodeAttrs(parsed).toString('hex'), two.toString('hex'));
  }
});

test('the last attribute may omit its padding (kernel-style tail)', () => {
  const a = Buffer.concat([attrU32(1, 5), Buffer.from([5, 0, 2, 0, 9])]); // u8 attr, no pad
  const p = Attrs.parse(a);
  assert.is(p.u32(1), 5);
  assert.is(p.u8(2), 9);
});

test('typed readers: strings stop at NUL, u16be is network order, flags are zero length', () => {
  const p = Attrs.parse(Buffer.concat([attrStr(3, 'weft.1'), attrU16BE(15, 8472), attrFlag(23), attrU8(7, 0)]));
  assert.is(p.str(3), 'weft.1');
  assert.is(p.u16be(15), 8472);
  assert.ok(p.has(23));
  assert.is(p.get(23)!.length, 0);
  assert.is(p.u8(7), 0);
  assert.is(p.u32(99), undefined);
});

test('nested attributes: IFLA_LINKINFO → IFLA_INFO_KIND / IFLA_INFO_DATA', () => {
  const info = attrNested(18, attr(1, Buffer.from('vxlan')), attrNested(2, attrU32(1, 7), attrU16BE(15, 4789)));
  const li = Attrs.parse(info).nested(18)!;
  assert.is(li.str(1), 'vxlan');
  const d = li.nested(2)!;
  assert.is(d.u32(1), 7);
  assert.is(d.u16be(15), 4789);
});

test('NLA_F_NESTED / NLA_F_NET_BYTEORDER are masked from the type and kept on re-encode', () => {
  const raw = attr(0x8000 | 0x4000 | 9, Buffer.alloc(4));
  const [a] = parseAttrs(raw);
  assert.equal([a!.type, a!.nested, a!.netByteOrder], [9, true, true]);
  assert.is(encodeAttrs([a!]).toString('hex'), raw.toString('hex'));
});

test('a later duplicate wins, as nla_parse; list keeps every attribute in order; addresses are read in place', () => {
  const p = Attrs.parse(Buffer.concat([attrU32(1, 5), attr(2, Buffer.from([10, 244, 3, 0])), attrU32(1, 6), attr(3, Buffer.from('fd000000000000000000000000000001', 'hex'))]));
  assert.is(p.u32(1), 6);
  assert.equal(p.list.map((a) => [a.type, a.data.length]), [[1, 4], [2, 4], [1, 4], [3, 16]]);
  assert.is(p.ip(2), '10.244.3.0');
  assert.is(p.ip(3), 'fd00::1');
  assert.is(p.ip(9), undefined);
  assert.throws(() => Attrs.parse(attr(5, Buffer.from([1, 2, 3]))).ip(5), /has 3 bytes, expected 4 or 16/);
});

test('a too-short value for a typed read is a parse error, not garbage', () => {
  const p = Attrs.parse(attr(4, Buffer.from([1, 2])));
  assert.throws(() => p.u32(4), (e: unknown) => e instanceof NetlinkParseError && /has 2 bytes, expected at least 4/.test((e as Error).message));
});

test('messages: several per datagram, each aligned; encode ∘ parse is identity', () => {
  const a = encodeMessage(RTM_NEWLINK, NLM_F_MULTI, 5, 77, Buffer.alloc(16), attrStr(3, 'ab'));
  const b = encodeMessage(NLMSG_DONE, NLM_F_MULTI, 5, 77, Buffer.alloc(4));
  const ms = parseMessages(Buffer.concat([a, b]));
  assert.is(ms.length, 2);
  assert.equal([ms[0]!.type, ms[0]!.seq, ms[0]!.pid, ms[1]!.type], [RTM_NEWLINK, 5, 77, NLMSG_DONE]);
  assert.is(encodeNlMsg(ms[0]!).toString('hex'), a.toString('hex'));
  assert.is(decodeLink(ms[0]!).name, 'ab');
  assert.equal(parseDone(ms[1]!), { errno: 0 });
});

function nlmsgerr(errno: number, flags: number, orig: Buffer, tlvs: Buffer[] = []): Buffer {
  const e = Buffer.alloc(4);
  e.writeInt32LE(-errno);
  return encodeMessage(NLMSG_ERROR, flags, orig.readUInt32LE(8), 1234, e, orig, ...tlvs);
}

test('NLMSG_ERROR: capped with ext-ack message and offset', () => {
  const req = encodeMessage(RTM_NEWROUTE, 5, 99, 0, Buffer.alloc(12));
  const m = parseMessages(nlmsgerr(22, NLM_F_CAPPED | NLM_F_ACK_TLVS, req.subarray(0, 16), [attrStr(NLMSGERR_ATTR_MSG, 'Invalid prefix for given prefix length'), attrU32(NLMSGERR_ATTR_OFFS, 28)]))[0]!;
  assert.equal(parseError(m), {
    errno: 22, orig: { len: 28, type: RTM_NEWROUTE, flags: 5, seq: 99, pid: 0 }, extAck: 'Invalid prefix for given prefix length', extAckOffset: 28,
  });
});

test('NLMSG_ERROR: uncapped echoes the request, TLVs follow it', () => {
  const req = encodeMessage(RTM_NEWROUTE, 5, 7, 0, Buffer.alloc(12), attrU32(4, 3)); // 36 bytes
  const m = parseMessages(nlmsgerr(17, NLM_F_ACK_TLVS, req, [attrStr(NLMSGERR_ATTR_MSG, 'exists')]))[0]!;
  const e = parseError(m);
  assert.is(e.errno, 17);
  assert.is(e.orig.len, 36);
  assert.is(e.extAck, 'exists');
});

test('NLMSG_ERROR: a plain ACK has errno 0 and no ext-ack', () => {
  const req = encodeMessage(RTM_NEWLINK, 5, 3, 0, Buffer.alloc(16));
  const e = parseError(parseMessages(nlmsgerr(0, NLM_F_CAPPED, req.subarray(0, 16)))[0]!);
  assert.is(e.errno, 0);
  assert.is(e.extAck, undefined);
});

test('NLMSG_DONE with an error (dump failed part way) and ext-ack', () => {
  const e = Buffer.alloc(4);
  e.writeInt32LE(-22);
  const m = parseMessages(encodeMessage(NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS, 1, 1, e, attrStr(NLMSGERR_ATTR_MSG, 'bad filter')))[0]!;
  assert.equal(parseDone(m), { errno: 22, extAck: 'bad filter' });
});

// ---------------------------------------------------------------- malformed input

const parseErr = (re: RegExp) => (e: unknown) => e instanceof NetlinkParseError && re.test((e as Error).message);

test('malformed: truncated header', () => {
  assert.throws(() => parseMessages(Buffer.alloc(10)), parseErr(/truncated nlmsghdr: 10 bytes left/));
  const ok = encodeMessage(RTM_NEWLINK, 0, 1, 0, Buffer.alloc(16));
  assert.throws(() => parseMessages(Buffer.concat([ok, Buffer.alloc(5)])), parseErr(/offset 32: truncated nlmsghdr/));
});

test('malformed: nlmsg_len shorter than a header, or past the end', () => {
  const b = encodeMessage(RTM_NEWLINK, 0, 1, 0, Buffer.alloc(16));
  b.writeUInt32LE(8, 0);
  assert.throws(() => parseMessages(b), parseErr(/nlmsg_len 8 is shorter than the header/));
  b.writeUInt32LE(400, 0);
  assert.throws(() => parseMessages(b), parseErr(/nlmsg_len 400 runs past the end \(32 bytes left\)/));
  b.writeUInt32LE(0, 0); // a zero length must not loop forever
  assert.throws(() => parseMessages(b), parseErr(/nlmsg_len 0 is shorter/));
});

test('malformed: attribute length past the end, or below the header size', () => {
  const a = attrU32(4, 1);
  a.writeUInt16LE(40, 0);
  assert.throws(() => parseAttrs(a), parseErr(/attribute type 4 length 40 runs past the end \(8 bytes left\)/));
  a.writeUInt16LE(2, 0);
  assert.throws(() => parseAttrs(a), parseErr(/length 2 < 4/));
  assert.throws(() => parseAttrs(Buffer.from([8, 0])), parseErr(/truncated attribute header/));
});

test('malformed: body shorter than its fixed struct; error message shorter than nlmsgerr', () => {
  const m = parseMessages(encodeMessage(RTM_NEWLINK, 0, 1, 0, Buffer.alloc(8)))[0]!;
  assert.throws(() => splitBody(m, 16), parseErr(/truncated message type 16 body: 8 bytes, need 16/));
  assert.throws(() => decodeLink(m), parseErr(/truncated/));
  const e = parseMessages(encodeMessage(NLMSG_ERROR, 0, 1, 0, Buffer.alloc(4)))[0]!;
  assert.throws(() => parseError(e), parseErr(/truncated nlmsgerr/));
});

test('malformed: every truncation and random corruption of a real message fails cleanly or decodes', () => {
  const good = encodeMessage(RTM_NEWLINK, 0, 1, 0, Buffer.alloc(16), attrStr(3, 'weft.1'), attrU32(4, 1450),
    attrNested(18, attr(1, Buffer.from('vxlan')), attrNested(2, attrU32(1, 1), attrU16BE(15, 8472))));
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const inputs: Buffer[] = [];
  for (let n = 0; n < good.length; n++) inputs.push(good.subarray(0, n));
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(good);
    for (let k = 0; k < 3; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    inputs.push(b);
  }
  for (const b of inputs) {
    try {
      for (const m of parseMessages(b)) if (m.type === RTM_NEWLINK) decodeLink(m);
    } catch (e) {
      assert.instance(e, NetlinkParseError, `unexpected ${(e as Error).stack}`);
    }
  }
});

test.run();
