// The udp backend over an IPv6 underlay: Backend.Underlay and --udp-underlay, the plug-in's
// refusals (exit 2) before anything is made, the peers' PublicIPv6 in the lease reading, the
// table knowing a peer by either underlay address, and the saved state's new fields.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseUdpPeer, UdpPeer, UDP_OVERHEAD6 } from '../../../../backend/udp/backend.js';
import { effectiveUdpSettings, parseUdpConfig } from '../../../../backend/udp/config.js';
import { datagramTarget } from '../../../../backend/udp/packet.js';
import { udpBackend } from '../../../../backend/udp/plugin.js';
import { readUdpState, type UdpState } from '../../../../backend/udp/state.js';
import { ForwardingTable, senderKey } from '../../../../backend/udp/table.js';
import { parseWeftdFlags as parseFlags, UsageError } from '../../../../daemon/flags.js';
import { ConfigError } from '../../../../lib/errors.js';
import { Prefix } from '../../../../lib/ip.js';
import { createLogger } from '../../../../daemon/logger.js';
import { decodeLeaseAttrs, type Lease } from '../../../../subnet-manager/lease.js';

const NET6 = Prefix.parse('fd00:10:244::/48');
const OWN = { v4: '192.0.2.11', v6: '2001:db8::11' };
const lease = (subnet: string, subnet6: string | undefined, json: string): Lease => ({
  subnet: Prefix.parse(subnet),
  ...(subnet6 ? { ipv6Subnet: Prefix.parse(subnet6) } : {}),
  attrs: decodeLeaseAttrs(json),
  key: `/coreos.com/network/subnets/${subnet.replace('/', '-')}${subnet6 ? `&${subnet6.replace('/', '-')}` : ''}`,
});

test('Backend.Underlay: "ipv4" or "ipv6", absent: ipv4; anything else names the field and quotes the value', () => {
  assert.is(parseUdpConfig({ Type: 'udp' }).underlay, undefined);
  assert.is(parseUdpConfig({ Type: 'udp', Underlay: 'ipv6' }).underlay, 'ipv6');
  assert.is(parseUdpConfig({ Type: 'udp', underlay: 'ipv4' }).underlay, 'ipv4', 'keys match case-insensitively, as flannel\'s');
  assert.throws(() => parseUdpConfig({ Type: 'udp', Underlay: 'IPv6' }), (e: unknown) => e instanceof ConfigError && (e as Error).message === 'Backend.Underlay must be "ipv4" or "ipv6", got "IPv6"');
  assert.throws(() => parseUdpConfig({ Type: 'udp', Underlay: 6 }), (e: unknown) => e instanceof ConfigError && /Backend.Underlay .* got 6$/.test((e as Error).message));
});

test('--udp-underlay wins over Backend.Underlay; bad values are usage errors', () => {
  const c = parseUdpConfig({ Type: 'udp', Underlay: 'ipv6' });
  assert.is(effectiveUdpSettings(c, { tunDevice: 'weft-tun' }).underlay, 'ipv6');
  assert.is(effectiveUdpSettings(c, { tunDevice: 'weft-tun', udpUnderlay: 'ipv4' }).underlay, 'ipv4');
  assert.is(effectiveUdpSettings(parseUdpConfig({ Type: 'udp' }), { tunDevice: 'weft-tun' }).underlay, 'ipv4');
  assert.is(parseFlags(['--udp-underlay', 'ipv6']).backendFlags.udpUnderlay, 'ipv6');
  assert.throws(() => parseFlags(['--udp-underlay', 'v6']), (e: unknown) => e instanceof UsageError && /--udp-underlay "v6"/.test((e as Error).message));
});

test('Underlay "ipv6" exits 2 before anything is made: without EnableIPv6, and without an IPv6 address of this host', () => {
  const ctx = {
    config: parseUdpConfig({ Type: 'udp', Underlay: 'ipv6' }), flags: { tunDevice: 'weft-tun' }, nl: {} as never, log: createLogger('silent'),
    network: Prefix.parse('10.244.0.0/16'), underlay: { index: 2, name: 'eth0', v4: '192.0.2.11', mtu: 1500 },
    etcdPrefix: '/coreos.com/network', stateDir: '/nonexistent/weft-state', routeProtocol: 87, track: <T>(x: T) => x,
  };
  const err = (c: object) => {
    try {
      udpBackend.create({ ...ctx, ...c });
    } catch (e) {
      assert.instance(e, ConfigError);
      return (e as Error).message;
    }
    throw new Error('no error');
  };
  assert.is(err({}), 'Backend.Underlay "ipv6" (datagrams to the peers\' PublicIPv6) needs EnableIPv6 and an IPv6Network in the network config');
  assert.is(err({ ipv6Network: NET6 }), 'Backend.Underlay "ipv6" needs an IPv6 address of this host\'s own (--public-ipv6, or a global IPv6 address on eth0)');
  assert.match(err({ flags: { tunDevice: 'weft-tun', udpUnderlay: 'ipv6' }, config: parseUdpConfig({ Type: 'udp' }) }), /^--udp-underlay ipv6 \(datagrams/);
  assert.is(UDP_OVERHEAD6, 48);
});

test('a lease\'s PublicIPv6 comes along in a dual-stack network; sending over IPv6 needs it, naming what the lease has', () => {
  const good = lease('10.244.3.0/24', 'fd00:10:244:3::/64', '{"PublicIP":"192.0.2.13","PublicIPv6":"2001:DB8::13","BackendType":"udp"}');
  assert.equal(parseUdpPeer(good, OWN, NET6, true), { peer: new UdpPeer(Prefix.parse('10.244.3.0/24'), { v4: '192.0.2.13', v6: '2001:DB8::13' }, Prefix.parse('fd00:10:244:3::/64')) });
  assert.equal((parseUdpPeer(good, OWN) as { peer: UdpPeer }).peer.publicIp, { v4: '192.0.2.13' }, 'an IPv4-only network ignores it');
  const none = lease('10.244.4.0/24', 'fd00:10:244:4::/64', '{"PublicIP":"192.0.2.14","PublicIPv6":null,"BackendType":"udp"}');
  assert.equal(parseUdpPeer(none, OWN, NET6, true), { error: 'PublicIPv6 null is not an IPv6 address, and this host sends over the IPv6 underlay (Backend.Underlay "ipv6")' });
  assert.equal((parseUdpPeer(none, OWN, NET6, false) as { peer: UdpPeer }).peer.publicIp, { v4: '192.0.2.14' }, 'an IPv4 sender takes it');
  const me = lease('10.244.6.0/24', undefined, '{"PublicIP":"192.0.2.16","PublicIPv6":"2001:db8:0::11","BackendType":"udp"}');
  assert.equal(parseUdpPeer(me, OWN, NET6, true), { error: 'PublicIPv6 2001:db8:0::11 is this host\'s own address' });
});

test('the table knows a peer by its PublicIP, its PublicIPv6 (any spelling) and its v4-mapped PublicIP; over6 routes go to the PublicIPv6', () => {
  const t = new ForwardingTable([
    { subnet: '10.244.3.0/24', peerIp: '192.0.2.13', port: 8285, peerIp6: '2001:DB8:0::13', over6: true },
    { subnet: 'fd00:10:244:3::/64', peerIp: '192.0.2.13', port: 8285, peerIp6: '2001:DB8:0::13', over6: true },
    { subnet: '10.244.4.0/24', peerIp: '192.0.2.14', port: 8285 },
  ]);
  const subnets = (a: string) => t.routesOf(a)?.map((r) => r.subnet);
  assert.equal(subnets('192.0.2.13'), ['10.244.3.0/24', 'fd00:10:244:3::/64']);
  assert.equal(subnets('2001:db8::13'), ['10.244.3.0/24', 'fd00:10:244:3::/64']);
  assert.equal(subnets('::ffff:192.0.2.13'), ['10.244.3.0/24', 'fd00:10:244:3::/64']);
  assert.equal(subnets('::ffff:192.0.2.14'), ['10.244.4.0/24']);
  assert.is(t.routesOf('2001:db8::14'), undefined);
  assert.is(senderKey('::FFFF:192.0.2.9'), '192.0.2.9');
  assert.is(datagramTarget(t.routes[0]!, true), '2001:db8::13');
  assert.is(datagramTarget(t.routes[2]!, true), '::ffff:192.0.2.14');
  assert.is(datagramTarget(t.routes[2]!, false), '192.0.2.14');
  assert.throws(() => new ForwardingTable([{ subnet: '10.244.3.0/24', peerIp: '192.0.2.13', port: 8285, over6: true }]), /goes over IPv6 but has no peerIp6/);
  assert.throws(() => new ForwardingTable([{ subnet: '10.244.3.0/24', peerIp: '192.0.2.13', port: 8285, peerIp6: '192.0.2.13' }]), /peerIp6 "192.0.2.13" is not an IPv6 address/);
});

test('the saved state: bindIp "::" and routes with peerIp6/over6 read back; over6 without "::" or peerIp6 is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-state6-'));
  try {
    const p = join(dir, 's.json');
    const s: UdpState = {
      version: 1, device: 'weft-tun', engine: 'native', vnetHdr: true, mtu: 1452, bindIp: '::', port: 8285, ownSubnet: '10.244.1.0/24', network: '10.244.0.0/16',
      ownSubnet6: 'fd00:10:244:1::/64', network6: 'fd00:10:244::/48',
      routes: [{ subnet: '10.244.2.0/24', peerIp: '192.0.2.12', port: 8285, peerIp6: '2001:db8::12', over6: true }, { subnet: '10.244.3.0/24', peerIp: '192.0.2.13', port: 8285 }],
      savedAt: '2026-11-28T07:00:00.000Z',
    };
    writeFileSync(p, JSON.stringify(s));
    assert.equal(readUdpState(p), s);
    for (const bad of [{ ...s, bindIp: '2001:db8::11' }, { ...s, routes: [{ ...s.routes[0]!, peerIp6: undefined }] }, { ...s, routes: [{ ...s.routes[0]!, over6: 'yes' }] }, { ...s, bindIp: '192.0.2.11' }]) {
      writeFileSync(p, JSON.stringify(bad));
      assert.throws(() => readUdpState(p), /s\.json: (bindIp|routes)/, JSON.stringify(bad));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
