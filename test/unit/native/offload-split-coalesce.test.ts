// Offload packet surgery (native/offload.h) on byte vectors: TSO/USO split, checksum
// completion, TCP coalescing, malformed input. Every checksum is verified with the
// independent implementation below, never with the addon's own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../../native/index.js';

const off = native().offload;

// ---- independent Internet checksum (RFC 1071), 16-bit words, plain JS numbers ----
function sum16(b: Uint8Array, start = 0, end = b.length, init = 0): number {
  let s = init;
  let i = start;
  for (; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < end) s += b[i]! << 8;
  return s;
}
function fold(s: number): number {
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}
function pseudo(v: 4 | 6, p: Uint8Array, proto: number, l4Len: number): number {
  const [a, n] = v === 4 ? [12, 8] : [8, 32];
  return sum16(p, a, a + n) + proto + Math.floor(l4Len / 0x10000) + (l4Len % 0x10000);
}
const ipHdrOk = (p: Uint8Array) => fold(sum16(p, 0, (p[0]! & 0x0f) * 4)) === 0xffff;
function l4Ok(v: 4 | 6, p: Uint8Array, l4: number, proto: number): boolean {
  return fold(sum16(p, l4, p.length, pseudo(v, p, proto, p.length - l4))) === 0xffff;
}

// ---- packet builders ----
const TH = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 };
const SRC4 = [10, 244, 1, 2], DST4 = [10, 244, 2, 3];
const SRC6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const TS_OPTS = Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]); // NOP NOP timestamps

function pattern(n: number, salt = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3 + salt) & 0xff;
  return b;
}

interface IpOpts {
  v?: 4 | 6;
  id?: number;
  ttl?: number;
  tos?: number;
  df?: boolean;
  src?: number[];
}
interface TcpOpts extends IpOpts {
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  options?: Buffer;
  payload: Buffer;
  csum?: 'full' | 'partial';
}

function ipHeader(o: IpOpts, proto: number, l4Len: number): Buffer {
  const v = o.v ?? 4;
  if (v === 4) {
    const h = Buffer.alloc(20);
    h[0] = 0x45;
    h[1] = o.tos ?? 0;
    h.writeUInt16BE(20 + l4Len, 2);
    h.writeUInt16BE(o.id ?? 0x1234, 4);
    h.writeUInt16BE(o.df === false ? 0 : 0x4000, 6);
    h[8] = o.ttl ?? 64;
    h[9] = proto;
    h.set(o.src ?? SRC4, 12);
    h.set(DST4, 16);
    h.writeUInt16BE(0xffff - fold(sum16(h)), 10);
    return h;
  }
  const h = Buffer.alloc(40);
  h.writeUInt32BE((0x60000000 | ((o.tos ?? 0) << 20) | 0x12345) >>> 0, 0);
  h.writeUInt16BE(l4Len, 4);
  h[6] = proto;
  h[7] = o.ttl ?? 64;
  h.set(o.src ?? SRC6, 8);
  h.set(DST6, 24);
  return h;
}

function tcpPacket(o: TcpOpts): Buffer {
  const v = o.v ?? 4;
  const opts = o.options ?? TS_OPTS;
  const thl = 20 + opts.length;
  const t = Buffer.alloc(thl);
  t.writeUInt16BE(o.sport ?? 40000, 0);
  t.writeUInt16BE(o.dport ?? 5201, 2);
  t.writeUInt32BE((o.seq ?? 1000) >>> 0, 4);
  t.writeUInt32BE(o.ack ?? 0x01020304, 8);
  t[12] = (thl / 4) << 4;
  t[13] = o.flags ?? TH.ACK;
  t.writeUInt16BE(o.window ?? 502, 14);
  opts.copy(t, 20);
  const p = Buffer.concat([ipHeader(o, 6, thl + o.payload.length), t, o.payload]);
  const l4 = v === 4 ? 20 : 40;
  const ps = pseudo(v, p, 6, p.length - l4);
  p.writeUInt16BE(o.csum === 'partial' ? fold(ps) : 0xffff - fold(sum16(p, l4, p.length, ps)), l4 + 16);
  return p;
}

function udpPacket(o: IpOpts & { payload: Buffer; csum?: 'full' | 'partial' }): Buffer {
  const v = o.v ?? 4;
  const u = Buffer.alloc(8);
  u.writeUInt16BE(40001, 0);
  u.writeUInt16BE(53, 2);
  u.writeUInt16BE(8 + o.payload.length, 4);
  const p = Buffer.concat([ipHeader(o, 17, 8 + o.payload.length), u, o.payload]);
  const l4 = v === 4 ? 20 : 40;
  const ps = pseudo(v, p, 17, p.length - l4);
  p.writeUInt16BE(o.csum === 'partial' ? fold(ps) : 0xffff - fold(sum16(p, l4, p.length, ps)) || 0xffff, l4 + 6);
  return p;
}

interface Vnet {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}
function vnet(h: Partial<Vnet>): Buffer {
  const b = Buffer.alloc(10);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  b.writeUInt16LE(h.hdrLen ?? 0, 2);
  b.writeUInt16LE(h.gsoSize ?? 0, 4);
  b.writeUInt16LE(h.csumStart ?? 0, 6);
  b.writeUInt16LE(h.csumOffset ?? 0, 8);
  return b;
}
function parseVnet(b: Buffer): Vnet {
  assert.is(b.length, 10, 'virtio_net_hdr is 10 bytes');
  return { flags: b[0]!, gsoType: b[1]!, hdrLen: b.readUInt16LE(2), gsoSize: b.readUInt16LE(4), csumStart: b.readUInt16LE(6), csumOffset: b.readUInt16LE(8) };
}
const NEEDS_CSUM = 1;
const GSO = { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4, UDP_L4: 5, ECN: 0x80 };

function throwsCode(fn: () => unknown, code: string, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.is((e as { code?: string }).code, code, `${what}: ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: expected error ${code}`);
}

// ---- TSO split ----

for (const v of [4, 6] as const) {
  test(`TSO IPv${v}: 3x1400+600 with PSH+FIN+CWR and a partial checksum splits into 4 right segments`, () => {
    const payload = pattern(4800);
    const seq0 = 0xffffffff - 2000; // wraps inside the second segment
    const flags = TH.ACK | TH.PSH | TH.FIN | TH.CWR;
    const sup = tcpPacket({ v, seq: seq0, flags, payload, id: 0xfffe, csum: 'partial' });
    const l4 = v === 4 ? 20 : 40;
    const hl = l4 + 32;
    const hdr = vnet({ flags: NEEDS_CSUM, gsoType: (v === 4 ? GSO.TCPV4 : GSO.TCPV6) | GSO.ECN, hdrLen: hl, gsoSize: 1400, csumStart: l4, csumOffset: 16 });
    const segs = off.segment(sup, hdr);
    assert.is(segs.length, 4);
    const sizes = [1400, 1400, 1400, 600];
    segs.forEach((s, i) => {
      assert.is(s.length, hl + sizes[i]!, `segment ${i} length`);
      if (v === 4) {
        assert.is(s.readUInt16BE(2), hl + sizes[i]!, `segment ${i} IPv4 total length`);
        assert.is(s.readUInt16BE(4), (0xfffe + i) & 0xffff, `segment ${i} IP ID`);
        assert.ok(ipHdrOk(s), `segment ${i} IPv4 header checksum`);
      } else {
        assert.is(s.readUInt16BE(4), 32 + sizes[i]!, `segment ${i} IPv6 payload length`);
      }
      assert.is(s.readUInt32BE(l4 + 4), (seq0 + 1400 * i) >>> 0, `segment ${i} seq`);
      const f = s[l4 + 13]!;
      assert.is(!!(f & TH.CWR), i === 0, `segment ${i} CWR only on the first`);
      assert.is(!!(f & TH.FIN), i === 3, `segment ${i} FIN only on the last`);
      assert.is(!!(f & TH.PSH), i === 3, `segment ${i} PSH only on the last`);
      assert.ok(f & TH.ACK, `segment ${i} keeps ACK`);
      assert.is(s.subarray(l4 + 8, l4 + 12).toString('hex'), sup.subarray(l4 + 8, l4 + 12).toString('hex'), 'ack number');
      assert.is(s.subarray(l4 + 20, hl).toString('hex'), TS_OPTS.toString('hex'), 'options copied');
      assert.ok(l4Ok(v, s, l4, 6), `segment ${i} TCP checksum`);
    });
    assert.ok(Buffer.concat(segs.map((s) => s.subarray(hl))).equals(payload), 'payloads concatenate to the original');
  });
}

test('TSO without NEEDS_CSUM (garbage checksum field) still yields full checksums; hdr_len is not trusted', () => {
  const sup = tcpPacket({ payload: pattern(3000), csum: 'full' });
  sup.writeUInt16BE(0xdead, 36);
  const segs = off.segment(sup, vnet({ gsoType: GSO.TCPV4, hdrLen: 200, gsoSize: 1000 }));
  assert.is(segs.length, 3);
  for (const s of segs) assert.ok(l4Ok(4, s, 20, 6));
});

test('TSO: payload an exact multiple of gso_size, smaller than gso_size, and empty', () => {
  const h = vnet({ flags: NEEDS_CSUM, gsoType: GSO.TCPV4, hdrLen: 52, gsoSize: 1400, csumStart: 20, csumOffset: 16 });
  assert.is(off.segment(tcpPacket({ payload: pattern(2800), csum: 'partial' }), h).length, 2);
  const one = off.segment(tcpPacket({ payload: pattern(700), flags: TH.ACK | TH.PSH, csum: 'partial' }), h);
  assert.is(one.length, 1);
  assert.ok(one[0]![33]! & TH.PSH, 'a single segment keeps PSH');
  assert.ok(l4Ok(4, one[0]!, 20, 6));
  const empty = off.segment(tcpPacket({ payload: Buffer.alloc(0), csum: 'partial' }), h);
  assert.is(empty.length, 1);
  assert.is(empty[0]!.length, 52);
  assert.ok(l4Ok(4, empty[0]!, 20, 6));
});

test('TSO with an odd gso_size: every segment checksums right', () => {
  const payload = pattern(5001);
  const segs = off.segment(tcpPacket({ v: 6, payload, csum: 'partial' }), vnet({ flags: NEEDS_CSUM, gsoType: GSO.TCPV6, hdrLen: 72, gsoSize: 999, csumStart: 40, csumOffset: 16 }));
  assert.is(segs.length, 6);
  for (const s of segs) assert.ok(l4Ok(6, s, 40, 6));
  assert.ok(Buffer.concat(segs.map((s) => s.subarray(72))).equals(payload));
});

// ---- USO split ----

for (const v of [4, 6] as const) {
  test(`USO IPv${v}: UDP payload split by gso_size with UDP length and checksum per segment`, () => {
    const payload = pattern(3000, 5);
    const sup = udpPacket({ v, payload, id: 7, csum: 'partial' });
    const l4 = v === 4 ? 20 : 40;
    const segs = off.segment(sup, vnet({ flags: NEEDS_CSUM, gsoType: GSO.UDP_L4, hdrLen: l4 + 8, gsoSize: 1200, csumStart: l4, csumOffset: 6 }));
    assert.equal(segs.map((s) => s.length - l4 - 8), [1200, 1200, 600]);
    segs.forEach((s, i) => {
      assert.is(s.readUInt16BE(l4 + 4), s.length - l4, `segment ${i} UDP length`);
      if (v === 4) {
        assert.is(s.readUInt16BE(2), s.length);
        assert.is(s.readUInt16BE(4), 7 + i);
        assert.ok(ipHdrOk(s));
      } else {
        assert.is(s.readUInt16BE(4), s.length - 40);
      }
      assert.ok(l4Ok(v, s, l4, 17), `segment ${i} UDP checksum`);
      assert.is.not(s.readUInt16BE(l4 + 6), 0, 'UDP checksum is never sent as 0');
    });
    assert.ok(Buffer.concat(segs.map((s) => s.subarray(l4 + 8))).equals(payload));
  });
}

// ---- GSO_NONE ----

test('GSO_NONE with NEEDS_CSUM completes a TCP and a UDP partial checksum; without it the packet is copied as is', () => {
  const tcp = tcpPacket({ v: 6, payload: pattern(333), csum: 'partial' });
  const [t] = off.segment(tcp, vnet({ flags: NEEDS_CSUM, csumStart: 40, csumOffset: 16 }));
  assert.ok(l4Ok(6, t!, 40, 6));
  assert.ok(t!.subarray(0, 56).equals(tcp.subarray(0, 56)) && t!.subarray(58).equals(tcp.subarray(58)), 'only the checksum changed');
  const udp = udpPacket({ payload: pattern(101), csum: 'partial' });
  const [u] = off.segment(udp, vnet({ flags: NEEDS_CSUM, csumStart: 20, csumOffset: 6 }));
  assert.ok(l4Ok(4, u!, 20, 17));
  const raw = Buffer.from([0x45, 1, 2, 3, 4, 5]);
  const [r] = off.segment(raw, vnet({}));
  assert.ok(r!.equals(raw), 'a plain packet passes untouched (not even parsed)');
});

// ---- malformed input ----

test('malformed input is rejected with a stable code', () => {
  const good = tcpPacket({ payload: pattern(3000), csum: 'partial' });
  const h = (o: Partial<Vnet> = {}) => vnet({ flags: NEEDS_CSUM, gsoType: GSO.TCPV4, hdrLen: 52, gsoSize: 1400, csumStart: 20, csumOffset: 16, ...o });
  assert.is(off.segment(good, h()).length, 3, 'the baseline is fine');
  throwsCode(() => off.segment(good, h({ gsoSize: 0 })), 'bad_gso_size', 'gso_size 0');
  throwsCode(() => off.segment(good, h({ hdrLen: good.length + 1 })), 'bad_hdr_len', 'hdr_len beyond the packet');
  throwsCode(() => off.segment(good, h({ gsoType: 2 })), 'bad_gso_type', 'unknown gso_type');
  throwsCode(() => off.segment(good, h({ gsoType: GSO.UDP })), 'bad_gso_type', 'UFO');
  throwsCode(() => off.segment(good, h({ gsoType: GSO.TCPV6 })), 'bad_ip_version', 'TCPV6 on IPv4');
  throwsCode(() => off.segment(good, h({ gsoType: GSO.UDP_L4 })), 'unsupported_protocol', 'USO on TCP');
  throwsCode(() => off.segment(good, h({ csumOffset: 6 })), 'bad_csum_offsets', 'wrong csum_offset');
  throwsCode(() => off.segment(good, h({ csumStart: 24 })), 'bad_csum_offsets', 'wrong csum_start');
  throwsCode(() => off.segment(good.subarray(0, 10), h({ hdrLen: 0 })), 'truncated', 'shorter than an IPv4 header');
  throwsCode(() => off.segment(good.subarray(0, 30), h({ hdrLen: 0 })), 'bad_ip_length', 'IP total length beyond the buffer');
  throwsCode(() => off.segment(Buffer.alloc(0), h({ hdrLen: 0 })), 'truncated', 'empty');
  throwsCode(() => off.segment(good, Buffer.alloc(9)), 'truncated', 'a 9-byte virtio header');
  const ihl = Buffer.from(good.subarray(0, 40));
  ihl[0] = 0x4f;
  ihl.writeUInt16BE(40, 2);
  throwsCode(() => off.segment(ihl, h({ hdrLen: 0 })), 'bad_ip_header', 'IPv4 options beyond the buffer');
  const doff = Buffer.from(good);
  doff[32] = 0xf0;
  doff.writeUInt16BE(70, 2);
  throwsCode(() => off.segment(doff.subarray(0, 70), h({ hdrLen: 0 })), 'bad_l4_header', 'TCP data offset beyond the packet');
  const frag = Buffer.from(good);
  frag.writeUInt16BE(0x2000, 6);
  throwsCode(() => off.segment(frag, h()), 'fragment', 'an IPv4 fragment');
  const v5 = Buffer.from(good);
  v5[0] = 0x55;
  throwsCode(() => off.segment(v5, h()), 'bad_ip_version', 'IP version 5');
  const v6short = tcpPacket({ v: 6, payload: pattern(100) }).subarray(0, 39);
  throwsCode(() => off.segment(v6short, h({ gsoType: GSO.TCPV6, hdrLen: 0 })), 'truncated', 'a 39-byte IPv6 packet');
  throwsCode(() => off.segment(good, vnet({ flags: NEEDS_CSUM, csumStart: good.length - 1, csumOffset: 0 })), 'bad_csum_offsets', 'GSO_NONE checksum field beyond the end');
});

test('every truncation and many corruptions of a super-packet give segments or a coded error, never a crash', () => {
  const pkts: [Buffer, Buffer][] = [
    [tcpPacket({ payload: pattern(4000), csum: 'partial' }), vnet({ flags: NEEDS_CSUM, gsoType: GSO.TCPV4, hdrLen: 52, gsoSize: 1400, csumStart: 20, csumOffset: 16 })],
    [tcpPacket({ v: 6, payload: pattern(4000), csum: 'partial' }), vnet({ flags: NEEDS_CSUM, gsoType: GSO.TCPV6, hdrLen: 72, gsoSize: 1400, csumStart: 40, csumOffset: 16 })],
    [udpPacket({ payload: pattern(4000), csum: 'partial' }), vnet({ flags: NEEDS_CSUM, gsoType: GSO.UDP_L4, hdrLen: 28, gsoSize: 1400, csumStart: 20, csumOffset: 6 })],
  ];
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  let ok = 0, rejected = 0;
  const attempt = (p: Buffer, h: Buffer) => {
    try {
      off.segment(p, h);
      off.coalesce([p, p]);
      ok++;
    } catch (e) {
      assert.type((e as { code?: string }).code, 'string', (e as Error).message);
      rejected++;
    }
  };
  for (const [p, h] of pkts) {
    for (let n = 0; n <= 120; n++) attempt(p.subarray(0, n), h);
    attempt(p, h);
    for (let k = 0; k < 400; k++) {
      const c = Buffer.from(k % 2 ? p.subarray(0, 20 + rnd(p.length - 20)) : p);
      for (let j = 0; j < 3; j++) c[rnd(Math.min(c.length, 80))] = rnd(256);
      const hh = Buffer.from(h);
      if (k % 4 === 0) hh[rnd(10)] = rnd(256);
      attempt(c, hh);
    }
  }
  assert.ok(ok > 0 && rejected > 0, `${ok} accepted, ${rejected} rejected`);
});

// ---- coalesce ----

function segStream(v: 4 | 6, n: number, size: number, o: Partial<TcpOpts> = {}): Buffer[] {
  const seq0 = o.seq ?? 5000;
  return Array.from({ length: n }, (_, i) => tcpPacket({ v, ...o, seq: seq0 + i * size, id: 100 + i, payload: pattern(size, i) }));
}

function checkSuper(v: 4 | 6, out: { hdr: Buffer; pkt: Buffer }, segs: Buffer[]): void {
  const l4 = v === 4 ? 20 : 40;
  const thl = (segs[0]![l4 + 12]! >> 4) * 4;
  const hl = l4 + thl;
  const h = parseVnet(out.hdr);
  const first = segs[0]!;
  assert.is(h.flags, NEEDS_CSUM, 'NEEDS_CSUM');
  assert.is(h.gsoType & 0x7f, v === 4 ? GSO.TCPV4 : GSO.TCPV6, 'gso_type');
  assert.is(h.hdrLen, hl, 'hdr_len');
  assert.is(h.gsoSize, first.length - hl, 'gso_size = the first segment payload');
  assert.is(h.csumStart, l4, 'csum_start');
  assert.is(h.csumOffset, 16, 'csum_offset');
  const p = out.pkt;
  const payload = Buffer.concat(segs.map((s) => s.subarray(hl)));
  assert.is(p.length, hl + payload.length);
  assert.ok(p.subarray(hl).equals(payload), 'payload is the segments in order');
  if (v === 4) {
    assert.is(p.readUInt16BE(2), p.length, 'IPv4 total length');
    assert.is(p.readUInt16BE(4), first.readUInt16BE(4), 'IP ID of the first segment');
    assert.ok(ipHdrOk(p), 'IPv4 header checksum');
  } else {
    assert.is(p.readUInt16BE(4), p.length - 40, 'IPv6 payload length');
  }
  assert.is(p.readUInt32BE(l4 + 4), first.readUInt32BE(l4 + 4), 'seq of the first segment');
  assert.is(p.readUInt16BE(l4 + 16), fold(pseudo(v, p, 6, p.length - l4)), 'TCP checksum field = folded pseudo-header sum');
  // What the kernel does with NEEDS_CSUM: sum from csum_start to the end, store the complement.
  const done = Buffer.from(p);
  done.writeUInt16BE(0xffff - fold(sum16(done, l4)), l4 + 16);
  assert.ok(l4Ok(v, done, l4, 6), 'completing the partial checksum gives a valid one');
  const last = segs[segs.length - 1]!;
  assert.is(p[l4 + 13], (first[l4 + 13]! | last[l4 + 13]!) & 0xff, 'flags: the first segment, plus PSH/FIN of the last');
}

for (const v of [4, 6] as const) {
  test(`coalesce IPv${v}: 3x1400+600 ending PSH+FIN becomes one super-packet; split -> coalesce is the identity`, () => {
    const payload = pattern(4800);
    const l4 = v === 4 ? 20 : 40;
    const sup = tcpPacket({ v, seq: 0xffffff00, flags: TH.ACK | TH.PSH | TH.FIN, payload, csum: 'partial' });
    const hdr = vnet({ flags: NEEDS_CSUM, gsoType: v === 4 ? GSO.TCPV4 : GSO.TCPV6, hdrLen: l4 + 32, gsoSize: 1400, csumStart: l4, csumOffset: 16 });
    const segs = off.segment(sup, hdr);
    const out = off.coalesce(segs);
    assert.is(out.length, 1);
    checkSuper(v, out[0]!, segs);
    assert.is(out[0]!.pkt.toString('hex'), sup.toString('hex'), 'the original super-packet, byte for byte');
    assert.is(out[0]!.hdr.toString('hex'), hdr.toString('hex'), 'and its virtio header');
  });
}

test('coalesce: CWR on the first segment sets GSO_ECN; a later CWR segment starts a new packet', () => {
  const segs = segStream(4, 4, 1000);
  segs[0] = tcpPacket({ seq: 5000, id: 100, flags: TH.ACK | TH.CWR, payload: pattern(1000, 0) });
  let out = off.coalesce(segs);
  assert.is(out.length, 1);
  assert.is(parseVnet(out[0]!.hdr).gsoType, GSO.TCPV4 | GSO.ECN);
  const later = segStream(4, 4, 1000);
  later[2] = tcpPacket({ seq: 7000, id: 102, flags: TH.ACK | TH.CWR, payload: pattern(1000, 2) });
  out = off.coalesce(later);
  assert.is(out.length, 2);
  checkSuper(4, out[0]!, later.slice(0, 2));
  checkSuper(4, out[1]!, later.slice(2));
});

test('coalesce refuses a gap in the sequence, and keeps the order', () => {
  const segs = segStream(4, 4, 1000);
  segs[2] = tcpPacket({ seq: 5000 + 2 * 1000 + 1, id: 102, payload: pattern(1000, 2) });
  segs[3] = tcpPacket({ seq: 5000 + 3 * 1000 + 1, id: 103, payload: pattern(1000, 3) });
  const out = off.coalesce(segs);
  assert.is(out.length, 2);
  checkSuper(4, out[0]!, segs.slice(0, 2));
  checkSuper(4, out[1]!, segs.slice(2));
});

test('coalesce merges two interleaved flows separately and never mixes them', () => {
  const a = segStream(4, 3, 1200, { sport: 1111 });
  const b = segStream(4, 3, 1200, { sport: 2222, seq: 90000 });
  const out = off.coalesce([a[0]!, b[0]!, a[1]!, b[1]!, a[2]!, b[2]!]);
  assert.is(out.length, 2);
  checkSuper(4, out[0]!, a);
  checkSuper(4, out[1]!, b);
  const other = segStream(4, 2, 1200, { src: [10, 244, 9, 9] });
  assert.is(off.coalesce([a[0]!, other[1]!]).length, 2, 'another source address is another flow');
});

test('coalesce: SYN, RST or URG never merge; FIN ends a packet; PSH only on the last', () => {
  for (const bad of [TH.SYN | TH.ACK, TH.RST | TH.ACK, TH.URG | TH.ACK]) {
    const segs = segStream(4, 3, 1000);
    segs[1] = tcpPacket({ seq: 6000, id: 101, flags: bad, payload: pattern(1000, 1) });
    const out = off.coalesce(segs);
    assert.is(out.length, 3, `flags 0x${bad.toString(16)} in the middle`);
    out.forEach((o, i) => {
      assert.is(parseVnet(o.hdr).gsoType, GSO.NONE);
      assert.ok(o.pkt.equals(segs[i]!), 'passed through unchanged, in order');
    });
  }
  for (const end of [TH.FIN, TH.PSH]) {
    const segs = segStream(4, 4, 1000);
    segs[1] = tcpPacket({ seq: 6000, id: 101, flags: TH.ACK | end, payload: pattern(1000, 1) });
    const out = off.coalesce(segs);
    assert.is(out.length, 2);
    checkSuper(4, out[0]!, segs.slice(0, 2));
    assert.ok(out[0]!.pkt[33]! & end, 'the flag is on the merged packet');
    checkSuper(4, out[1]!, segs.slice(2));
  }
});

test('coalesce: a shorter segment ends the packet; a larger one is not merged', () => {
  const sizes = [1400, 1000, 1400, 1400, 1500];
  let seq = 5000;
  const segs = sizes.map((n, i) => {
    const p = tcpPacket({ seq, id: i, payload: pattern(n, i) });
    seq += n;
    return p;
  });
  const out = off.coalesce(segs);
  assert.is(out.length, 3);
  checkSuper(4, out[0]!, segs.slice(0, 2));
  checkSuper(4, out[1]!, segs.slice(2, 4));
  assert.ok(out[2]!.pkt.equals(segs[4]!));
  assert.is(parseVnet(out[2]!.hdr).gsoType, GSO.NONE);
});

test('coalesce refuses differing ACK, window, options, TTL, TOS, no DF, a bad checksum', () => {
  const variants: [string, Partial<TcpOpts>][] = [
    ['ack', { ack: 0x01020305 }],
    ['window', { window: 503 }],
    ['options', { options: Buffer.from([1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 2]) }],
    ['ttl', { ttl: 63 }],
    ['tos', { tos: 1 }],
  ];
  for (const [what, o] of variants) {
    const segs = segStream(4, 2, 1000);
    segs[1] = tcpPacket({ seq: 6000, id: 101, payload: pattern(1000, 1), ...o });
    const out = off.coalesce(segs);
    assert.is(out.length, 2, what);
    assert.ok(out[0]!.pkt.equals(segs[0]!) && out[1]!.pkt.equals(segs[1]!), `${what}: unchanged`);
  }
  assert.is(off.coalesce(segStream(4, 3, 1000, { df: false })).length, 3, 'IPv4 without DF');
  const v6 = segStream(6, 2, 1000);
  v6[1] = tcpPacket({ v: 6, seq: 6000, payload: pattern(1000, 1), ttl: 1 });
  assert.is(off.coalesce(v6).length, 2, 'IPv6 hop limit');
  const bad = segStream(4, 3, 1000);
  bad[1]![100] = bad[1]![100]! ^ 0xff;
  const out = off.coalesce(bad);
  assert.is(out.length, 3, 'a corrupt segment is not laundered into a partial checksum');
  assert.ok(out[1]!.pkt.equals(bad[1]!));
});

test('coalesce passes pure ACKs, UDP, garbage and single segments through, keeping per-flow order', () => {
  const segs = segStream(4, 3, 1000);
  const ack = tcpPacket({ seq: 6000, payload: Buffer.alloc(0) });
  const udp = udpPacket({ payload: pattern(50) });
  const junk = Buffer.from([0x45, 0, 0]);
  const out = off.coalesce([segs[0]!, ack, segs[1]!, udp, junk, segs[2]!]);
  // The pure ACK of the same flow closes the first packet: nothing after it may jump ahead.
  assert.is(out.length, 5);
  assert.ok(out[0]!.pkt.equals(segs[0]!));
  assert.ok(out[1]!.pkt.equals(ack));
  checkSuper(4, out[2]!, segs.slice(1));
  assert.ok(out[3]!.pkt.equals(udp));
  assert.ok(out[4]!.pkt.equals(junk));
  for (const i of [0, 1, 3, 4]) assert.is(out[i]!.hdr.toString('hex'), '00'.repeat(10), `packet ${i}: GSO_NONE, no flags`);
});

test('coalesce stays within 64 KiB: 50 x 1400 bytes become two super-packets', () => {
  const segs = segStream(4, 50, 1400);
  const out = off.coalesce(segs);
  assert.is(out.length, 2);
  for (const o of out) assert.ok(o.pkt.length <= 65535, `${o.pkt.length} bytes`);
  const n0 = (out[0]!.pkt.length - 52) / 1400;
  assert.is(n0, Math.floor((65535 - 52) / 1400));
  checkSuper(4, out[0]!, segs.slice(0, n0));
  checkSuper(4, out[1]!, segs.slice(n0));
  const v6 = off.coalesce(segStream(6, 50, 1400));
  assert.is(v6.length, 2);
  for (const o of v6) assert.ok(o.pkt.length <= 65535);
});

test('checksum() agrees with the RFC 1071 example and the independent sum on odd lengths', () => {
  assert.is(off.checksum(Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0xffff - 0xddf2);
  // Across the widths of the sum (8-byte, 32-byte SSE2, 64-byte AVX2 steps) and their remainders.
  for (const n of [0, 1, 2, 3, 7, 8, 9, 15, 17, 63, 64, 65, 127, 128, 129, 191, 1420, 1501, 4099, 65535]) {
    const b = pattern(n, n);
    assert.is(off.checksum(b), 0xffff - fold(sum16(b)), `${n} bytes`);
  }
});

test.run();
