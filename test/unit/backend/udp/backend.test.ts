// The udp backend's reading of leases and its flags.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultUdpWorkers, effectiveUdpSettings, type UdpFlagValues } from '../../../../backend/udp/config.js';
import { parseUdpPeer, routedIntoTun, UdpPeer, UDP_OVERHEAD } from '../../../../backend/udp/backend.js';
import { parseWeftdFlags as parseFlags, UsageError } from '../../../../daemon/flags.js';
import { Prefix } from '../../../../lib/ip.js';
import { decodeLeaseAttrs } from '../../../../subnet-manager/lease.js';
import type { Lease } from '../../../../subnet-manager/lease.js';

const OWN = { v4: '192.0.2.11' };
const lease = (subnet: string, json: string): Lease => ({
  subnet: Prefix.parse(subnet),
  attrs: decodeLeaseAttrs(json),
  key: `/coreos.com/network/subnets/${subnet.replace('/', '-')}`,
});

test('a weft udp lease and a flannel udp lease (no BackendType) are peers; BackendData is ignored', () => {
  const w = parseUdpPeer(lease('10.244.3.0/24', '{"PublicIP":"192.0.2.13","BackendType":"udp","BackendData":null}'), OWN);
  assert.ok('peer' in w);
  assert.is((w as { peer: UdpPeer }).peer.publicIp.v4, '192.0.2.13');
  assert.is((w as { peer: UdpPeer }).peer.subnet.toString(), '10.244.3.0/24');
  const f = parseUdpPeer(lease('10.244.4.0/24', '{"PublicIP":"192.0.2.14"}'), OWN);
  assert.ok('peer' in f, JSON.stringify(f));
});

test('vxlan leases, our own address and equality', () => {
  const v = parseUdpPeer(lease('10.244.3.0/24', '{"PublicIP":"192.0.2.13","BackendType":"vxlan","BackendData":{"VtepMAC":"02:00:00:00:00:01"}}'), OWN);
  assert.equal(v, { error: 'BackendType "vxlan" is not "udp"' });
  const me = parseUdpPeer(lease('10.244.3.0/24', `{"PublicIP":"${OWN.v4}","BackendType":"udp"}`), OWN);
  assert.equal(me, { error: `PublicIP ${OWN.v4} is this host's own address` });
  const a = new UdpPeer(Prefix.parse('10.244.3.0/24'), { v4: '192.0.2.13' });
  assert.ok(a.equals(new UdpPeer(Prefix.parse('10.244.3.0/24'), { v4: '192.0.2.13' })));
  assert.not.ok(a.equals(new UdpPeer(Prefix.parse('10.244.3.0/24'), { v4: '192.0.2.14' })));
  assert.is(UDP_OVERHEAD, 28);
});

test('the dgram engine\'s wake address at exit is in the network and outside this host\'s subnet', () => {
  const net = Prefix.parse('10.244.0.0/16');
  assert.is(routedIntoTun(net, Prefix.parse('10.244.7.0/24')), '10.244.0.1');
  assert.is(routedIntoTun(net, Prefix.parse('10.244.0.0/24')), '10.244.1.0');
  assert.is(routedIntoTun(Prefix.parse('10.0.0.0/8'), Prefix.parse('10.0.0.0/9')), '10.128.0.0');
});

test('--udp-engine and --tun-device', () => {
  const d = parseFlags([]);
  assert.is(d.backendFlags.udpEngine, undefined, 'unset: Backend.Engine decides');
  assert.is(d.backendFlags.tunDevice, 'weft-tun');
  assert.is(parseFlags(['--udp-engine', 'dgram']).backendFlags.udpEngine, 'dgram');
  assert.is(parseFlags([], { WEFTD_UDP_ENGINE: 'native' }).backendFlags.udpEngine, 'native');
  assert.is(parseFlags(['--tun-device=tun9']).backendFlags.tunDevice, 'tun9');
  assert.throws(() => parseFlags(['--udp-engine', 'fast']), (e: unknown) => e instanceof UsageError && /invalid --udp-engine "fast": must be native or dgram/.test((e as Error).message));
});

test('--udp-workers: 1..64, default one per CPU (at most 8); the dgram engine always one', () => {
  const flags = (args: string[]) => parseFlags(args).backendFlags as unknown as UdpFlagValues;
  assert.is(flags([]).udpWorkers, undefined);
  assert.is(effectiveUdpSettings({ port: 8285 }, flags([])).workers, defaultUdpWorkers());
  assert.equal([1, 2, 8, 9, 128].map((n) => defaultUdpWorkers(n)), [1, 2, 8, 8, 8]);
  assert.is(defaultUdpWorkers(0), 1);
  assert.is(effectiveUdpSettings({ port: 8285 }, flags(['--udp-workers', '4'])).workers, 4);
  assert.is(effectiveUdpSettings({ port: 8285 }, flags(['--udp-workers', '4', '--udp-engine', 'dgram'])).workers, 1);
  for (const bad of ['0', '65', 'two']) {
    assert.throws(() => parseFlags(['--udp-workers', bad]), (e: unknown) => e instanceof UsageError && /--udp-workers/.test((e as Error).message), bad);
  }
});

test.run();
