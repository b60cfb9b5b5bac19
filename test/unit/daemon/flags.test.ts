import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FLAGS, parseWeftdFlags as parseFlags, usage, UsageError } from '../../../daemon/flags.js';
import { envName } from '../../../lib/flags.js';

test('defaults follow flanneld and weft conventions', () => {
  const c = parseFlags([]);
  assert.equal([...c.etcdEndpoints], ['http://127.0.0.1:2379']);
  assert.is(c.etcdPrefix, '/coreos.com/network');
  assert.is(c.subnetFile, '/run/flannel/subnet.env');
  assert.is(c.bridge, 'weft0');
  assert.is(c.ipMasq, false);
  assert.is(c.subnetLeaseTtlSeconds, 86400);
  assert.is(c.subnetLeaseRenewMarginMinutes, 60);
  assert.ok(Object.isFrozen(c));
});

test('flags in --name=value and --name value forms, booleans bare', () => {
  const c = parseFlags(['--etcd-endpoints=http://192.0.2.2:2379,http://192.0.2.3:2379', '--iface', 'eth0', '--ip-masq', '--public-ip', '192.0.2.11']);
  assert.equal([...c.etcdEndpoints], ['http://192.0.2.2:2379', 'http://192.0.2.3:2379']);
  assert.is(c.iface, 'eth0');
  assert.is(c.ipMasq, true);
  assert.is(c.publicIp, '192.0.2.11');
});

test('environment variables are read and flags override them', () => {
  assert.is(envName('WEFTD_', 'etcd-endpoints'), 'WEFTD_ETCD_ENDPOINTS');
  const env = { WEFTD_BRIDGE: 'cbr0', WEFTD_IP_MASQ: 'true', WEFTD_SUBNET_LEASE_TTL: '120' };
  const c = parseFlags(['--bridge', 'br1'], env);
  assert.is(c.bridge, 'br1');
  assert.is(c.ipMasq, true);
  assert.is(c.subnetLeaseTtlSeconds, 120);
});

test('a renew margin as long as a short TTL becomes half the TTL', () => {
  const c = parseFlags(['--subnet-lease-ttl', '20']);
  assert.is(c.subnetLeaseRenewMarginMinutes * 60, 10);
});

const bad: Array<[string[], Record<string, string>, RegExp]> = [
  [['--nope'], {}, /unknown flag --nope/],
  [['--public-ip', '300.1.1.1'], {}, /invalid --public-ip "300.1.1.1": must be an IPv4 address/],
  [['--etcd-endpoints', 'localhost:2379'], {}, /"localhost:2379" (is not a URL|must use http)/],
  [['--subnet-lease-ttl', 'ten'], {}, /invalid --subnet-lease-ttl "ten": must be a whole number/],
  [['--subnet-lease-ttl', '1'], {}, /must be at least 5/],
  [['--bridge', 'a-name-far-too-long'], {}, /invalid --bridge "a-name-far-too-long"/],
  [['--iface'], {}, /flag --iface needs a value/],
  [['eth0'], {}, /unexpected argument "eth0"/],
  [[], { WEFTD_IP_MASQ: 'maybe' }, /invalid WEFTD_IP_MASQ= "maybe": must be true or false/],
  [['--log-level', 'loud'], {}, /invalid --log-level "loud"/],
  [['--etcd-certfile', '/x.pem'], {}, /--etcd-certfile and --etcd-keyfile must be given together/],
];
for (const [argv, env, re] of bad) {
  test(`rejects ${JSON.stringify(argv)} ${JSON.stringify(env)}`, () => {
    try {
      parseFlags(argv, env);
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, UsageError);
      assert.match((e as Error).message, re);
    }
  });
}

test('backend flags land in backendFlags, not beside the core ones; --version is not read from the environment', () => {
  const c = parseFlags(['--vxlan-device', 'vx9', '--udp-engine', 'dgram'], { WEFTD_VERSION: 'true' });
  assert.equal(c.backendFlags, { vxlanDevice: 'vx9', tunDevice: 'weft-tun', udpEngine: 'dgram', wireguardDevice: 'weft-wg', wireguardDeviceV6: 'weft-wg-v6', wireguardKeyFile: '/var/lib/weft/wireguard.key', wireguardImpl: 'auto' });
  assert.is((c as unknown as Record<string, unknown>).vxlanDevice, undefined);
  assert.is(c.version, false);
  assert.is(parseFlags(['-h']).help, true);
});

test('usage lists every flag with its environment variable', () => {
  const u = usage();
  for (const f of ['--etcd-endpoints', '--etcd-prefix', '--iface', '--public-ip', '--subnet-file', '--ip-masq', '--subnet-lease-renew-margin', '--bridge', '--subnet-lease-ttl', '--help', '--version']) {
    assert.ok(u.includes(f), f);
  }
  assert.ok(u.includes('WEFTD_SUBNET_LEASE_RENEW_MARGIN'));
  for (const f of ['--vxlan-device', '--tun-device', '--udp-engine', '--udp-offload', '--wireguard-device', '--wireguard-device-v6', '--wireguard-key-file', '--wireguard-impl']) assert.ok(u.includes(f), f);
  assert.not.ok(u.includes('WEFTD_VERSION'));
});

test('the README documents every weftd flag', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../../README.md', import.meta.url)), 'utf8');
  const missing = FLAGS.filter((f) => !readme.includes(`\`--${f.name}\``)).map((f) => `--${f.name}`);
  assert.equal(missing, []);
});

test.run();
