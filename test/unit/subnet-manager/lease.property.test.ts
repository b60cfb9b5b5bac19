// Property tests of the lease parsers (flannel's key and JSON, read from an etcd anyone can
// write to): for any input they return a lease or throw LeaseError, never anything else;
// what they accept round-trips; and the watcher's LeaseTable never holds two overlapping
// leases, whatever sequence of puts, deletes and re-lists arrives.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { fc, onlyThrows, property } from '../property.js';
import { Prefix } from '../../../lib/ip.js';
import { nullLogger } from '../../../lib/log.js';
import { decodeLeaseAttrs, encodeLeaseAttrs, leaseKeySuffix, parseLeaseKeySuffix, LeaseError, type LeaseAttrs } from '../../../subnet-manager/index.js';
import { LeaseTable, leaseFromKV, type RawKV } from '../../../subnet-manager/lease-table.js';

const P = '/coreos.com/network/subnets/';
const space = {
  network: Prefix.parse('10.244.0.0/16'), subnetLen: 24, subnetMin: Prefix.parse('10.244.1.0/24'), subnetMax: Prefix.parse('10.244.255.0/24'),
};

const octet = fc.integer({ min: 0, max: 255 });
const ip4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const ip6 = fc.ipV6();
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':'));
/** A valid lease value as flannel (or weft) writes it. */
const attrs: fc.Arbitrary<LeaseAttrs> = fc.record({
  publicIP: ip4,
  publicIPv6: fc.option(ip6, { nil: null }),
  backendType: fc.constantFrom('vxlan', 'udp', 'host-gw', 'wireguard', 'other'),
  backendData: fc.oneof(fc.constant(null), fc.record({ VNI: fc.integer({ min: 0, max: 0xffffff }), VtepMAC: mac }), fc.jsonValue()),
});
/** Strings near the grammar: valid values with random edits, truncations and splices. */
function mutated(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 4 }), fc.string({ maxLength: 4 })), { maxLength: 4 })).map(([s, edits]) => {
    let out = s;
    for (const [at, del, ins] of edits) { const i = at % (out.length + 1); out = out.slice(0, i) + ins + out.slice(i + del); }
    return out;
  });
}
const leaseJson = attrs.map(encodeLeaseAttrs);
/** JSON objects with flannel's field names holding any JSON value. */
const looseObject = fc.record({ PublicIP: fc.jsonValue(), PublicIPv6: fc.jsonValue(), BackendType: fc.jsonValue(), BackendData: fc.jsonValue() }, { requiredKeys: [] }).map((o) => JSON.stringify(o));
const anyValue = fc.oneof(fc.string(), fc.json(), leaseJson, mutated(leaseJson), looseObject, fc.string({ unit: 'binary', maxLength: 40 }));

const subnet = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })).map(([n, len]) => Prefix.containing(
  [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.'), len));
const subnet6 = fc.tuple(ip6, fc.integer({ min: 0, max: 128 })).map(([a, len]) => Prefix.containing(a, len));
const keySuffix = fc.tuple(subnet, fc.option(subnet6, { nil: undefined })).map(([s, s6]) => leaseKeySuffix(s, s6));
const anyKey = fc.oneof(fc.string(), keySuffix, mutated(keySuffix), fc.constantFrom('10.244.3.0-24&', '&fd00::-64', '10.244.3.0-24&fd00::-64&x', '1.2.3.4-33', '01.2.3.4-24', '1.2.3.4-024'));

property('decodeLeaseAttrs: any string gives a lease or a LeaseError', fc.property(anyValue, (s) => {
  const err = onlyThrows([LeaseError], () => decodeLeaseAttrs(s));
  if (err) assert.ok(err.message.length > 0);
}));

property('decodeLeaseAttrs accepts what encodeLeaseAttrs writes, and gives it back', fc.property(attrs, (a) => {
  const back = decodeLeaseAttrs(encodeLeaseAttrs(a));
  assert.equal(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify({ ...a, backendData: a.backendData ?? null })));
  assert.is(encodeLeaseAttrs(back), encodeLeaseAttrs(a));
}));

property('parseLeaseKeySuffix: any string gives a subnet or a LeaseError', fc.property(anyKey, fc.boolean(), (s, mask) => {
  onlyThrows([LeaseError], () => parseLeaseKeySuffix(s, { mask }));
}));

property('parseLeaseKeySuffix reads back what leaseKeySuffix writes', fc.property(subnet, fc.option(subnet6, { nil: undefined }), (s, s6) => {
  const k = leaseKeySuffix(s, s6);
  const back = parseLeaseKeySuffix(k);
  assert.ok(back.subnet.equals(s), k);
  assert.is(back.ipv6Subnet?.toString(), s6?.toString());
  assert.is(leaseKeySuffix(back.subnet, back.ipv6Subnet), k);
}));

property('parseLeaseKeySuffix: the plain IPv4 key scanner agrees with the general grammar (the old regular expression and Prefix.parse) on every IPv4-only key', fc.property(
  fc.oneof(keySuffix, mutated(keySuffix), fc.tuple(ip4, fc.stringMatching(/^[0-9]{0,3}$/)).map(([a, l]) => `${a}-${l}`),
    fc.tuple(subnet, fc.stringMatching(/^0?[0-9]{1,2}$/)).map(([n, l]) => `${n.networkAddress}-${l}`),
    fc.constantFrom('10.0.0.0-08', '0.0.0.0-0', '0.0.0.0-00', '10.244.3.0-24', '10.244.3.1-32', '10.244.3.1-31', '255.255.255.255-32')), fc.boolean(), (s, mask) => {
    fc.pre(!s.includes('&'));
    const m = /^([0-9.]+)-(\d{1,2})$/.exec(s);
    let want: string | undefined;
    try { want = m ? Prefix.parse(`${m[1]}/${m[2]}`, { family: 4, mask }).toString() : undefined; } catch { want = undefined; }
    let got: string | undefined;
    try { got = parseLeaseKeySuffix(s, { mask }).subnet.toString(); } catch (e) { assert.instance(e, LeaseError); got = undefined; }
    assert.is(got, want, s);
  }));

const kv: fc.Arbitrary<RawKV> = fc.record({
  key: fc.oneof(anyKey.map((k) => P + k), fc.string(), fc.integer({ min: 0, max: 300 }).map((i) => `${P}10.244.${i}.0-24`), fc.constantFrom(`${P}10.244.0.0-16`, `${P}10.244.2.0-23`, `${P}10.244.2.128-25`)),
  value: anyValue,
  modRevision: fc.nat(),
  leaseId: fc.constantFrom('0', '', '7587868425837395715'),
});

property('leaseFromKV never throws: a lease inside the network, or the reason it is none', fc.property(kv, (x) => {
  const l = leaseFromKV(space, P, x);
  if (typeof l === 'string') return;
  assert.ok(space.network.containsNet(l.subnet), `${l.subnet} outside ${space.network}`);
  assert.is(l.key, x.key);
  assert.is(l.leaseId === undefined, x.leaseId === '0' || x.leaseId === '');
}));

/** Valid-looking leases in a small corner of the network, so that they collide often. */
const denseKv: fc.Arbitrary<RawKV> = fc.record({
  key: fc.oneof(
    fc.integer({ min: 1, max: 6 }).map((i) => `${P}10.244.${i}.0-24`),
    fc.constantFrom(`${P}10.244.2.0-23`, `${P}10.244.4.128-25`, `${P}10.244.0.0-16`, `${P}10.244.0.0-20`, `${P}10.244.9.0-24`),
  ),
  value: fc.oneof(leaseJson, anyValue),
  modRevision: fc.nat({ max: 50 }),
  leaseId: fc.constantFrom('0', '12'),
});
const op = fc.oneof(
  fc.record({ t: fc.constant('put' as const), kv: denseKv }),
  fc.record({ t: fc.constant('delete' as const), key: denseKv.map((x) => x.key) }),
  fc.record({ t: fc.constant('resync' as const), kvs: fc.array(denseKv, { maxLength: 8 }) }),
);

property('LeaseTable: no sequence of puts, deletes and re-lists leaves two overlapping leases, its own, or a throw', fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
  const own = Prefix.parse('10.244.9.0/24');
  const t = new LeaseTable(space, P, nullLogger, { own: { key: `${P}10.244.9.0-24`, subnet: own, attrs: { publicIP: '192.0.2.9', publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:09' } } } });
  for (const o of ops) {
    if (o.t === 'put') t.put(o.kv);
    else if (o.t === 'delete') t.delete(o.key);
    else t.resync(o.kvs);
    const ls = t.leases();
    for (let i = 0; i < ls.length; i++) {
      assert.not.ok(ls[i]!.subnet.equals(own), 'its own lease');
      for (let j = i + 1; j < ls.length; j++) assert.not.ok(ls[i]!.subnet.overlaps(ls[j]!.subnet), `${ls[i]!.key} overlaps ${ls[j]!.key}`);
    }
  }
}), 0.5);

test.run();
