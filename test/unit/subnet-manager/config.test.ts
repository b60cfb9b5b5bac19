import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, parseNetworkConfig } from '../../../subnet-manager/index.js';

test('defaults: SubnetLen 24, SubnetMin second subnet, SubnetMax last subnet, Backend vxlan (its fields are the backend\'s)', () => {
  const c = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  assert.is(String(c.network), '10.244.0.0/16');
  assert.is(c.subnetLen, 24);
  assert.is(String(c.subnetMin), '10.244.1.0/24');
  assert.is(String(c.subnetMax), '10.244.255.0/24');
  assert.equal(c.backend, { type: 'vxlan', raw: { Type: 'vxlan' } });
  assert.is(c.enableIPv6, false);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.backend) && Object.isFrozen(c.backend.raw));
});

test('SubnetLen default is prefix+2 for networks longer than /22; host bits of Network are cleared (Go ParseCIDR)', () => {
  assert.is(parseNetworkConfig('{"Network":"10.10.0.0/24"}').subnetLen, 26);
  assert.is(parseNetworkConfig('{"Network":"10.10.0.0/22"}').subnetLen, 24);
  assert.is(String(parseNetworkConfig('{"Network":"10.244.7.9/16"}').network), '10.244.0.0/16');
});

test('keys match case-insensitively (Go encoding/json), unknown keys ignored; Backend is kept as written for its backend', () => {
  const c = parseNetworkConfig('{"network":"10.5.0.0/16","subnetlen":26,"Foo":1,"backend":{"type":"udp","Engine":"dgram"}}');
  assert.is(c.subnetLen, 26);
  assert.is(c.backend.type, 'udp');
  assert.equal(c.backend.raw, { type: 'udp', Engine: 'dgram' });
  // Any type is the control plane's to carry; the backend registry decides what exists.
  assert.is(parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}').backend.type, 'host-gw');
  assert.is(parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"gre"}}').backend.type, 'gre');
});

test('explicit SubnetMin/SubnetMax and IPv6', () => {
  const c = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.10.0","SubnetMax":"10.244.20.0","EnableIPv6":true,"IPv6Network":"fd00::/48"}');
  assert.is(String(c.subnetMin), '10.244.10.0/24');
  assert.is(String(c.subnetMax), '10.244.20.0/24');
  assert.is(String(c.ipv6Network), 'fd00::/48');
  assert.is(c.ipv6SubnetLen, 64);
});

const bad: [string, string][] = [
  ['{"Network":', 'network config is not valid JSON: '],
  ['[1]', 'network config must be a JSON object, got [1]'],
  ['{}', 'Network is required, e.g. "10.244.0.0/16"'],
  ['{"Network":42}', 'Network must be a string like "10.244.0.0/16", got 42'],
  ['{"Network":"10.244.0.0"}', 'Network "10.244.0.0" is not a valid IPv4 CIDR like "10.244.0.0/16"'],
  ['{"Network":"10.0.0.0/29"}', 'Network 10.0.0.0/29 is too small: the minimum useful prefix is /28'],
  ['{"Network":"10.244.0.0/16","SubnetLen":31}', 'SubnetLen must be at most 30, got 31'],
  ['{"Network":"10.244.0.0/16","SubnetLen":16}', 'SubnetLen must be longer than the Network prefix /16, got 16'],
  ['{"Network":"10.244.0.0/16","SubnetLen":"24"}', 'SubnetLen must be an integer, got "24"'],
  ['{"Network":"10.244.0.0/16","SubnetMin":"10.244.3.1"}', 'SubnetMin 10.244.3.1 is not on a /24 boundary'],
  ['{"Network":"10.244.0.0/16","SubnetMax":"10.245.0.0"}', 'SubnetMax 10.245.0.0 is not inside Network 10.244.0.0/16'],
  ['{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.3.0"}', 'SubnetMin 10.244.9.0 is greater than SubnetMax 10.244.3.0'],
  ['{"Network":"10.244.0.0/16","SubnetMin":5}', 'SubnetMin must be a string like "10.244.1.0", got 5'],
  ['{"Network":"10.244.0.0/16","SubnetMin":"10.244.300.0"}', 'SubnetMin "10.244.300.0" is not a valid IPv4 address'],
  ['{"Network":"10.244.0.0/16","Backend":"vxlan"}', 'Backend must be an object like {"Type":"vxlan"}, got "vxlan"'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":7}}', 'Backend.Type must be a string like "vxlan", got 7'],
  ['{"Network":"10.244.0.0/16","EnableIPv6":true}', 'IPv6Network is required when EnableIPv6 is true, e.g. "fd00:10:244::/48"'],
  ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetLen":127}', 'IPv6SubnetLen must be at most 126, got 127'],
  ['{"Network":"10.244.0.0/16","EnableIPv6":"true"}', 'EnableIPv6 must be true or false, got "true"'],
];

for (const [text, msg] of bad) {
  test(`rejects ${text}`, () => {
    try {
      parseNetworkConfig(text);
      assert.unreachable('should have thrown');
    } catch (e) {
      assert.instance(e, ConfigError);
      assert.is((e as ConfigError).code, 'EBADCONFIG');
      if (msg.endsWith(': ')) assert.ok((e as Error).message.startsWith(msg), (e as Error).message);
      else assert.is((e as Error).message, msg);
    }
  });
}

test.run();
