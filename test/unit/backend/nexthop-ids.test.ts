// NexthopIds: which nexthop objects a RouteReconciler owns and which id each
// (gateway, device, onlink) uses; the kernel's answers are plain objects here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NexthopIds, nexthopKey } from '../../../backend/nexthop-ids.js';
import type { Nexthop } from '../../../netlink/index.js';

const obj = (id: number, gateway: string, o: Partial<Nexthop> = {}): Nexthop => ({
  id, family: 4, gateway, index: 7, onlink: true, protocol: 87, scope: 253, flags: 4, group: false, blackhole: false, ...o,
});

test('ids live in the protocol\'s top byte and a slot of the Network; two Networks get different slots', () => {
  const a = new NexthopIds(87, 4, '10.244.0.0/16');
  const b = new NexthopIds(87, 4, '10.245.0.0/16');
  assert.is(a.base >>> 24, 87);
  assert.is.not(a.base, b.base);
  const id = a.allocate(nexthopKey('10.244.3.0', 7, true))!;
  assert.ok(a.inRange(id) && !b.inRange(id), `${id}`);
  assert.is(a.idOf(nexthopKey('10.244.3.0', 7, true)), id);
  assert.is(a.allocate(nexthopKey('10.244.4.0', 7, true)), id + 1);
});

test('load: ours are the protocol\'s objects of the family in the range, not used by a foreign route; the lower id wins a key', () => {
  const ids = new NexthopIds(87, 4, '10.244.0.0/16');
  const base = ids.base;
  const ours = ids.load([
    obj(base + 5, '10.244.3.0'),
    obj(base + 2, '10.244.3.0'), // the same key: the lower id is the one routes use
    obj(base + 3, '10.244.4.0', { protocol: 3 }), // another protocol: someone else's
    obj(base + 4, '10.244.5.0'), // used by a route outside the scope
    obj(base + 6, 'fd00::', { family: 6 }),
    obj(77, '10.244.6.0'), // outside the range
  ], 87, 4, new Set([base + 4]));
  assert.equal([...ours.keys()].sort(), [base + 2, base + 5]);
  assert.is(ids.idOf(nexthopKey('10.244.3.0', 7, true)), base + 2);
  assert.is(ids.idOf(nexthopKey('10.244.5.0', 7, true)), undefined);
  // New ids skip every id the kernel holds in the range, ours or not.
  const got = [1, 2, 3].map((i) => ids.allocate(`k${i}`)! - base);
  assert.equal(got, [1, 7, 8]);
});

test('an id the kernel refused is not taken again; the key gets another', () => {
  const ids = new NexthopIds(87, 4, 'n');
  const a = ids.allocate('a')!;
  ids.forget(a, true);
  assert.is(ids.idOf('a'), undefined);
  const b = ids.allocate('a')!;
  assert.is.not(b, a);
  assert.is(ids.keyOf(b), 'a');
  assert.is(ids.keyOf(a), undefined);
});

test('load keeps objects made after its dump began (beginLoad): an apply while the listing ran', () => {
  const ids = new NexthopIds(87, 4, 'n');
  ids.beginLoad();
  const made = ids.allocate(nexthopKey('10.244.9.0', 7, true))!;
  ids.load([], 87, 4, new Set());
  assert.is(ids.idOf(nexthopKey('10.244.9.0', 7, true)), made);
  // Without beginLoad, a listing that lacks an object forgets it.
  ids.load([], 87, 4, new Set());
  assert.is(ids.idOf(nexthopKey('10.244.9.0', 7, true)), undefined);
});

test.run();
