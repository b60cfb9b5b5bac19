// The underlay: which interface and addresses carry the overlay, from a fake kernel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findUnderlay, requireV4, requireV6, UnderlayError, UnderlayWaitError, type UnderlayNetlink } from '../../../host/underlay.js';
import type { Addr, Link, Route } from '../../../netlink/index.js';

function kernel(o: { addrs?: Array<Partial<Addr> & { index: number; address: string; family: 4 | 6 }>; up?: boolean; defaultVia?: number } = {}): UnderlayNetlink {
  const links: Link[] = [
    { index: 1, name: 'lo', mtu: 65536, flags: 0, up: true },
    { index: 2, name: 'eth0', mtu: 1500, flags: 0, up: o.up ?? true },
  ];
  const addrs: Addr[] = (o.addrs ?? [{ index: 2, address: '192.0.2.11', family: 4 }]).map((a) => ({ prefixLen: 24, scope: 0, flags: 0, ...a }));
  const routes: Route[] = o.defaultVia === undefined ? [] : [{ family: 4, dst: 'default', gateway: '192.0.2.1', index: o.defaultVia, onlink: false, table: 254, protocol: 3, scope: 0, type: 1, flags: 0 }];
  return {
    linkByName: (n) => links.find((l) => l.name === n),
    linkByIndex: (i) => links.find((l) => l.index === i),
    addrList: (f = {}) => addrs.filter((a) => (f.index === undefined || a.index === f.index) && (f.family === undefined || a.family === f.family)),
    routeList: () => routes,
  };
}

test('the default route\'s interface, its first IPv4 address, and its first global IPv6 address when it has one', () => {
  assert.equal(findUnderlay(kernel({ defaultVia: 2 })), { index: 2, name: 'eth0', mtu: 1500, v4: '192.0.2.11' });
  const dual = kernel({
    defaultVia: 2,
    addrs: [{ index: 2, address: '192.0.2.11', family: 4 }, { index: 2, address: 'fe80::1', family: 6, scope: 253 }, { index: 2, address: '2001:db8::11', family: 6 }],
  });
  assert.equal(findUnderlay(dual), { index: 2, name: 'eth0', mtu: 1500, v4: '192.0.2.11', v6: '2001:db8::11' });
  assert.is(findUnderlay(kernel(), 'eth0', '192.0.2.99').v4, '192.0.2.99', '--public-ip wins');
  assert.is(findUnderlay(dual, undefined, undefined, undefined, '2001:db8::99').v6, '2001:db8::99', '--public-ipv6 wins');
  const deprecated = kernel({
    defaultVia: 2,
    addrs: [{ index: 2, address: '192.0.2.11', family: 4 }, { index: 2, address: '2001:db8::1', family: 6, flags: 0x20 }, { index: 2, address: '2001:db8::12', family: 6 }],
  });
  assert.is(findUnderlay(deprecated).v6, '2001:db8::12', 'a deprecated address is not chosen');
  assert.is(requireV6(findUnderlay(dual), 'x'), '2001:db8::11');
});

test('what cannot be an underlay is named', () => {
  const fails: Array<[() => unknown, RegExp]> = [
    [() => findUnderlay(kernel(), 'eth9'), /--iface eth9: no such interface/],
    [() => findUnderlay(kernel()), /no default route to choose an interface from; give --iface/],
    [() => requireV6({ index: 2, name: 'eth0', mtu: 1500, v4: '192.0.2.11' }, 'EnableIPv6'), /EnableIPv6 needs an IPv6 address on the underlay eth0 \(it has no global one\); give --public-ipv6/],
    [() => requireV4({ index: 2, name: 'eth0', mtu: 1500, v6: '2001:db8::11' }, 'the vxlan backend'), /the vxlan backend needs an IPv4 address on the underlay eth0/],
  ];
  for (const [fn, re] of fails) assert.throws(fn, (e: unknown) => e instanceof UnderlayError && !(e as UnderlayError).retryable && re.test((e as Error).message));
  // Down or without an address yet: weftd waits for it (retryable), as it does after a link flap.
  const waits: Array<[() => unknown, RegExp]> = [
    [() => findUnderlay(kernel({ defaultVia: 2, addrs: [] })), /interface eth0 has no IPv4 address yet \(or give --public-ip\)/],
    [() => findUnderlay(kernel({ defaultVia: 2, up: false })), /interface eth0 is down/],
  ];
  for (const [fn, re] of waits) assert.throws(fn, (e: unknown) => e instanceof UnderlayWaitError && (e as UnderlayWaitError).retryable && re.test((e as Error).message));
});

test('without a default route (a link flap removed it), the last run\'s interface from --state-dir is used', () => {
  assert.is(findUnderlay(kernel(), undefined, undefined, () => 'eth0').name, 'eth0');
  assert.throws(() => findUnderlay(kernel(), undefined, undefined, () => 'eth7'), /no default route/);
});

test.run();
