// --cni-conf: the conflist weftd writes for its subnet.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cniConflist } from '../../../host/cni-conf.js';

test('CNI conflist: bridge + host-local on the leased subnet, the overlay MTU, one default route', () => {
  const c = cniConflist({ bridge: 'weft0', subnet: '10.244.3.0/24', gateway: '10.244.3.1', mtu: 1450, ipamDataDir: '/var/lib/weft/ipam' });
  const bridge = (c.plugins as Array<Record<string, any>>)[0]!;
  assert.is(c.cniVersion, '1.0.0');
  assert.is(bridge.type, 'bridge');
  assert.is(bridge.isDefaultGateway, true);
  assert.is(bridge.mtu, 1450);
  assert.equal(bridge.ipam.ranges, [[{ subnet: '10.244.3.0/24', gateway: '10.244.3.1' }]]);
  assert.is(bridge.ipam.routes, undefined, 'isDefaultGateway adds the default route; a second would fail');
  assert.is(bridge.ipam.dataDir, '/var/lib/weft/ipam');
});

test('CNI conflist with weft\'s plugin (--cni-plugin flannel): kube-flannel\'s shape, weftd\'s subnet file, the IPAM state dir', () => {
  const c = cniConflist({ subnet: '10.244.3.0/24', gateway: '10.244.3.1', mtu: 1450, plugin: 'flannel', subnetFile: '/run/flannel/subnet.env', ipamDataDir: '/var/lib/weft/ipam' });
  assert.equal(c.plugins, [
    { type: 'flannel', subnetFile: '/run/flannel/subnet.env', ipam: { dataDir: '/var/lib/weft/ipam' }, delegate: { hairpinMode: true, isDefaultGateway: true } },
    { type: 'portmap', capabilities: { portMappings: true } },
  ]);
  const b = cniConflist({ bridge: 'weft0', subnet: '10.244.3.0/24', gateway: '10.244.3.1', mtu: 1450, plugin: 'weft' });
  assert.equal((b.plugins as Array<Record<string, any>>)[0], { type: 'weft', delegate: { bridge: 'weft0', hairpinMode: true, isDefaultGateway: true } });
});

test('CNI conflist, dual stack: a second range set for the IPv6 subnet (one address of each family per container)', () => {
  const c = cniConflist({ bridge: 'weft0', subnet: '10.244.3.0/24', gateway: '10.244.3.1', ipv6: { subnet: 'fd00:10:244:7::/64', gateway: 'fd00:10:244:7::1' }, mtu: 1430 });
  const bridge = (c.plugins as Array<Record<string, any>>)[0]!;
  assert.equal(bridge.ipam.ranges, [[{ subnet: '10.244.3.0/24', gateway: '10.244.3.1' }], [{ subnet: 'fd00:10:244:7::/64', gateway: 'fd00:10:244:7::1' }]]);
  assert.is(bridge.isDefaultGateway, true, 'the bridge plugin adds 0.0.0.0/0 and ::/0 via the gateways');
});

test.run();
