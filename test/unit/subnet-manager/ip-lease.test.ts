import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Prefix } from '../../../lib/ip.js';
import { LeaseError, decodeLeaseAttrs, encodeLeaseAttrs, leaseKeySuffix, parseLeaseKeySuffix } from '../../../subnet-manager/index.js';

const flannelValue = '{"PublicIP":"192.0.2.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}';

test('lease value codec round-trips flannel\'s own JSON byte for byte', () => {
  const a = decodeLeaseAttrs(flannelValue);
  assert.equal(a, { publicIP: '192.0.2.11', publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' } });
  assert.is(encodeLeaseAttrs(a), flannelValue);
  assert.is(encodeLeaseAttrs({ publicIP: '192.0.2.12', publicIPv6: 'fd00::12', backendType: 'udp', backendData: null }),
    '{"PublicIP":"192.0.2.12","PublicIPv6":"fd00::12","BackendType":"udp","BackendData":null}');
  // flannel's host-gw lease (pkg/backend/hostgw): BackendData omitted (omitempty), not null.
  const hostGw = '{"PublicIP":"192.0.2.11","PublicIPv6":null,"BackendType":"host-gw"}';
  assert.is(encodeLeaseAttrs({ publicIP: '192.0.2.11', publicIPv6: null, backendType: 'host-gw', backendData: undefined }), hostGw);
  assert.equal(decodeLeaseAttrs(hostGw), { publicIP: '192.0.2.11', publicIPv6: null, backendType: 'host-gw', backendData: null });
});

test('flannel udp leases (only PublicIP) decode as backend udp', () => {
  assert.equal(decodeLeaseAttrs('{"PublicIP":"192.0.2.13"}'), { publicIP: '192.0.2.13', publicIPv6: null, backendType: 'udp', backendData: null });
});

test('bad lease values are LeaseErrors naming the field and value', () => {
  const cases: [string, RegExp][] = [
    ['not json', /not valid JSON.*"not json"/],
    ['[]', /must be a JSON object, got \[\]/],
    ['{}', /PublicIP must be an IPv4 address string, got undefined/],
    ['{"PublicIP":"192.0.2.300"}', /PublicIP "192\.0\.2\.300" is not a valid IPv4 address/],
    ['{"PublicIP":"192.0.2.1","PublicIPv6":7}', /PublicIPv6 must be a string or null, got 7/],
    ['{"PublicIP":"192.0.2.1","PublicIPv6":"x::y"}', /PublicIPv6 "x::y"/],
    ['{"PublicIP":"192.0.2.1","BackendType":5}', /BackendType must be a string, got 5/],
  ];
  for (const [v, re] of cases) {
    assert.throws(() => decodeLeaseAttrs(v), (e: Error) => e instanceof LeaseError && (e as LeaseError).code === 'EBADLEASE' && re.test(e.message));
  }
});

test('lease keys: single and dual stack round trips, bad keys named', () => {
  const sn = Prefix.parse('10.244.3.0/24');
  const sn6 = Prefix.parse('fd00:0:0:3::/64');
  assert.is(leaseKeySuffix(sn), '10.244.3.0-24');
  assert.is(leaseKeySuffix(sn, sn6), '10.244.3.0-24&fd00:0:0:3::-64');
  const p = parseLeaseKeySuffix('10.244.3.0-24&fd00:0:0:3::-64');
  assert.ok(p.subnet.equals(sn) && p.ipv6Subnet!.equals(sn6));
  assert.is(parseLeaseKeySuffix('10.244.3.0-24').ipv6Subnet, undefined);
  for (const bad of ['10.244.3.0/24', '10.244.3.5-24', '10.244.3.0-33', 'garbage', '10.244.3.0-24&zz-64', '10.244.3.0-24&fd00::-64&x']) {
    assert.throws(() => parseLeaseKeySuffix(bad), (e: Error) => e instanceof LeaseError && e.message.includes(JSON.stringify(bad)));
  }
});

test.run();
