// Dual stack in the control plane, against flannel's own test vectors
// (flannel-io/flannel pkg/subnet/config_test.go, subnet_test.go,
// pkg/subnet/etcd/registry_test.go, fuzz_test.go).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Prefix } from '../../../lib/ip.js';
import {
  ConfigError, LeaseError, decodeLeaseAttrs, encodeLeaseAttrs, isAllocatable, leaseKeySuffix, parseLeaseKeySuffix, parseNetworkConfig,
} from '../../../subnet-manager/index.js';
import { chooseFreeSubnetV6, firstFreeSubnets } from '../../../subnet-manager/allocate.js';
import { ipv6Space } from '../../../subnet-manager/config.js';

// flannel's MakeSubnetKey/ParseSubnetKey regex, applied to the key as flannel does.
const FLANNEL_KEY_RE = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

test('TestIPv6ConfigDefaults (with an IPv4 Network: IPv6-only is refused): IPv6SubnetMin/Max/Len defaults', () => {
  const c = parseNetworkConfig('{ "network": "10.3.0.0/16", "enableIPv6": true, "ipv6Network": "fc00::/48" }');
  assert.is(c.enableIPv4, true);
  assert.is(c.enableIPv6, true);
  assert.is(String(c.ipv6Network), 'fc00::/48');
  assert.is(c.ipv6SubnetLen, 64);
  assert.is(c.ipv6SubnetMin!.networkAddress, 'fc00:0:0:1::');
  assert.is(c.ipv6SubnetMax!.networkAddress, 'fc00:0:0:ffff::');
  // TestConfigDefaults' IPv4 half is unchanged.
  assert.is(c.subnetMin.networkAddress, '10.3.1.0');
  assert.is(c.subnetMax.networkAddress, '10.3.255.0');
});

test('TestIPv6ConfigOverrides: IPv6SubnetMin/Max/Len kept as given; prefix > /62 defaults to prefix+2', () => {
  const c = parseNetworkConfig('{ "Network": "10.3.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/48", "IPv6SubnetMin": "fc00:0:0:1::", "IPv6SubnetMax": "fc00:0:0:f::", "IPv6SubnetLen": 124 }');
  assert.is(c.ipv6SubnetLen, 124);
  assert.is(c.ipv6SubnetMin!.toString(), 'fc00:0:0:1::/124');
  assert.is(c.ipv6SubnetMax!.toString(), 'fc00:0:0:f::/124');
  assert.is(parseNetworkConfig('{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/100"}').ipv6SubnetLen, 102);
  // IPv6Network without EnableIPv6: no IPv6 half (flannel validates the IPv6 block only when enabled).
  const off = parseNetworkConfig('{"Network":"10.3.0.0/16","IPv6Network":"fc00::/48"}');
  assert.is(off.enableIPv6, false);
  assert.is(ipv6Space(off), undefined);
  assert.is(off.ipv6Network, undefined);
});

const bad: [string, RegExp][] = [
  ['{"Network":"10.3.0.0/16","EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48"}', /^EnableIPv4 false \(IPv6-only\) is not supported: flannel's etcd mode/],
  ['{"Network":"10.3.0.0/16","EnableIPv4":false}', /^EnableIPv4 and EnableIPv6 are both false/],
  ['{"Network":"10.3.0.0/16","EnableIPv4":"no"}', /^EnableIPv4 must be true or false, got "no"$/],
  ['{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"10.0.0.0/8"}', /^IPv6Network "10\.0\.0\.0\/8" is not a valid IPv6 CIDR/],
  ['{"Network":"10.3.0.0/16","IPv6Network":"fc00::zz/48"}', /^IPv6Network "fc00::zz\/48" is not a valid IPv6 CIDR/],
  ['{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/126"}', /^IPv6Network fc00::\/126 is too small: the minimum useful prefix is \/124$/],
  ['{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":49}', /^IPv6SubnetLen must be at least the IPv6Network prefix \+ 2 \(\/50, four subnets\), got 49$/],
  ['{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":"64"}', /^IPv6SubnetLen must be an integer, got "64"$/],
  ['{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:1::"}', /^IPv6SubnetMin fc00:1:: is not inside IPv6Network fc00::\/48$/],
  ['{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMax":"fc00:0:0:1::5"}', /^IPv6SubnetMax fc00:0:0:1::5 is not on a \/64 boundary$/],
  ['{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"10.3.0.0"}', /^IPv6SubnetMin "10\.3\.0\.0" is not a valid IPv6 address$/],
  ['{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:9::","IPv6SubnetMax":"fc00:0:0:2::"}', /^IPv6SubnetMin fc00:0:0:9:: is greater than IPv6SubnetMax fc00:0:0:2::$/],
];
for (const [text, re] of bad) {
  test(`rejects ${text}`, () => {
    assert.throws(() => parseNetworkConfig(text), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message));
  });
}

test('TestSubnetNodev4 / TestSubnetNodev6: keys round-trip; weft\'s keys match flannel\'s ParseSubnetKey regex', () => {
  const v4 = parseLeaseKeySuffix('10.12.13.0-24');
  assert.is(v4.subnet.toString(), '10.12.13.0/24');
  assert.is(v4.ipv6Subnet, undefined);
  assert.is(leaseKeySuffix(v4.subnet), '10.12.13.0-24');
  const d = parseLeaseKeySuffix('10.12.13.0-24&fd00:12:13::-56');
  assert.is(d.subnet.toString(), '10.12.13.0/24');
  assert.is(d.ipv6Subnet!.toString(), 'fd00:12:13::/56');
  assert.is(leaseKeySuffix(d.subnet, d.ipv6Subnet), '10.12.13.0-24&fd00:12:13::-56');
  for (const [a, b] of [['10.244.3.0/24', 'fc00:0:0:7b::/64'], ['10.5.1.0/24', 'fc00::/64'], ['10.244.255.0/24', '2001:db8:ffff:ffff::/64']]) {
    const key = `/coreos.com/network/subnets/${leaseKeySuffix(Prefix.parse(a!), Prefix.parse(b!))}`;
    const m = FLANNEL_KEY_RE.exec(key);
    assert.ok(m, key);
    assert.is(`${m![1]}/${m![2]}`, a);
    assert.is(`${m![3]}/${m![4]}`, b);
  }
});

test('TestSubnetNodeInvalid: every key flannel ignores is refused, naming it', () => {
  for (const k of ['10', '10.12.13.0', '10.12.13-24', '10.12.13.300-24', '10.12.13.0-24hi', '&2001::-56', '10.12.13.0-24&:12:13:-56',
    '10.12.13.0-24&20011::-56', '10.12.13.0-24&2001-56', '10.12.13.0-24&2001::', '10.12.13.0-24&2001::-56hi']) {
    assert.throws(() => parseLeaseKeySuffix(k), (e: unknown) => e instanceof LeaseError && (e as Error).message.includes(JSON.stringify(k)), k);
  }
});

test('lease JSON: flannel\'s examples decode; weft writes flannel\'s field order with BackendV6Data last', () => {
  // registry_test.go TestEtcdRegistry
  assert.equal(decodeLeaseAttrs('{"PublicIP":"1.2.3.4","PublicIPv6":null}'), { publicIP: '1.2.3.4', publicIPv6: null, backendType: 'udp', backendData: null });
  // fuzz_test.go seeds
  assert.is(decodeLeaseAttrs('{"PublicIP":"192.168.0.1","PublicIPv6":"fc00::1"}').publicIPv6, 'fc00::1');
  assert.is(decodeLeaseAttrs('{"PublicIP":"192.168.0.1","BackendType":"vxlan"}').backendType, 'vxlan');
  assert.throws(() => decodeLeaseAttrs('{"PublicIP":"2001:db8::1"}'), /PublicIP "2001:db8::1" is not a valid IPv4 address/);
  const dual = '{"PublicIP":"192.0.2.11","PublicIPv6":"2001:db8::11","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:00:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:00:00:02"}}';
  const a = decodeLeaseAttrs(dual);
  assert.equal(a.backendV6Data, { VNI: 1, VtepMAC: 'aa:bb:cc:00:00:02' });
  assert.is(encodeLeaseAttrs(a), dual);
  // No BackendV6Data: the key is absent (omitempty), so IPv4-only leases are byte for byte what they were.
  const v4 = '{"PublicIP":"192.0.2.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}';
  assert.not.ok('backendV6Data' in decodeLeaseAttrs(v4));
  assert.is(encodeLeaseAttrs(decodeLeaseAttrs(v4)), v4);
  assert.is(encodeLeaseAttrs({ publicIP: '192.0.2.11', publicIPv6: '2001:db8::11', backendType: 'host-gw', backendData: undefined }),
    '{"PublicIP":"192.0.2.11","PublicIPv6":"2001:db8::11","BackendType":"host-gw"}');
});

test('IPv6 allocation: the first 100 free subnets from IPv6SubnetMin, jumping over taken ranges; a random pick among them', () => {
  const c = parseNetworkConfig('{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/32"}');
  const s = ipv6Space(c)!;
  assert.is(s.subnetMin.toString(), '2001:db8:0:1::/64');
  assert.is(s.subnetMax.toString(), '2001:db8:ffff:ffff::/64');
  const first = firstFreeSubnets(s, []);
  assert.is(first.length, 100);
  assert.is(first[0]!.toString(), '2001:db8:0:1::/64');
  assert.is(first[99]!.toString(), '2001:db8:0:64::/64');
  // A /48 taken (a stray key) blocks 65536 /64s in one jump; single ones are skipped; IPv4 prefixes are ignored.
  const taken = [Prefix.parse('2001:db8:0:2::/64'), Prefix.parse('2001:db8::/48'), Prefix.parse('2001:db8:1:1::/64'), Prefix.parse('10.3.0.0/16')];
  const f = firstFreeSubnets(s, taken, 3).map(String);
  assert.equal(f, ['2001:db8:1::/64', '2001:db8:1:2::/64', '2001:db8:1:3::/64']);
  for (const p of firstFreeSubnets(s, taken)) assert.ok(isAllocatable(s, p) && !taken.some((t) => t.overlaps(p)));
  // Near the top: only what is left.
  const top = parseNetworkConfig('{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:fffd::"}');
  assert.equal(firstFreeSubnets(ipv6Space(top)!, [Prefix.parse('fc00:0:0:fffe::/64')]).map(String), ['fc00:0:0:fffd::/64', 'fc00:0:0:ffff::/64']);
  assert.is(chooseFreeSubnetV6(ipv6Space(top)!, [Prefix.parse('fc00::/48')]), null);
  // Random: not the IPv4 index. Every candidate is reachable.
  assert.is(chooseFreeSubnetV6(s, [], () => 0)!.toString(), '2001:db8:0:1::/64');
  assert.is(chooseFreeSubnetV6(s, [], () => 0.999)!.toString(), '2001:db8:0:64::/64');
});

test.run();
