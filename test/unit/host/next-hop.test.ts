// Is a peer's PublicIP on this host's L2 segment? The judgement of `ip route
// get` that host-gw and VXLAN DirectRouting rest on, against canned answers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nextHop } from '../../../host/next-hop.js';
import { NetlinkError, RTN_LOCAL, RTN_UNICAST, type Route } from '../../../netlink/index.js';

const U = { index: 2, name: 'eth0' };
const r = (o: Partial<Route>): Route => ({ family: 4, dst: '192.0.2.7/32', index: 2, onlink: false, table: 254, protocol: 0, scope: 0, type: RTN_UNICAST, flags: 0, ...o });
const answer = (routes: Route[] | Error) => ({ routeGet: () => { if (routes instanceof Error) throw routes; return routes; } });

test('on-link: one route, no gateway, through the underlay', () => {
  assert.equal(nextHop(answer([r({})]), '192.0.2.7', U), { onLink: true });
});

test('not on-link, each with a reason that names the address', () => {
  const cases: Array<[Route[] | Error, RegExp]> = [
    [[r({ gateway: '192.0.2.1' })], /^198\.51\.100\.7 is reached via gateway 192\.0\.2\.1: not on this host's L2 segment$/],
    [[r({ index: 5 })], /through interface index 5, not the underlay eth0/],
    [[r({ type: RTN_LOCAL })], /is an address of this host/],
    [[r({ type: 7 })], /not unicast \(type 7\)/],
    [[r({}), r({ index: 3 })], /answered 2 routes to 198\.51\.100\.7, not one/],
    [new NetlinkError('route get 198.51.100.7', 101), /the kernel has no route to 198\.51\.100\.7 \(ENETUNREACH\)/],
  ];
  for (const [routes, re] of cases) {
    const h = nextHop(answer(routes), '198.51.100.7', U);
    assert.is(h.onLink, false);
    assert.match((h as { reason: string }).reason, re);
  }
  assert.is((nextHop(answer([r({ gateway: '192.0.2.1' })]), '198.51.100.7', U) as { gateway?: string }).gateway, '192.0.2.1');
});

test('a kernel error that is not "no route" is thrown: "cannot tell" is not "not on the segment"', () => {
  assert.throws(() => nextHop(answer(new NetlinkError('route get 192.0.2.7', 105)), '192.0.2.7', U), /ENOBUFS/);
});

test.run();
