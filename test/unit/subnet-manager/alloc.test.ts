import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  LeaseTable, chooseFreeSubnet, diffLeaseMaps, freeSubnetIndexes, isAllocatable, isFree, parseNetworkConfig, subnetAt, subnetCount,
  type Lease, type RawKV,
} from '../../../subnet-manager/index.js';
import { Prefix } from '../../../lib/ip.js';
import { createLogger } from '../../../daemon/logger.js';

const cfg = parseNetworkConfig('{"Network":"10.10.0.0/24","SubnetLen":28}');
const net = (s: string) => Prefix.parse(s);

test('enumerates SubnetMin..SubnetMax inclusive', () => {
  assert.is(subnetCount(cfg), 15);
  assert.is(String(subnetAt(cfg, 0)), '10.10.0.16/28');
  assert.is(String(subnetAt(cfg, 14)), '10.10.0.240/28');
  assert.throws(() => subnetAt(cfg, 15));
  const big = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  assert.is(subnetCount(big), 255);
  const bounded = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.10.0","SubnetMax":"10.244.12.0"}');
  assert.equal(freeSubnetIndexes(bounded, []).map((i) => String(subnetAt(bounded, i))), ['10.244.10.0/24', '10.244.11.0/24', '10.244.12.0/24']);
});

test('taken subnets of any size or alignment block what they overlap; none free -> null', () => {
  const taken = [net('10.10.0.16/28'), net('10.10.0.64/26'), net('10.10.0.0/28'), net('192.168.0.0/16')];
  const free = freeSubnetIndexes(cfg, taken).map((i) => String(subnetAt(cfg, i)));
  assert.is(free.length, 15 - 1 - 4);
  assert.not.ok(free.includes('10.10.0.16/28'));
  assert.not.ok(free.includes('10.10.0.112/28'));
  assert.ok(free.includes('10.10.0.128/28'));
  const all = Array.from({ length: 15 }, (_, i) => subnetAt(cfg, i));
  assert.is(chooseFreeSubnet(cfg, all), null);
  assert.is(String(chooseFreeSubnet(cfg, all.slice(1))), '10.10.0.16/28');
});

test('random choice covers the whole free range', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 15; i++) seen.add(String(chooseFreeSubnet(cfg, [], () => i / 15)));
  assert.is(seen.size, 15);
});

test('isAllocatable/isFree respect size, alignment and bounds', () => {
  assert.ok(isAllocatable(cfg, net('10.10.0.32/28')));
  assert.not.ok(isAllocatable(cfg, net('10.10.0.0/28')), 'first subnet is below SubnetMin');
  assert.not.ok(isAllocatable(cfg, net('10.10.0.32/27')));
  assert.not.ok(isFree(cfg, net('10.10.0.32/28'), [net('10.10.0.0/26')]));
});

const P = '/coreos.com/network/subnets/';
const kv = (sfx: string, ip: string, rev: number, extra = ''): RawKV => ({
  key: P + sfx, value: `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1${extra}}}`, modRevision: rev, leaseId: '7',
});

test('lease table: invalid keys/values skipped and counted, last good value kept, own subnet filtered', () => {
  const warns: string[] = [];
  const log = createLogger('warn', {}, (l) => warns.push(l));
  let invalid = 0;
  const big = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  let conflicts = 0;
  const own = { key: P + '10.244.9.0-24', subnet: net('10.244.9.0/24'), attrs: { publicIP: '192.0.2.9', publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:09' } } };
  const t = new LeaseTable(big, P, log, { own, onInvalid: () => { invalid++; }, onConflict: () => { conflicts++; } });
  assert.is(t.put(kv('10.244.1.0-24', '192.0.2.1', 1))?.type, 'added');
  assert.is(t.put(kv('10.244.9.0-24', '192.0.2.9', 2)), null, 'own lease filtered');
  assert.is(t.put({ ...kv('10.244.1.0-24', '192.0.2.1', 3), value: '{garbage' }), null);
  assert.is(t.leases()[0]!.attrs.publicIP, '192.0.2.1', 'last good value kept');
  assert.is(t.put(kv('10.245.0.0-24', '192.0.2.2', 4)), null, 'outside Network');
  assert.is(t.put(kv('10.244.1.128-25', '192.0.2.3', 5)), null, 'overlaps a known lease');
  assert.is(t.put(kv('10.244.1.5-24', '192.0.2.3', 6)), null, 'misaligned key');
  assert.is(invalid, 3);
  assert.is(conflicts, 1, 'an overlap is a conflict');
  assert.is(warns.length, 4);
  assert.ok(warns.some((w) => w.includes('10.245.0.0-24') && w.includes('outside Network')));
  assert.is(t.put(kv('10.244.1.0-24', '192.0.2.1', 7)), null, 'same value again is not an event');
  assert.is(t.delete(P + '10.244.1.0-24')?.type, 'removed');
  assert.is(t.delete(P + '10.244.1.0-24'), null);
});

test('resync diffs a re-listed snapshot against the known set', () => {
  const big = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  const t = new LeaseTable(big, P, createLogger('silent'));
  t.resync([kv('10.244.1.0-24', '192.0.2.1', 1), kv('10.244.2.0-24', '192.0.2.2', 2), kv('10.244.3.0-24', '192.0.2.3', 3)]);
  const ev = t.resync([
    kv('10.244.1.0-24', '192.0.2.1', 1), // unchanged
    kv('10.244.2.0-24', '192.0.2.2', 9, ',"VtepMAC":"aa:bb:cc:dd:ee:ff"'), // changed
    kv('10.244.4.0-24', '192.0.2.4', 10), // new
    // 10.244.3.0 removed
  ]);
  assert.equal(ev.map((e) => `${e.type} ${e.lease.subnet}`).sort(), ['added 10.244.2.0/24', 'added 10.244.4.0/24', 'removed 10.244.3.0/24']);
  assert.is(t.size, 3);
  const l = (s: string): Lease => ({ subnet: net(s), attrs: { publicIP: '1.1.1.1', publicIPv6: null, backendType: 'vxlan', backendData: null }, key: s });
  assert.equal(diffLeaseMaps(new Map([['a', l('10.0.0.0/24')]]), new Map()), [{ type: 'removed', lease: l('10.0.0.0/24') }]);
  assert.equal(diffLeaseMaps(new Map(), new Map()), []);
});

test.run();
