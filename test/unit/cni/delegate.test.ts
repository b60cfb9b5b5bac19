// The delegate config against flannel's own test vectors (flannel-io/cni-plugin
// flannel_linux_test.go) and its error messages.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildDelegate, sortedJson } from '../../../cni/delegate.js';
import { parsePluginConf } from '../../../cni/netconf.js';
import { CniError } from '../../../cni/spec.js';
import { missingSubnetEnvKeys, parseFlannelSubnetEnv } from '../../../host/subnet-env.js';

const conf = (extra: Record<string, unknown> = {}) =>
  parsePluginConf(JSON.stringify({ name: 'cni-flannel', type: 'flannel', subnetFile: '/x/subnet.env', dataDir: '/x/data', ...extra }), { checkVersion: true });

const V4 = 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n';

test("flannel's vector: IPv4 env, no delegate, no cniVersion -> the exact saved file", () => {
  const d = buildDelegate(conf(), parseFlannelSubnetEnv(V4));
  assert.is(
    sortedJson(d),
    '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
  );
});

test('two networks give two routes; FLANNEL_IPMASQ=false makes the bridge masquerade; cniVersion is passed on', () => {
  const env = parseFlannelSubnetEnv('FLANNEL_NETWORK=10.1.0.0/16,192.168.0.0/16,10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  const d = buildDelegate(conf({ cniVersion: '1.0.0' }), env) as any;
  assert.equal(d.ipam.routes, [{ dst: '10.1.0.0/16' }, { dst: '192.168.0.0/16' }]);
  assert.is(d.ipMasq, true);
  assert.is(d.cniVersion, '1.0.0');
});

test('IPv6-only and dual-stack envs: v6 range from FLANNEL_IPV6_SUBNET in network form, v4 range first', () => {
  const v6 = parseFlannelSubnetEnv('FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n');
  assert.equal(missingSubnetEnvKeys(v6), []);
  assert.equal((buildDelegate(conf(), v6) as any).ipam, { type: 'host-local', ranges: [[{ subnet: 'fc00::/64' }]], routes: [{ dst: 'fc00::/48' }] });
  const dual = parseFlannelSubnetEnv(V4 + 'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\n');
  const ipam = (buildDelegate(conf(), dual) as any).ipam;
  assert.equal(ipam.ranges, [[{ subnet: '10.1.17.0/24' }], [{ subnet: 'fc00::/64' }]]);
  assert.equal(ipam.routes, [{ dst: '10.1.0.0/16' }, { dst: 'fc00::/48' }]);
});

test('delegate keys win; ipam keys pass through; given ipam routes come first; ranges are always replaced', () => {
  const d = buildDelegate(
    conf({
      cniVersion: '0.3.1',
      delegate: { bridge: 'weft0', mtu: 1400, ipMasq: true, isGateway: false, hairpinMode: true },
      ipam: { dataDir: '/var/lib/weft/ipam', routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: '10.9.9.0/24' }]] },
      runtimeConfig: { portMappings: [] },
    }),
    parseFlannelSubnetEnv(V4),
  ) as any;
  assert.equal(
    { bridge: d.bridge, mtu: d.mtu, ipMasq: d.ipMasq, isGateway: d.isGateway, hairpinMode: d.hairpinMode, runtimeConfig: d.runtimeConfig },
    { bridge: 'weft0', mtu: 1400, ipMasq: true, isGateway: false, hairpinMode: true, runtimeConfig: { portMappings: [] } },
  );
  assert.equal(d.ipam, { dataDir: '/var/lib/weft/ipam', type: 'host-local', ranges: [[{ subnet: '10.1.17.0/24' }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '10.1.0.0/16' }] });
  const other = buildDelegate(conf({ delegate: { type: 'macvlan' } }), parseFlannelSubnetEnv(V4)) as any;
  assert.is(other.isGateway, undefined, 'isGateway only for bridge');
});

for (const [extra, re] of [
  [{ delegate: { type: 7 } }, /'delegate' dictionary, if present, must have \(string\) 'type' field/],
  [{ delegate: { name: 'x' } }, /'delegate' dictionary must not have 'name' field, it'll be set by flannel/],
  [{ delegate: { ipam: {} } }, /'delegate' dictionary must not have 'ipam' field/],
  [{ ipam: { routes: [{ dst: 'nope' }] } }, /failed to read IPAM routes: failed to parse ipam\.routes: routes\[0\]\.dst "nope" is not a CIDR/],
  [{ ipam: { routes: [{ dst: '10.0.0.0/8', gw: 'x' }] } }, /routes\[0\]\.gw "x" is not an IP address/],
] as const) {
  test(`bad delegate config: ${JSON.stringify(extra)} -> code 7 naming the key`, () => {
    try {
      buildDelegate(conf(extra as Record<string, unknown>), parseFlannelSubnetEnv(V4));
      assert.unreachable();
    } catch (e) {
      assert.instance(e, CniError);
      assert.is((e as CniError).cniCode, 7);
      assert.match((e as Error).message, re);
    }
  });
}

test('subnet.env: flannel\'s missing-key rule and errors naming the key', () => {
  assert.equal(missingSubnetEnvKeys(parseFlannelSubnetEnv('FLANNEL_SUBNET=10.1.17.1/24\n')), ['FLANNEL_NETWORK', 'FLANNEL_IPV6_NETWORK', 'FLANNEL_MTU', 'FLANNEL_IPMASQ']);
  const e = parseFlannelSubnetEnv(V4);
  assert.is(e.subnetAddress, '10.1.17.1/24');
  assert.is(e.subnet?.toString(), '10.1.17.0/24');
  assert.is(e.ipMasq, 'true');
  assert.throws(() => parseFlannelSubnetEnv('FLANNEL_SUBNET=10.1.17.1\n'), /FLANNEL_SUBNET=10\.1\.17\.1: "10\.1\.17\.1" is not an IPv4 CIDR/);
  assert.throws(() => parseFlannelSubnetEnv('FLANNEL_MTU=big\n'), /FLANNEL_MTU=big: not a whole number/);
});

test.run();
