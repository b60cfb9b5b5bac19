// The one IP model: address text as inet_ntop prints it, IPv4 uint32 helpers,
// and Prefix over both families.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatIP4, formatIp, ipNumber, isIp, parseCidr, parseIP4, parseIp, Prefix } from '../../../lib/ip.js';
import { formatMac, parseMac } from '../../../lib/mac.js';
import fc from 'fast-check';

/** The dotted-quad rule as a regular expression (the parser scans characters instead): 4 parts, 0..255, no leading zeros. */
function referenceV4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

test('ip text: parse and format as inet_ntop does', () => {
  assert.is(parseIp('192.0.2.11').bytes.toString('hex'), 'c000020b');
  for (const [inp, out] of [
    ['fd00:0:0:3::', 'fd00:0:0:3::'], ['FE80:0:0:0:0:0:0:1', 'fe80::1'], ['::', '::'], ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], ['2001:db8::', '2001:db8::'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'], ['ff02::16', 'ff02::16'],
  ] as const) {
    const p = parseIp(inp);
    assert.is(p.family, 6, inp);
    assert.is(formatIp(p.bytes), out, inp);
  }
  for (const bad of ['', '10.0.0', '256.0.0.1', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', 'x', '10.0.0.1/24', ':::']) {
    assert.throws(() => parseIp(bad), new RegExp(`invalid IP address ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`), bad);
  }
  assert.equal(parseCidr('10.244.3.0/24').prefixLen, 24);
  assert.equal(parseCidr('fd00::1').prefixLen, 128);
  assert.is(formatMac(parseMac('C6:D2:32:6F:8F:44')), 'c6:d2:32:6f:8f:44');
  // Every byte value, and lengths other than 6 (an InfiniBand address, an empty one).
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 20 }), (b) => {
    assert.is(formatMac(b), Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':'));
  }), { numRuns: 2000 });
});

test('IPv4 text: the character scanner accepts exactly what the dotted-quad rule does (property, random and near-miss strings)', () => {
  const check = (s: string) => {
    const want = referenceV4(s);
    let got: number[] | undefined;
    try {
      const p = parseIp(s);
      got = p.family === 4 ? [...p.bytes] : undefined;
    } catch {
      got = undefined;
    }
    assert.equal(got, want, JSON.stringify(s));
  };
  const quadPart = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.stringMatching(/^[0-9]{0,4}$/));
  fc.assert(fc.property(fc.array(quadPart, { minLength: 1, maxLength: 6 }).map((a) => a.join('.')), (s) => check(s)), { numRuns: 20000 });
  fc.assert(fc.property(fc.stringMatching(/^[0-9.]{0,17}$/), (s) => check(s)), { numRuns: 20000 });
  for (const s of ['0.0.0.0', '255.255.255.255', '1.2.3.4', '00.1.2.3', '1.2.3.04', '1..2.3', '.1.2.3', '1.2.3.', '256.1.1.1', '1.2.3.4.', '1.2.3.4.5', '999.1.1.1', '1.2.3.-1']) check(s);
});

test('MAC text: the character scanner accepts exactly what the split rule does (property)', () => {
  const reference = (x: string): number[] | undefined => {
    const parts = x.split(/[:-]/);
    return parts.length === 6 && parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p)) ? parts.map((p) => parseInt(p, 16)) : undefined;
  };
  const check = (x: string) => {
    let got: number[] | undefined;
    try {
      got = [...parseMac(x)];
    } catch (e) {
      assert.match((e as Error).message, /^invalid MAC address /);
      got = undefined;
    }
    assert.equal(got, reference(x), JSON.stringify(x));
  };
  const part = fc.stringMatching(/^[0-9a-fA-Fg]{0,3}$/);
  fc.assert(fc.property(fc.array(part, { minLength: 1, maxLength: 8 }), fc.constantFrom(':', '-'), (ps, sep) => check(ps.join(sep))), { numRuns: 20000 });
  fc.assert(fc.property(fc.stringMatching(/^[0-9a-f:-]{0,18}$/), (x) => check(x)), { numRuns: 20000 });
  for (const x of ['c6:d2:32:6f:8f:44', 'C6-D2-32-6F-8F-44', '0:1:2:3:4:5', 'c6:d2:32:6f:8f:44:', 'c6:d2:32:6f:8f', 'c6:d2:32:6f:8f:444', 'c6::32:6f:8f:44']) check(x);
});

test('CIDR prefix lengths: the scanner accepts exactly what the old rule (1-3 digits, at most the family width) did (property)', () => {
  const reference = (len: string, max: number): number | undefined => (/^[0-9]{1,3}$/.test(len) && Number(len) <= max ? Number(len) : undefined);
  const check = (addr: string, len: string) => {
    let got: number | undefined;
    try {
      got = parseCidr(`${addr}/${len}`).prefixLen;
    } catch (e) {
      assert.match((e as Error).message, /^invalid prefix /);
      got = undefined;
    }
    assert.equal(got, reference(len, addr.includes(':') ? 128 : 32), `${addr}/${len}`);
  };
  fc.assert(fc.property(fc.constantFrom('10.244.3.0', 'fd00::'), fc.stringMatching(/^[0-9a/ -]{0,5}$/), (a, l) => check(a, l)), { numRuns: 20000 });
  for (const l of ['', '0', '00', '032', '32', '33', '128', '129', '0128', '1 ', '-1', '+8']) { check('10.244.3.0', l); check('fd00::', l); }
});

test('Prefix: last is the network address with every host bit set, for every length of both families (property)', () => {
  fc.assert(fc.property(fc.constantFrom<4 | 6>(4, 6), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.nat(128), (family, n, l) => {
    const bits = family === 4 ? 32 : 128;
    const len = l % (bits + 1);
    const host = (1n << BigInt(bits - len)) - 1n;
    const ip = (n & ((1n << BigInt(bits)) - 1n)) & ~host;
    const p = new Prefix(family, ip, len);
    assert.is(p.last, ip + p.size - 1n);
    assert.ok(p.contains(p.last) && !p.contains(p.last + 1n) && p.contains(ip) && !p.contains(ip - 1n));
  }), { numRuns: 5000 });
  assert.throws(() => new Prefix(4, 1n << 32n, 0), /invalid IPv4 address number/);
  assert.throws(() => new Prefix(4, 0x0af40301n, 24), /has host bits set/);
});

test('IPv4 parsing and net arithmetic', () => {
  assert.is(parseIP4('10.244.3.1'), 0x0af40301);
  assert.is(formatIP4(0xffffffff), '255.255.255.255');
  for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', ' 1.2.3.4', '1.2.3.4/8', '']) {
    assert.throws(() => parseIP4(bad), (e: Error) => e.message.includes(JSON.stringify(bad)));
  }
  const n = Prefix.parse('10.244.3.0/24');
  assert.is(n.toString(), '10.244.3.0/24');
  assert.is(n.address(0), '10.244.3.0');
  assert.is(n.address(1), '10.244.3.1');
  assert.is(n.size, 256n);
  assert.is(n.netmask, '255.255.255.0');
  assert.ok(n.contains('10.244.3.255') && !n.contains('10.244.4.0'));
  assert.ok(Prefix.parse('10.244.0.0/16').containsNet(n) && !n.containsNet(Prefix.parse('10.244.0.0/16')));
  assert.ok(n.overlaps(Prefix.parse('10.244.3.128/25')) && !n.overlaps(Prefix.parse('10.244.4.0/24')));
  assert.ok(n.equals(Prefix.parse('10.244.3.0/24')));
  assert.throws(() => Prefix.parse('10.244.3.5/24'), /"10\.244\.3\.5\/24" has host bits set/);
  assert.is(String(Prefix.parse('10.244.3.5/24', { mask: true })), '10.244.3.0/24');
  assert.throws(() => Prefix.parse('10.244.3.0/33'), /"10\.244\.3\.0\/33"/);
  assert.is(Prefix.parse('0.0.0.0/0').size, 2n ** 32n);
});

test('IPv6 nets', () => {
  const n = Prefix.parse('fd00:0:0:3::/64');
  assert.is(n.toString(), 'fd00:0:0:3::/64');
  assert.ok(n.contains('fd00:0:0:3::1') && !n.contains('fd00:0:0:4::'));
  assert.ok(Prefix.parse('fd00::/48').containsNet(n));
  assert.throws(() => Prefix.parse('fd00::1/64'), /host bits/);
  assert.throws(() => Prefix.parse('zz::/64'), /"zz::\/64"/);
});

test('one Prefix type for both families: family, equality and containment never cross families', () => {
  const v4 = Prefix.parse('10.244.3.0/24');
  const v6 = Prefix.parse('fd00:0:0:3::/64');
  assert.equal([v4.family, v4.bits, v6.family, v6.bits], [4, 32, 6, 128]);
  assert.is(v6.address(1), 'fd00:0:0:3::1');
  assert.is(v6.size, 2n ** 64n);
  assert.not.ok(v4.contains('fd00:0:0:3::1'));
  assert.not.ok(v6.contains('10.244.3.1'));
  assert.not.ok(v4.overlaps(Prefix.parse('::/0')));
  assert.not.ok(Prefix.parse('0.0.0.0/0').equals(Prefix.parse('::/0')));
  assert.is(String(Prefix.containing('10.244.3.77', 24)), '10.244.3.0/24');
  assert.is(String(Prefix.containing('fd00:0:0:3::77', 64)), 'fd00:0:0:3::/64');
  assert.throws(() => Prefix.parse('fd00::/64', { family: 4 }), /invalid IPv4 CIDR "fd00::\/64"/);
  assert.throws(() => Prefix.parse('10.0.0.0/8', { family: 6 }), /invalid IPv6 CIDR/);
  assert.throws(() => new Prefix(4, 1n, 24), /host bits/);
  assert.ok(isIp('192.0.2.1', 4) && isIp('fd00::1', 6) && !isIp('fd00::1', 4) && !isIp(7));
  assert.is(Prefix.parse('10.244.3.0/24').netmask, '255.255.255.0');
  assert.is(Prefix.parse('fd00::/48').netmask, 'ffff:ffff:ffff::');
  assert.is(JSON.stringify({ s: v6 }), '{"s":"fd00:0:0:3::/64"}');
});

test('networkOf(len): the network address of the shorter prefix that holds this one; a longer length is an error', () => {
  const p = Prefix.parse('10.244.3.0/24');
  assert.is(p.networkOf(16), ipNumber('10.244.0.0').n);
  assert.is(p.networkOf(23), ipNumber('10.244.2.0').n);
  assert.is(p.networkOf(24), p.ip);
  assert.is(p.networkOf(0), 0n);
  assert.is(Prefix.parse('fd00:1:2:3::/64').networkOf(48), ipNumber('fd00:1:2::').n);
  assert.throws(() => p.networkOf(25), /prefix length 25 is not within 0\.\.24 of 10\.244\.3\.0\/24/);
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 32 }), (ip, a, b) => {
    const [short, long] = a <= b ? [a, b] : [b, a];
    const q = Prefix.parse(`${formatIP4(ip)}/${long}`, { mask: true });
    return Prefix.parse(`${formatIP4(ip)}/${short}`, { mask: true }).ip === q.networkOf(short);
  }));
});

test.run();
