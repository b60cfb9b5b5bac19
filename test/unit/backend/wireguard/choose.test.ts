// Which WireGuard device a host gets (--wireguard-impl), against a fake
// kernel: the kernel's when it has WireGuard, else wireguard-go; asking for
// what the host cannot give is a ConfigError saying why. Also the plug-in's
// refusal of Mode "ipv6" before anything is made.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseProvider } from '../../../../backend/wireguard/choose.js';
import { KernelWireguard, type ProviderNetlink } from '../../../../backend/wireguard/provider.js';
import { wireguardBackend } from '../../../../backend/wireguard/plugin.js';
import { WireguardGo } from '../../../../backend/wireguard/wireguard-go.js';
import { createLogger } from '../../../../daemon/logger.js';
import { ConfigError } from '../../../../lib/errors.js';
import { Prefix } from '../../../../lib/ip.js';
import { NetlinkError, type Link, type WireguardNetlink } from '../../../../netlink/index.js';

class FakeNl implements ProviderNetlink {
  links: Link[] = [];
  constructor(private readonly kernelHasWireguard: boolean) {}
  linkByName(n: string) { return this.links.find((l) => l.name === n); }
  linkAdd(s: Parameters<ProviderNetlink['linkAdd']>[0]): Link {
    if (s.kind === 'wireguard' && !this.kernelHasWireguard) throw new NetlinkError(`link add ${s.name} type wireguard`, 95, { extAck: 'Unknown device type' });
    const l: Link = { index: 10 + this.links.length, name: s.name, kind: s.kind, mtu: s.mtu ?? 1420, flags: 0, up: false };
    this.links.push(l);
    return l;
  }
  linkDel(x: string | number) { this.links = this.links.filter((l) => l.index !== x && l.name !== x); }
  linkSetMtu(i: number, mtu: number) { this.links.find((l) => l.index === i)!.mtu = mtu; }
}

/** The genl family shows up once the module is loaded, i.e. once a wireguard link exists. */
const genl = (nl: FakeNl, loaded = false) => () => ({ familyId: () => (loaded || nl.links.some((l) => l.kind === 'wireguard') ? 27 : undefined) }) as unknown as WireguardNetlink;

function withPath(fn: (path: string) => void, programs: string[] = []): void {
  const dir = mkdtempSync(join(tmpdir(), 'weft-path-'));
  try {
    for (const p of programs) {
      writeFileSync(join(dir, p), '#!/bin/sh\nexit 0\n');
      chmodSync(join(dir, p), 0o755);
    }
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = { device: 'weft-wg', log: createLogger('silent') };

test('auto: the kernel\'s device when a wireguard link can be made (the module loads); it is the real device, kept', () => {
  const nl = new FakeNl(true);
  const p = chooseProvider({ ...base, impl: 'auto', nl, genl: genl(nl), path: '' });
  assert.instance(p, KernelWireguard);
  assert.equal(nl.links.map((l) => `${l.name} ${l.kind}`), ['weft-wg wireguard']);
});

test('auto without kernel WireGuard: wireguard-go (with setpriv for the parent-death signal)', () => withPath((path) => {
  const nl = new FakeNl(false);
  const p = chooseProvider({ ...base, impl: 'auto', nl, genl: genl(nl), path });
  assert.instance(p, WireguardGo);
  assert.is(p.impl, 'userspace');
  assert.equal(nl.links, [], 'nothing made');
}, ['wireguard-go', 'setpriv']));

test('what the host cannot give: a ConfigError saying why', () => withPath((path) => {
  const nl = new FakeNl(false);
  const msg = (impl: 'kernel' | 'auto' | 'userspace') => {
    try {
      chooseProvider({ ...base, impl, nl, genl: genl(nl), path });
    } catch (e) {
      assert.instance(e, ConfigError);
      return (e as Error).message;
    }
    throw new Error('no error');
  };
  assert.is(msg('kernel'), '--wireguard-impl kernel: this kernel has no WireGuard (ip link add weft-wg type wireguard: Unknown device type); use --wireguard-impl userspace or auto');
  assert.match(msg('auto'), /^ip link add weft-wg type wireguard: Unknown device type; the userspace WireGuard needs wireguard-go on PATH \(Debian: apt-get install wireguard-go\)$/);
  assert.match(msg('userspace'), /^the userspace WireGuard needs wireguard-go on PATH/);
}));

test('the kernel device: adopted as it is, MTU corrected; a device of another kind with its name replaced', async () => {
  const nl = new FakeNl(true);
  const k = new KernelWireguard('weft-wg', nl, {} as WireguardNetlink, createLogger('silent'));
  const made = await k.up(1420);
  assert.is((await k.up(1400)).index, made.index);
  assert.is(nl.links[0]!.mtu, 1400);
  nl.links = [{ index: 3, name: 'weft-wg', kind: 'dummy', mtu: 1500, flags: 0, up: true }];
  const l = await k.up(1420);
  assert.equal(nl.links.map((x) => `${x.index} ${x.kind}`), [`${l.index} wireguard`]);
});

test('Mode "ipv6" exits 2 before anything is made', () => {
  const ctx = { config: { listenPort: 51820, listenPortV6: 51821, persistentKeepalive: 0, mode: 'ipv6' as const }, flags: {}, nl: {} as never, log: createLogger('silent'), network: Prefix.parse('10.244.0.0/16'), underlay: { index: 2, name: 'eth0', v4: '192.0.2.11', mtu: 1500 }, etcdPrefix: '/coreos.com/network', stateDir: '/nonexistent/weft-state', routeProtocol: 87, track: <T>(x: T) => x };
  assert.throws(() => wireguardBackend.create(ctx), (e: unknown) => e instanceof ConfigError && /Backend.Mode "ipv6"/.test((e as Error).message));
});

test.run();
