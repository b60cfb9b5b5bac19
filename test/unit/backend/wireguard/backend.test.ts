// The wireguard backend's control logic against an in-memory device (a fake
// WgProvider with WireGuard's set semantics) and a tiny kernel: what it puts on
// the device, what it removes (every peer no lease wants), what it leaves alone
// (a roamed endpoint), how a failed change is retried, and how a vanished
// device comes back with every peer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WireguardBackend, type WireguardBackendNetlink } from '../../../../backend/wireguard/backend.js';
import { HANDSHAKE_WAIT_MS } from '../../../../backend/wireguard/device.js';
import { generatePrivateKey, publicKeyOf } from '../../../../backend/wireguard/key.js';
import type { WgProvider } from '../../../../backend/wireguard/provider.js';
import { createLogger } from '../../../../daemon/logger.js';
import { Prefix } from '../../../../lib/ip.js';
import type { Link, Route, WgConfig, WgDevice, WgPeer } from '../../../../netlink/index.js';
import { decodeLeaseAttrs, parseLeaseKeySuffix, type Lease } from '../../../../subnet-manager/lease.js';
import type { LeaseBatch } from '../../../../subnet-manager/lease-table.js';
import { asyncCalls } from '../../helpers/batching-fake.js';

const UNDERLAY = { index: 2, name: 'eth0', v4: '192.0.2.11', v6: '2001:db8::11', mtu: 1500 };

class FakeKernel implements WireguardBackendNetlink {
  private readonly a = asyncCalls(this);
  batch: WireguardBackendNetlink['batch'] = (reqs) => this.a.batch(reqs);
  routeDump: WireguardBackendNetlink['routeDump'] = (f) => this.a.routeDump(f);
  links = new Map<number, Link>();
  addrs: Array<{ index: number; address: string; prefixLen: number }> = [];
  routes: Route[] = [];
  linkByIndex(i: number) { return this.links.get(i); }
  linkSetUp(i: number) { this.links.get(i)!.up = true; }
  addrList(f?: { index?: number }) { return this.addrs.filter((a) => f?.index === undefined || a.index === f.index).map((a) => ({ ...a, family: 4 as const, scope: 0, flags: 0 })); }
  addrReplace(a: { index: number; address: string; prefixLen: number }) { this.addrDel(a); this.addrs.push({ ...a }); }
  addrDel(a: { index: number; address: string }) { this.addrs = this.addrs.filter((x) => !(x.index === a.index && x.address === a.address)); }
  routeList(f?: { index?: number }) { return this.routes.filter((r) => f?.index === undefined || r.index === f.index); }
  routeReplace(r: { dst: string; index?: number; protocol?: number }) {
    this.routes = this.routes.filter((x) => x.dst !== r.dst);
    this.routes.push({ family: 4, dst: r.dst, index: r.index, onlink: false, table: 254, protocol: r.protocol ?? 3, scope: 253, type: 1, flags: 0 });
  }
  routeDel(r: { dst: string }) { this.routes = this.routes.filter((x) => x.dst !== r.dst); }
}

type MutablePeer = { -readonly [K in keyof WgPeer]: WgPeer[K] } & { allowedIps: Prefix[] };

/** A WireGuard device in memory, applying WgConfig as the kernel and wireguard-go do. */
class FakeDevice implements WgProvider {
  readonly impl = 'userspace';
  readonly device = 'weft-wg';
  running = false;
  privateKey?: Buffer;
  listenPort = 0;
  peers = new Map<string, MutablePeer>();
  sets: WgConfig[] = [];
  ups = 0;
  failSets = 0;
  failKey?: string;
  private nextIndex = 10;
  constructor(private readonly k: FakeKernel) {}
  async up(mtu: number): Promise<Link> {
    this.ups++;
    this.running = true;
    this.peers.clear();
    for (const [i, l] of this.k.links) if (l.name === this.device) this.k.links.delete(i);
    const l: Link = { index: this.nextIndex++, name: this.device, kind: 'tun', mtu, flags: 0, up: false };
    this.k.links.set(l.index, l);
    return l;
  }
  alive() { return this.running; }
  async set(c: WgConfig): Promise<void> {
    if (this.failSets > 0) {
      this.failSets--;
      throw new Error('injected');
    }
    if (this.failKey && c.peers?.some((p) => p.publicKey.toString('base64') === this.failKey)) throw new Error('injected for one peer');
    this.sets.push(c);
    if (c.privateKey) this.privateKey = c.privateKey;
    if (c.listenPort !== undefined) this.listenPort = c.listenPort;
    if (c.replacePeers) this.peers.clear();
    for (const p of c.peers ?? []) {
      const k = p.publicKey.toString('base64');
      if (p.remove) { this.peers.delete(k); continue; }
      let cur = this.peers.get(k);
      if (!cur) {
        if (p.updateOnly) continue;
        cur = { publicKey: p.publicKey, persistentKeepalive: 0, lastHandshake: null, rxBytes: 0, txBytes: 0, allowedIps: [] };
        this.peers.set(k, cur);
      }
      if (p.presharedKey) cur.presharedKey = p.presharedKey.equals(Buffer.alloc(32)) ? undefined : p.presharedKey;
      if (p.endpoint) cur.endpoint = p.endpoint;
      if (p.persistentKeepalive !== undefined) cur.persistentKeepalive = p.persistentKeepalive;
      if (p.replaceAllowedIps) cur.allowedIps = [];
      cur.allowedIps.push(...(p.allowedIps ?? []));
    }
  }
  async get(): Promise<WgDevice> {
    return { name: this.device, ...(this.privateKey ? { privateKey: this.privateKey } : {}), listenPort: this.listenPort, fwmark: 0, peers: [...this.peers.values()].map((p) => ({ ...p, allowedIps: [...p.allowedIps] })) };
  }
  async close() { this.running = false; }
  /** "<key> <endpoint> <allowed ips> ka=<n>" per peer, sorted. */
  show(): string[] {
    return [...this.peers.values()].map((p) => `${p.publicKey.toString('base64').slice(0, 6)} ${p.endpoint ? `${p.endpoint.ip}:${p.endpoint.port}` : '(none)'} ${p.allowedIps.join(',')} ka=${p.persistentKeepalive}${p.presharedKey ? ' psk' : ''}`).sort();
  }
}

const keys = new Map<number, string>();
/** A stable public key per host number. */
function pub(n: number): string {
  if (!keys.has(n)) keys.set(n, publicKeyOf(generatePrivateKey()).toString('base64'));
  return keys.get(n)!;
}
function lease(n: number, data: unknown = { PublicKey: pub(n), Port: 51820 }, publicIP = `192.0.2.${20 + n}`): Lease {
  return { subnet: Prefix.parse(`10.244.${n}.0/24`), attrs: { publicIP, publicIPv6: null, backendType: 'wireguard', backendData: data }, key: `/coreos.com/network/subnets/10.244.${n}.0-24` };
}
const snapshot = (...ls: Lease[]): LeaseBatch => ({ snapshot: true, events: ls.map((lease) => ({ type: 'added' as const, lease })) });
const added = (...ls: Lease[]): LeaseBatch => ({ snapshot: false, events: ls.map((lease) => ({ type: 'added' as const, lease })) });
const removed = (...ls: Lease[]): LeaseBatch => ({ snapshot: false, events: ls.map((lease) => ({ type: 'removed' as const, lease })) });

function setup(o: { keepalive?: number; psk?: Buffer; family?: 6; privateKey?: Buffer } = {}) {
  const k = new FakeKernel();
  const dev = new FakeDevice(k);
  const privateKey = o.privateKey ?? generatePrivateKey();
  const key = { privateKey, publicKey: publicKeyOf(privateKey) };
  const b = new WireguardBackend({
    nl: k, log: createLogger('silent'), network: Prefix.parse(o.family ? 'fd00:10:244::/48' : '10.244.0.0/16'), routeProtocol: 87, underlay: UNDERLAY, provider: dev, key,
    listenPort: o.family ? 51821 : 51820, persistentKeepalive: o.keepalive ?? 0, ...(o.psk ? { psk: o.psk } : {}), mtu: 1420, ...(o.family ? { family: o.family } : {}),
  });
  return { k, dev, b, key };
}
const short = (n: number) => pub(n).slice(0, 6);

test('configure: key and port on the device, <subnet>.0/32, up, the network routed through it; the lease data is flannel\'s', async () => {
  const { k, dev, b, key } = setup();
  assert.equal(b.leaseData, { PublicKey: key.publicKey.toString('base64'), Port: 51820 });
  assert.is(b.mtu, 1420);
  await b.configure(lease(3));
  const link = [...k.links.values()][0]!;
  assert.equal([link.name, link.mtu, link.up], ['weft-wg', 1420, true]);
  assert.ok(dev.privateKey!.equals(key.privateKey));
  assert.is(dev.listenPort, 51820);
  assert.equal(k.addrs.map((a) => `${a.address}/${a.prefixLen}`), ['10.244.3.0/32']);
  assert.equal(k.routes.map((r) => `${r.dst} dev ${r.index} proto ${r.protocol}`), [`10.244.0.0/16 dev ${link.index} proto 87`]);
});

test('snapshot: one peer per lease (endpoint PublicIP:Port, allowed IPs its subnet), keepalive off', async () => {
  const { dev, b } = setup();
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5), lease(7, { PublicKey: pub(7) }), lease(8, { PublicKey: 'nope' })));
  assert.equal(dev.show(), [`${short(5)} 192.0.2.25:51820 10.244.5.0/24 ka=0`, `${short(7)} 192.0.2.27:51820 10.244.7.0/24 ka=0`].sort());
  assert.equal(b.stats().wireguard, { impl: 'userspace', device: 'weft-wg', publicKey: b.leaseData.PublicKey, listenPort: 51820 });
  const s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed, s.invalidPeers], [2, 2, 1]);
});

test('a new peer: the end with the lower public key starts the handshake at once (keepalive on, then off); the other end starts one after HANDSHAKE_WAIT_MS only if none came', async () => {
  const [k1, k2, k3] = [0, 1, 2].map(() => publicKeyOf(generatePrivateKey())).sort(Buffer.compare);
  let privateKey: Buffer;
  let tries = 0;
  do {
    privateKey = generatePrivateKey();
    assert.ok(++tries < 10_000);
  } while (!(Buffer.compare(publicKeyOf(privateKey), k2!) > 0 && Buffer.compare(publicKeyOf(privateKey), k3!) < 0));
  const { dev, b } = setup({ privateKey });
  await b.configure(lease(3));
  const b64 = (k: Buffer) => k.toString('base64');
  await b.apply(snapshot(...[k1!, k2!, k3!].map((k, i) => lease(5 + i, { PublicKey: b64(k), Port: 51820 }))));
  const kas = (set: WgConfig | undefined, k: Buffer) => (set?.peers ?? []).filter((p) => p.publicKey.equals(k)).map((p) => `${p.persistentKeepalive}${p.updateOnly ? ' update-only' : ''}`);
  const first = dev.sets.at(-1)!;
  assert.equal(kas(first, k3!), ['0', '1 update-only', '0 update-only'], 'higher key than ours: a keepalive now');
  assert.equal(kas(first, k1!), ['0'], 'lower key: it starts the handshake');
  assert.equal(kas(first, k2!), ['0']);
  // k2 answered (its handshake came); k1 did not.
  dev.peers.get(b64(k2!))!.lastHandshake = new Date();
  const sets = dev.sets.length;
  await new Promise((r) => setTimeout(r, HANDSHAKE_WAIT_MS + 150));
  assert.is(dev.sets.length, sets + 1, 'one more change: the late keepalive');
  const late = dev.sets.at(-1)!;
  assert.equal(kas(late, k1!), ['1 update-only', '0 update-only']);
  assert.equal(kas(late, k2!), []);
  assert.equal(kas(late, k3!), []);
  assert.equal(dev.show().map((l) => l.split(' ').at(-1)), ['ka=0', 'ka=0', 'ka=0']);
  // Nothing more is due.
  await new Promise((r) => setTimeout(r, HANDSHAKE_WAIT_MS + 50));
  assert.is(dev.sets.length, sets + 1);
  await b.close();
});

/** A dual-stack lease as flannel's separate mode writes it (JSON parsed as weft parses every lease). */
function lease6(n: number, v: Record<string, unknown> = {}): Lease {
  const value = {
    PublicIP: `192.0.2.${20 + n}`, PublicIPv6: `2001:db8::${20 + n}`, BackendType: 'wireguard',
    BackendData: { PublicKey: pub(n), Port: 51820 }, BackendV6Data: { PublicKey: pub(n), Port: 51821 }, ...v,
  };
  const key = `/coreos.com/network/subnets/10.244.${n}.0-24&fd00:10:244:${n}::-64`;
  const { subnet, ipv6Subnet } = parseLeaseKeySuffix(key.slice('/coreos.com/network/subnets/'.length));
  return { subnet, ...(ipv6Subnet ? { ipv6Subnet } : {}), attrs: decodeLeaseAttrs(JSON.stringify(value)), key };
}

test('IPv6 device (separate mode): <v6 subnet>::/128, the IPv6 network routed in; peers from BackendV6Data at [PublicIPv6]:Port with their IPv6 subnet; IPv4-only leases are no peers of it', async () => {
  const { k, dev, b, key } = setup({ family: 6 });
  assert.equal(b.leaseData, { PublicKey: key.publicKey.toString('base64'), Port: 51821 });
  await b.configure(lease6(3));
  const link = [...k.links.values()][0]!;
  assert.is(dev.listenPort, 51821);
  assert.equal(k.addrs.map((a) => `${a.address}/${a.prefixLen}`), ['fd00:10:244:3::/128']);
  assert.equal(k.routes.map((r) => `${r.dst} dev ${r.index} proto ${r.protocol}`), [`fd00:10:244::/48 dev ${link.index} proto 87`]);
  await b.apply(snapshot(
    lease6(5),
    lease6(6, { PublicIPv6: '2001:DB8:0:0::26', BackendV6Data: { PublicKey: pub(6) } }), // no Port: our own; the address as wg prints it
    lease(7), // IPv4-only host: nothing for this device, not an error
    lease6(8, { BackendV6Data: { PublicKey: 'nope', Port: 51821 } }),
    lease6(9, { PublicIPv6: null }),
  ));
  assert.equal(dev.show(), [`${short(5)} 2001:db8::25:51821 fd00:10:244:5::/64 ka=0`, `${short(6)} 2001:db8::26:51821 fd00:10:244:6::/64 ka=0`].sort());
  const s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed, s.invalidPeers], [2, 2, 2]);
});

test('keepalive and PSK as configured; no priming needed when keepalive is on', async () => {
  const psk = Buffer.alloc(32, 9);
  const { dev, b } = setup({ keepalive: 25, psk });
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5)));
  assert.equal(dev.show(), [`${short(5)} 192.0.2.25:51820 10.244.5.0/24 ka=25 psk`]);
  assert.is(dev.sets.at(-1)!.peers!.length, 1);
});

test('every full resync removes device peers no lease wants, repairs drift, and leaves a roamed endpoint alone', async () => {
  const { dev, b } = setup();
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5), lease(6)));
  // Someone added a stray peer, the peer of host 5 roamed (NAT), host 6's allowed IPs were changed.
  await dev.set({ peers: [{ publicKey: Buffer.from(pub(99), 'base64'), endpoint: { ip: '203.0.113.9', port: 1 }, allowedIps: [Prefix.parse('10.99.0.0/16')] }] });
  dev.peers.get(pub(5))!.endpoint = { ip: '198.51.100.7', port: 40000 };
  dev.peers.get(pub(6))!.allowedIps = [Prefix.parse('10.244.0.0/16')];
  const before = dev.sets.length;
  await b.resync(true);
  assert.equal(dev.show(), [`${short(5)} 198.51.100.7:40000 10.244.5.0/24 ka=0`, `${short(6)} 192.0.2.26:51820 10.244.6.0/24 ka=0`].sort());
  assert.is(dev.sets.length, before + 1, 'one message with the removal and the repair');
  await b.resync(true);
  assert.is(dev.sets.length, before + 1, 'nothing to do the next time');
});

test('a restarted agent adopts the device: correct peers are not re-sent, a peer of a departed host is removed', async () => {
  const { dev, b, k, key } = setup();
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5), lease(6)));
  const again = new WireguardBackend({ nl: k, log: createLogger('silent'), network: Prefix.parse('10.244.0.0/16'), routeProtocol: 87, underlay: UNDERLAY, provider: dev, key, listenPort: 51820, persistentKeepalive: 0, mtu: 1420 });
  // Adoption of a kernel device: up() keeps the peers.
  dev.up = async () => [...k.links.values()][0]!;
  await again.configure(lease(3));
  const n = dev.sets.length;
  await again.apply(snapshot(lease(5)));
  assert.equal(dev.sets.slice(n).map((c) => c.peers!.map((p) => `${p.publicKey.toString('base64').slice(0, 6)}${p.remove ? ' remove' : ''}`)), [[`${short(6)} remove`]]);
});

test('lease events: added, changed endpoint, key change, removed; hosts sharing a key share one peer', async () => {
  const { dev, b } = setup();
  await b.configure(lease(3));
  await b.apply(snapshot());
  await b.apply(added(lease(5)));
  await b.apply(added(lease(5, { PublicKey: pub(5), Port: 51900 }, '192.0.2.55')));
  assert.equal(dev.show(), [`${short(5)} 192.0.2.55:51900 10.244.5.0/24 ka=0`]);
  await b.apply(added(lease(5, { PublicKey: pub(55) })));
  assert.equal(dev.show(), [`${pub(55).slice(0, 6)} 192.0.2.25:51820 10.244.5.0/24 ka=0`], 'old key removed; no Port means our own');
  await b.apply(added(lease(9, { PublicKey: pub(55) })));
  assert.equal(dev.show(), [`${pub(55).slice(0, 6)} 192.0.2.25:51820 10.244.5.0/24,10.244.9.0/24 ka=0`]);
  await b.apply(removed(lease(5)));
  assert.equal(dev.show(), [`${pub(55).slice(0, 6)} 192.0.2.29:51820 10.244.9.0/24 ka=0`]);
  await b.apply(removed(lease(9)));
  assert.equal(dev.show(), []);
});

test('bad leases are skipped with the reason, the good ones still served', async () => {
  const { dev, b, key } = setup();
  await b.configure(lease(3));
  await b.apply(snapshot(lease(4, null), lease(5, { PublicKey: key.publicKey.toString('base64') }), lease(6, { PublicKey: pub(6), Port: 'x' }), lease(7, undefined, '192.0.2.11'), lease(8)));
  assert.equal(dev.show(), [`${short(8)} 192.0.2.28:51820 10.244.8.0/24 ka=0`]);
  assert.is(b.stats().invalidPeers, 4);
});

test('a failed change is retried every second; one bad peer does not hold up the others', async () => {
  const { dev, b } = setup();
  await b.configure(lease(3));
  dev.failKey = pub(6);
  await b.apply(snapshot(lease(5), lease(6)));
  assert.equal(dev.show(), [`${short(5)} 192.0.2.25:51820 10.244.5.0/24 ka=0`]);
  let s = b.stats();
  assert.equal([s.peersProgrammed, s.kernelErrors], [1, 1]);
  await b.resync(false);
  assert.is(b.stats().peersProgrammed, 1);
  dev.failKey = undefined;
  await b.resync(false);
  s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed], [2, 2]);
  assert.is(dev.peers.size, 2);
});

test('the device gone (wireguard-go exited): made again with key, address, route and every peer', async () => {
  const { dev, b, k } = setup();
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5), lease(6)));
  dev.running = false;
  await b.resync(false);
  assert.is(dev.ups, 2);
  assert.is(b.stats().deviceRecreated, 1);
  assert.is(dev.peers.size, 2);
  const link = [...k.links.values()][0]!;
  assert.equal(k.routes.map((r) => `${r.dst} dev ${r.index} proto ${r.protocol}`), [`10.244.0.0/16 dev ${link.index} proto 87`]);
  assert.ok(k.addrs.some((a) => a.index === link.index && a.address === '10.244.3.0'));
});

test('close stops the provider', async () => {
  const { dev, b } = setup();
  await b.configure(lease(3));
  await b.close();
  assert.is(dev.running, false);
});

test.run();
