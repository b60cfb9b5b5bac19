// Conflicting leases in the watcher's table: a lease claiming the VtepMAC, the
// PublicIP (same backend) or an overlapping subnet of a live lease, or what
// this host's own lease holds, is skipped with a warning naming both keys;
// the established lease keeps its claims (accepted first, carried by the data
// plane, older key), also for a moment after it vanished.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../../daemon/logger.js';
import { Prefix } from '../../../lib/ip.js';
import { LeaseTable, parseNetworkConfig, type RawKV } from '../../../subnet-manager/index.js';
import { leaseClaims, SubnetIndex, SubnetReservations } from '../../../subnet-manager/lease-claims.js';

const P = '/coreos.com/network/subnets/';
const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
let rev = 100;
const kv = (subnet: string, ip: string, mac: string, o: { backend?: string; createRevision?: number } = {}): RawKV => {
  const r = ++rev;
  return {
    key: P + subnet.replace('/', '-'),
    value: JSON.stringify({ PublicIP: ip, PublicIPv6: null, BackendType: o.backend ?? 'vxlan', BackendData: { VNI: 1, VtepMAC: mac } }),
    modRevision: r, createRevision: o.createRevision ?? r, leaseId: '9',
  };
};
const OWN = { key: `${P}10.244.9.0-24`, subnet: Prefix.parse('10.244.9.0/24'), attrs: { publicIP: '192.0.2.9', publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:09' } } };

function table(o: { prefer?: (key: string) => boolean; now?: () => number } = {}) {
  const lines: Array<Record<string, unknown>> = [];
  let conflicts = 0;
  const t = new LeaseTable(cfg, P, createLogger('info', {}, (l) => lines.push(JSON.parse(l))), {
    own: OWN, onConflict: () => { conflicts++; },
    ...(o.prefer ? { prefer: (l) => o.prefer!(l.key) } : {}),
    ...(o.now ? { now: o.now } : {}),
  });
  return { t, lines, count: () => conflicts };
}

const keys = (t: LeaseTable) => t.leases().map((l) => l.key.slice(P.length)).sort();

test('dual stack: a lease whose IPv6 subnet overlaps a live lease\'s, or this host\'s own, is skipped naming both; accepted once the other left and its grace ran out', () => {
  const dual = parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/48"}');
  const lines: Array<Record<string, unknown>> = [];
  const own = { ...OWN, key: `${P}10.244.9.0-24&fd00:10:244:9::-64`, ipv6Subnet: Prefix.parse('fd00:10:244:9::/64') };
  let now = 1_000_000;
  const t = new LeaseTable(dual, P, createLogger('info', {}, (l) => lines.push(JSON.parse(l))), { own, now: () => now });
  const kv6 = (v4: string, v6: string, ip: string, mac: string): RawKV => ({ ...kv(v4, ip, mac), key: `${P}${v4.replace('/', '-')}&${v6.replace('/', '-')}` });
  const a = kv6('10.244.1.0/24', 'fd00:10:244:1::/64', '192.0.2.1', '02:00:00:00:00:01');
  const b = kv6('10.244.2.0/24', 'fd00:10:244:1::/64', '192.0.2.2', '02:00:00:00:00:02');
  const c = kv6('10.244.3.0/24', 'fd00:10:244:9::/64', '192.0.2.3', '02:00:00:00:00:03');
  assert.ok(t.put(a));
  assert.is(t.put(b), null);
  assert.is(t.put(c), null);
  assert.equal(t.conflicts().map((x) => [x.key, x.other]), [[b.key, a.key], [c.key, own.key]]);
  assert.match(t.conflicts()[0]!.reason, /IPv6 subnet fd00:10:244:1::\/64 overlaps the lease/);
  assert.match(t.conflicts()[1]!.reason, /this host's own IPv6 subnet fd00:10:244:9::\/64/);
  assert.ok(t.delete(a.key));
  // a's IPv6 subnet is held for it, as its IPv4 one: a new key over it waits out the grace too.
  assert.equal(t.reconsider(), [], 'a vanished a moment ago');
  const d = kv6('10.244.4.0/24', 'fd00:10:244::/62', '192.0.2.4', '02:00:00:00:00:04');
  assert.is(t.put(d), null);
  assert.match(t.conflicts().find((x) => x.key === d.key)!.reason, /^IPv6 subnet fd00:10:244::\/62 overlaps the lease .*10\.244\.1\.0-24&fd00:10:244:1::-64, which vanished moments ago \(held for it 10 s\)$/);
  now += 5000;
  assert.ok(t.put({ ...a, modRevision: ++rev }), 'a is back within the grace');
  assert.equal(t.reconsider(), []);
  assert.ok(t.delete(a.key));
  now += 10_000;
  assert.equal(t.reconsider().map((e) => e.lease.key), [b.key], 'b, the older key, once a\'s grace ran out; d still overlaps b');
  assert.equal(t.conflicts().map((x) => [x.key, x.other]), [[c.key, own.key], [d.key, b.key]]);
});

test('claims: PublicIP with its backend, and the VtepMAC in lower case', () => {
  assert.equal(leaseClaims({ publicIP: '192.0.2.1', publicIPv6: null, backendType: 'vxlan', backendData: { VtepMAC: '02:AA:00:00:00:01' } }), ['PublicIP 192.0.2.1 (vxlan)', 'VtepMAC 02:aa:00:00:00:01']);
  assert.equal(leaseClaims({ publicIP: '192.0.2.1', publicIPv6: null, backendType: 'udp', backendData: null }), ['PublicIP 192.0.2.1 (udp)']);
});

test('a lease reusing a live peer\'s VtepMAC is skipped, with one warning naming both keys, and counted', () => {
  const { t, lines, count } = table();
  assert.is(t.put(kv('10.244.2.0/24', '192.0.2.12', '02:00:00:00:00:02'))?.type, 'added');
  assert.is(t.put(kv('10.244.50.0/24', '192.0.2.99', '02:00:00:00:00:02')), null);
  assert.is(t.put(kv('10.244.50.0/24', '192.0.2.99', '02:00:00:00:00:02')), null, 'the same conflict again');
  assert.equal(keys(t), ['10.244.2.0-24']);
  assert.is(count(), 1);
  const warn = lines.filter((l) => l.level === 'warn');
  assert.is(warn.length, 1);
  assert.equal([warn[0]!.msg, warn[0]!.key, warn[0]!.other], ['conflicting lease skipped', `${P}10.244.50.0-24`, `${P}10.244.2.0-24`]);
  assert.match(String(warn[0]!.reason), /its VtepMAC 02:00:00:00:00:02 is held by the lease/);
  assert.equal(t.conflicts().map((c) => [c.key, c.other]), [[`${P}10.244.50.0-24`, `${P}10.244.2.0-24`]]);
});

test('the same PublicIP is a conflict within a backend, not across backends', () => {
  const { t } = table();
  t.put(kv('10.244.2.0/24', '192.0.2.12', '02:00:00:00:00:02'));
  assert.is(t.put(kv('10.244.3.0/24', '192.0.2.12', '02:00:00:00:00:03')), null);
  assert.is(t.put(kv('10.244.4.0/24', '192.0.2.12', '02:00:00:00:00:04', { backend: 'udp' }))?.type, 'added');
});

test('what this host\'s own lease holds is never another lease\'s: its VtepMAC, its PublicIP, its subnet', () => {
  const { t } = table();
  assert.is(t.put(kv('10.244.20.0/24', '192.0.2.20', '02:00:00:00:00:09')), null, 'own MAC');
  assert.is(t.put(kv('10.244.21.0/24', '192.0.2.9', '02:00:00:00:00:21')), null, 'own PublicIP');
  assert.is(t.put(kv('10.244.8.0/23', '192.0.2.22', '02:00:00:00:00:22')), null, 'contains own subnet');
  assert.is(t.put(kv('10.244.9.0/24', '192.0.2.23', '02:00:00:00:00:23')), null, 'own key: filtered, not a conflict');
  assert.equal(t.conflicts().map((c) => c.other), [OWN.key, OWN.key, OWN.key]);
  assert.is(t.size, 0);
});

test('this host\'s own key is filtered before its value is read: an invalid own value is neither warned nor counted', () => {
  let invalid = 0;
  const lines: Array<Record<string, unknown>> = [];
  const t = new LeaseTable(cfg, P, createLogger('info', {}, (l) => lines.push(JSON.parse(l))), { own: OWN, onInvalid: () => { invalid++; } });
  assert.is(t.put({ key: OWN.key, value: 'not json', modRevision: ++rev, leaseId: '9' }), null, 'own key, bad value');
  assert.equal(t.resync([{ key: OWN.key, value: '{}', modRevision: ++rev, leaseId: '9' }]), [], 'own key in a listing');
  assert.is(invalid, 0);
  assert.equal(lines, []);
  // Another key is still parsed and judged: a bad value is counted and warned.
  assert.is(t.put({ key: `${P}10.244.30.0-24`, value: 'not json', modRevision: ++rev, leaseId: '9' }), null);
  assert.is(invalid, 1);
  assert.is(lines.length, 1);
});

test('overlaps, found without a scan over all leases: inside, around, and a lease for the whole network', () => {
  const { t } = table();
  for (let i = 100; i < 200; i++) t.put(kv(`10.244.${i}.0/24`, `192.0.3.${i}`, `02:00:00:00:01:${i.toString(16)}`));
  assert.is(t.size, 100);
  assert.is(t.put(kv('10.244.150.128/25', '198.51.100.1', '02:00:00:00:02:01')), null);
  assert.is(t.put(kv('10.244.0.0/16', '198.51.100.2', '02:00:00:00:02:02')), null);
  assert.is(t.put(kv('10.244.200.0/22', '198.51.100.3', '02:00:00:00:02:03'))?.type, 'added', 'no overlap');
  const idx = new SubnetIndex();
  idx.add(Prefix.parse('10.0.0.0/8'), 'big');
  assert.is(idx.overlapping(Prefix.parse('10.1.2.0/24')), 'big');
  assert.is(idx.overlapping(Prefix.parse('10.1.2.0/24'), 'big'), undefined);
  idx.add(Prefix.parse('11.0.0.128/25'), 'small');
  assert.is(idx.overlapping(Prefix.parse('11.0.0.0/16')), 'small');
  assert.is(idx.overlapping(Prefix.parse('11.0.1.0/24')), undefined);
});

test('a vanished lease keeps its claims for a grace period: its host puts it back, the skipped copy is not promoted', () => {
  let now = 1_000_000;
  const { t } = table({ now: () => now });
  const real = kv('10.244.2.0/24', '192.0.2.12', '02:00:00:00:00:02');
  t.put(real);
  t.put(kv('10.244.50.0/24', '192.0.2.99', '02:00:00:00:00:02'));
  assert.is(t.delete(real.key)?.type, 'removed');
  assert.equal(t.reconsider(), [], 'not while the claim is reserved');
  now += 2000;
  assert.is(t.put({ ...real, createRevision: ++rev, modRevision: rev })?.type, 'added', 'the owner is back (a newer key now)');
  now += 60_000;
  assert.equal(t.reconsider(), [], 'the copy still conflicts with the owner');
  assert.equal(keys(t), ['10.244.2.0-24']);
  // The owner leaves for good: after the grace the copy is accepted.
  t.delete(real.key);
  assert.equal(t.reconsider(), []);
  now += 10_001;
  assert.equal(t.reconsider().map((e) => e.lease.key.slice(P.length)), ['10.244.50.0-24']);
});

test('a snapshot gives conflicts to what the data plane carries, then to the older key, whatever the listing order', () => {
  const copy = kv('10.244.50.0/24', '192.0.2.99', '02:00:00:00:00:02', { createRevision: 10 });
  const real = kv('10.244.2.0/24', '192.0.2.12', '02:00:00:00:00:02', { createRevision: 20 });
  let { t } = table();
  t.resync([real, copy]);
  assert.equal(keys(t), ['10.244.50.0-24'], 'older key wins');
  ({ t } = table({ prefer: (k) => k === real.key }));
  t.resync([copy, real]);
  assert.equal(keys(t), ['10.244.2.0-24'], 'the lease the kernel already carries wins');
  // A re-list keeps what was accepted before.
  const events = t.resync([copy, real]);
  assert.equal(events, []);
  assert.equal(keys(t), ['10.244.2.0-24']);
});

test('an accepted lease whose update conflicts keeps its last good value', () => {
  const { t, lines } = table();
  t.put(kv('10.244.2.0/24', '192.0.2.12', '02:00:00:00:00:02'));
  t.put(kv('10.244.3.0/24', '192.0.2.13', '02:00:00:00:00:03'));
  assert.is(t.put(kv('10.244.3.0/24', '192.0.2.13', '02:00:00:00:00:02')), null);
  const kept = t.leases().find((l) => l.key.endsWith('10.244.3.0-24'))!;
  assert.is((kept.attrs.backendData as { VtepMAC: string }).VtepMAC, '02:00:00:00:00:03');
  assert.ok(lines.some((l) => l.msg === 'conflicting lease update skipped, keeping its last good value'));
});


test('a live lease that moves to another PublicIP frees its old one: the lease skipped for it is accepted at the next look', () => {
  const { t } = table();
  t.put(kv('10.244.2.0/24', '192.0.2.12', '02:00:00:00:00:02'));
  assert.is(t.put(kv('10.244.3.0/24', '192.0.2.12', '02:00:00:00:00:03')), null, 'same PublicIP: skipped');
  assert.equal(t.reconsider(), [], 'nothing changed yet');
  assert.is(t.put(kv('10.244.2.0/24', '192.0.2.13', '02:00:00:00:00:02'))?.type, 'added', 'the owner moved');
  assert.equal(t.reconsider().map((e) => e.lease.key.slice(P.length)), ['10.244.3.0-24']);
  assert.equal(keys(t), ['10.244.2.0-24', '10.244.3.0-24']);
});

test('thousands of leases vanish at once and their hosts put them back within the grace: each accepted, while a new key over a subnet still held is skipped', () => {
  let now = 5_000_000;
  const lines: Array<Record<string, unknown>> = [];
  const t = new LeaseTable(parseNetworkConfig('{"Network":"10.0.0.0/8"}'), P, createLogger('info', {}, (l) => lines.push(JSON.parse(l))), { now: () => now });
  const at = (i: number) => kv(`10.${i >> 8}.${i & 255}.0/24`, `198.18.${i >> 8}.${i & 255}`, `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
  const all = Array.from({ length: 2000 }, (_, i) => at(i));
  for (const x of all) assert.is(t.put(x)?.type, 'added');
  for (const x of all) assert.is(t.delete(x.key)?.type, 'removed');
  now += 1000;
  // Back: the first 1000 (10.0.0.0/24 .. 10.3.231.0/24); the rest stay held for their keys.
  assert.equal(all.slice(0, 1000).map((x) => t.put({ ...x, modRevision: ++rev })?.type), Array(1000).fill('added'));
  assert.is(t.put(kv('10.6.0.0/16', '192.0.2.200', '02:00:00:00:aa:01')), null, 'a shorter prefix over held /24s');
  assert.is(t.put(kv('10.7.1.0/25', '192.0.2.201', '02:00:00:00:aa:02')), null, 'a longer prefix inside a held /24');
  const skipped = lines.filter((l) => l.msg === 'conflicting lease skipped').map((l) => String(l.reason));
  assert.is(skipped.length, 2);
  assert.match(skipped[0]!, /^subnet 10\.6\.0\.0\/16 overlaps the lease \/coreos\.com\/network\/subnets\/10\.6\.\d+\.0-24, which vanished moments ago \(held for it 10 s\)$/);
  assert.match(skipped[1]!, /overlaps the lease \/coreos\.com\/network\/subnets\/10\.7\.1\.0-24, which vanished/);
  assert.is(t.put(kv('10.9.0.0/16', '192.0.2.202', '02:00:00:00:aa:03'))?.type, 'added', 'nothing held there');
  now += 9001;
  assert.equal(t.reconsider().map((e) => e.lease.subnet.toString()).sort(), ['10.6.0.0/16', '10.7.1.0/25'], 'accepted once the grace ran out');
  assert.is(t.size, 1003);
});

test('the subnet index: two keys on one subnet (reservations may share one), each found until it is removed', () => {
  const idx = new SubnetIndex();
  const p = Prefix.parse('10.1.2.0/24');
  idx.add(p, 'a');
  idx.add(p, 'b');
  idx.add(p, 'b');
  assert.is(idx.overlapping(Prefix.parse('10.1.0.0/16'), 'a'), 'b');
  assert.is(idx.overlapping(Prefix.parse('10.1.2.128/25'), 'b'), 'a');
  idx.remove(p, 'a');
  assert.is(idx.overlapping(p), 'b');
  assert.is(idx.overlapping(p, 'b'), undefined);
  idx.remove(p, 'b');
  assert.is(idx.overlapping(p), undefined);
});

test('held subnets: found while held, let go when their time is up (also when the clock went back), earliest next expiry reported', () => {
  const r = new SubnetReservations();
  r.hold('a', Prefix.parse('10.1.0.0/24'), 100);
  r.hold('b', Prefix.parse('10.2.0.0/24'), 200);
  r.hold('c', Prefix.parse('10.3.0.0/24'), 150); // the clock went back
  assert.is(r.overlapping(Prefix.parse('10.0.0.0/8'), 'x', 50) !== undefined, true);
  assert.is(r.overlapping(Prefix.parse('10.1.0.0/24'), 'a', 50), undefined, 'not against its own key');
  assert.is(r.overlapping(Prefix.parse('10.1.0.0/24'), 'x', 100), undefined, 'a: its time is up');
  assert.is(r.size, 2);
  assert.is(r.overlapping(Prefix.parse('10.3.0.0/24'), 'x', 160), undefined, 'c, behind b in order, is let go when found');
  assert.is(r.overlapping(Prefix.parse('10.2.0.0/24'), 'x', 160), 'b');
  r.hold('b', Prefix.parse('10.2.0.0/24'), 300);
  assert.is(r.expire(250), 300);
  assert.is(r.expire(300), Infinity);
  assert.is(r.size, 0);
});

test.run();
