// Dual-stack backends against the in-memory kernel: vxlan's second device
// weft-v6.<VNI> with its own MAC and per-peer IPv6 neighbour, FDB to the
// peer's PublicIPv6 and onlink route; host-gw's IPv6 routes via PublicIPv6;
// peers without an IPv6 subnet passed over silently; the IPv4 side untouched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DualStackBackend } from '../../../backend/dual-stack.js';
import { HostGwBackend } from '../../../backend/host-gw/backend.js';
import { VxlanBackend } from '../../../backend/vxlan/backend.js';
import { createLogger } from '../../../daemon/logger.js';
import { Prefix } from '../../../lib/ip.js';
import type { Lease } from '../../../subnet-manager/lease.js';
import { dualLease, FakeKernel, hostGwLease, MAC, removed, snapshot, UNDERLAY_DUAL } from './fake-kernel.js';

const MAC6 = '02:66:66:66:66:66';
const log = createLogger('silent');

function vxlan(k: FakeKernel): DualStackBackend {
  const common = { nl: k, log, vni: 1, port: 8472, underlay: UNDERLAY_DUAL, routeProtocol: 87 };
  return new DualStackBackend(
    new VxlanBackend({ ...common, network: Prefix.parse('10.244.0.0/16'), device: 'weft.1', macFor: () => MAC }),
    new VxlanBackend({ ...common, family: 6, network: Prefix.parse('fd00::/48'), device: 'weft-v6.1', macFor: () => MAC6 }),
  );
}

test('vxlan: two devices, the IPv6 one local = PublicIPv6, its own MAC, <v6 subnet>::/128, MTU 70 under the underlay\'s; entries per family', async () => {
  const k = new FakeKernel();
  const b = vxlan(k);
  await b.configure(dualLease(3));
  await b.apply(snapshot(dualLease(5), dualLease(7), dualLease(9, false)));
  const d4 = k.linkByName('weft.1')!;
  const d6 = k.linkByName('weft-v6.1')!;
  assert.equal([d6.kind, d6.vxlan, d6.mtu, d6.up, d6.mac], ['vxlan', { id: 1, port: 8472, local: '2001:db8::11', linkIndex: 2, learning: false }, 1430, true, MAC6]);
  assert.is(d4.mtu, 1450, 'the IPv4 device keeps its MTU');
  assert.is(b.mtu, 1430, 'containers get the smaller MTU, so IPv6 needs no PMTU discovery');
  assert.equal(b.leaseData, { VNI: 1, VtepMAC: MAC });
  assert.equal(b.leaseV6Data, { VNI: 1, VtepMAC: MAC6 });
  assert.equal(k.addrList({ index: d6.index }).map((a) => `${a.address}/${a.prefixLen}`), ['fd00:0:0:3::/128']);
  assert.equal(k.addrList({ index: d4.index }).map((a) => `${a.address}/${a.prefixLen}`), ['10.244.3.0/32']);
  const on = (i: number) => ({
    neigh: k.neighs.filter((n) => n.index === i).map((n) => `${n.ip} ${n.mac}`).sort(),
    fdb: k.fdbs.filter((f) => f.index === i).map((f) => `${f.mac} ${f.dst}`).sort(),
    route: k.routes.filter((r) => r.index === i).map((r) => `${r.dst} via ${r.gateway} onlink=${r.onlink} proto ${r.protocol}`).sort(),
  });
  assert.equal(on(d6.index), {
    neigh: ['fd00:0:0:5:: 06:00:00:00:00:05', 'fd00:0:0:7:: 06:00:00:00:00:07'],
    fdb: ['06:00:00:00:00:05 2001:db8::19', '06:00:00:00:00:07 2001:db8::1b'],
    route: ['fd00:0:0:5::/64 via fd00:0:0:5:: onlink=true proto 87', 'fd00:0:0:7::/64 via fd00:0:0:7:: onlink=true proto 87'],
  });
  assert.is(on(d4.index).neigh.length, 3, 'the IPv4-only peer 9 is an IPv4 peer still');
  const s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed, s.invalidPeers, s.kernelErrors], [5, 5, 0, 0], 'peer 9 has no IPv6 half and is not counted invalid');

  // A restart adopts both devices' entries without touching them; a peer that left loses both halves.
  k.ops = [];
  const again = vxlan(k);
  await again.configure(dualLease(3));
  await again.apply(snapshot(dualLease(5), dualLease(9, false)));
  assert.equal(k.ops.filter((o) => !o.startsWith('link')), [
    'route del 10.244.7.0/24', 'fdb del 02:00:00:00:00:07', 'neigh del 10.244.7.0',
    'route del fd00:0:0:7::/64', 'fdb del 06:00:00:00:00:07', 'neigh del fd00:0:0:7::',
  ]);
  await again.apply(removed(dualLease(5)));
  assert.equal(on(d6.index), { neigh: [], fdb: [], route: [] });
});

test('vxlan DirectRouting over IPv6: a peer whose PublicIPv6 is on-link gets <v6 subnet> via <PublicIPv6>, the others the IPv6 VXLAN entries', async () => {
  const k = new FakeKernel();
  const common = { nl: k, log, vni: 1, port: 8472, underlay: UNDERLAY_DUAL, routeProtocol: 87, directRouting: true };
  const v6 = new VxlanBackend({ ...common, family: 6, network: Prefix.parse('fd00::/48'), device: 'weft-v6.1', macFor: () => MAC6 });
  const far: Lease = { ...dualLease(8), attrs: { ...dualLease(8).attrs, publicIPv6: '2001:db8:1::28' } };
  await v6.apply(snapshot(dualLease(5), far));
  const d6 = k.linkByName('weft-v6.1')!;
  assert.equal(k.routes.map((r) => `${r.dst} via ${r.gateway} dev ${r.index === d6.index ? 'weft-v6.1' : r.index}`).sort(),
    ['fd00:0:0:5::/64 via 2001:db8::19 dev 2', 'fd00:0:0:8::/64 via fd00:0:0:8:: dev weft-v6.1']);
  assert.equal(k.fdbs.map((f) => f.dst), ['2001:db8:1::28']);
  assert.equal(v6.stats().paths!.map((p) => `${p.subnet} ${p.path}`).sort(), ['fd00:0:0:5::/64 direct', 'fd00:0:0:8::/64 vxlan']);
});

test('vxlan IPv6 peers: bad BackendV6Data or a missing PublicIPv6 skip only the IPv6 half, naming why', async () => {
  const k = new FakeKernel();
  const b = vxlan(k);
  const noMac: Lease = { ...dualLease(5), attrs: { ...dualLease(5).attrs, backendV6Data: { VNI: 1, VtepMAC: 'ff:ff:ff:ff:ff:ff' } } };
  const noIp: Lease = { ...dualLease(6), attrs: { ...dualLease(6).attrs, publicIPv6: null } };
  await b.apply(snapshot(noMac, noIp, dualLease(7)));
  const d6 = k.linkByName('weft-v6.1')!;
  assert.equal(k.fdbs.filter((f) => f.index === d6.index).map((f) => f.dst), ['2001:db8::1b']);
  assert.is(k.fdbs.length, 4, 'all three IPv4 halves are served');
  assert.is(b.stats().invalidPeers, 2);
});

test('host-gw: IPv6 routes via PublicIPv6 on the underlay, proto 87; a peer off the IPv6 segment is skipped with the reason', async () => {
  const k = new FakeKernel();
  const hg = (l: Lease): Lease => ({ ...l, attrs: { ...l.attrs, backendType: 'host-gw', backendData: null } });
  const common = { nl: k, log, underlay: UNDERLAY_DUAL, routeProtocol: 87 };
  const b = new DualStackBackend(
    new HostGwBackend({ ...common, network: Prefix.parse('10.244.0.0/16') }),
    new HostGwBackend({ ...common, family: 6, network: Prefix.parse('fd00::/48') }),
  );
  const far: Lease = { ...hg(dualLease(8)), attrs: { ...hg(dualLease(8)).attrs, publicIPv6: '2001:db8:1::28' } };
  await b.apply(snapshot(hg(dualLease(5)), far, hostGwLease(9)));
  assert.equal(k.routes.filter((r) => r.family === 6).map((r) => `${r.dst} via ${r.gateway} dev ${r.index} proto ${r.protocol}`), ['fd00:0:0:5::/64 via 2001:db8::19 dev 2 proto 87']);
  assert.is(k.routes.filter((r) => r.family === 4).length, 3);
  const skipped = b.stats().paths!.filter((p) => p.path === 'skipped');
  assert.equal(skipped.map((p) => `${p.subnet} ${p.reason}`), ['fd00:0:0:8::/64 2001:db8:1::28 is reached via gateway 2001:db8::1: not on this host\'s L2 segment']);
  assert.is(b.mtu, 1500);
});

test.run();
