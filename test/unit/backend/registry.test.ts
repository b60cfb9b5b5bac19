// The backend registry: Backend.Type looked up (no switch), each backend's own
// config parsed by the backend (moved here from the control plane's config
// tests, same messages), and the weftd flags each backend contributes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKENDS } from '../../../backend/builtin.js';
import { BackendRegistry } from '../../../backend/registry.js';
import { ConfigError } from '../../../lib/errors.js';
import { parseNetworkConfig } from '../../../subnet-manager/index.js';

const resolve = (text: string) => BACKENDS.resolve(parseNetworkConfig(text).backend);

test('vxlan, udp, host-gw and wireguard are registered; their defaults are flannel\'s', () => {
  assert.equal(BACKENDS.types(), ['vxlan', 'udp', 'host-gw', 'wireguard']);
  const v = resolve('{"Network":"10.244.0.0/16"}');
  assert.is(v.plugin.type, 'vxlan');
  assert.equal(v.config, { vni: 1, port: 8472, directRouting: false });
  assert.ok(Object.isFrozen(v.config));
  assert.equal(resolve('{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}').config, { port: 8285 });
  // flannel's host-gw has no fields; unknown ones are ignored as flannel (Go's encoding/json) does.
  assert.equal(resolve('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw","Whatever":1}}').config, {});
  assert.equal(resolve('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}').config, { listenPort: 51820, listenPortV6: 51821, persistentKeepalive: 0, mode: 'separate' });
});

test('wireguard: every flannel field is read (case-insensitively); an empty PSK is none', () => {
  const psk = 'FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=';
  const w = resolve(`{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard","listenport":5000,"ListenPortV6":5001,"PSK":"${psk}","PersistentKeepaliveInterval":25,"Mode":"auto","MTU":1400}}`).config;
  assert.equal(w, { listenPort: 5000, listenPortV6: 5001, psk, persistentKeepalive: 25, mode: 'auto', mtu: 1400 });
  assert.equal(resolve('{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard","PSK":""}}').config, { listenPort: 51820, listenPortV6: 51821, persistentKeepalive: 0, mode: 'separate' });
});

test('backend fields match case-insensitively; every field of both backends is read', () => {
  assert.equal(resolve('{"network":"10.5.0.0/16","backend":{"type":"udp","engine":"dgram","offload":false,"mtu":1400,"port":9000}}').config, { port: 9000, mtu: 1400, engine: 'dgram', offload: false });
  const v = resolve('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":4096,"Port":4789,"MTU":1400,"DirectRouting":true}}').config;
  assert.equal(v, { vni: 4096, port: 4789, mtu: 1400, directRouting: true });
  const f = resolve('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","fallback":{"type":"udp","port":9000,"engine":"dgram","offload":false}}}').config;
  assert.equal(f, { vni: 1, port: 8472, directRouting: false, fallback: { type: 'udp', port: 9000, engine: 'dgram', offload: false } });
  assert.equal((resolve('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","Fallback":{"Type":"udp"}}}').config as { fallback: unknown }).fallback, { type: 'udp', port: 8285 });
});

const bad: [string, string][] = [
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"gre"}}', 'Backend.Type "gre" is not supported by this weftd (registered: vxlan, udp, host-gw, wireguard)'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"ipip"}}', 'Backend.Type "ipip" is not supported by this weftd (registered: vxlan, udp, host-gw, wireguard)'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":0}}', 'Backend.VNI must be an integer between 1 and 16777215, got 0'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":70000}}', 'Backend.Port must be an integer between 1 and 65535, got 70000'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","MTU":20}}', 'Backend.MTU must be an integer between 68 and 65535, got 20'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":"yes"}}', 'Backend.DirectRouting must be true or false, got "yes"'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Fallback":"udp"}}', 'Backend.Fallback must be an object such as {"Type": "udp", "Port": 8285}, got "udp"'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Fallback":{"Type":"host-gw"}}}', 'Backend.Fallback.Type must be "udp" (the only fallback path), got "host-gw"'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Fallback":{"Type":"udp","Port":0}}}', 'Backend.Fallback.Port must be an integer between 1 and 65535, got 0'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Fallback":{"Type":"udp","Port":8472}}}', 'Backend.Fallback.Port 8472 is the VXLAN port (Backend.Port): the two paths need two ports'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Fallback":{"Type":"udp","Engine":"fast"}}}', 'Backend.Fallback.Engine must be "native" or "dgram", got "fast"'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Fallback":{"Type":"udp","MTU":1400}}}', 'Backend.Fallback.MTU is not used: the overlay MTU is Backend.MTU, else the smaller of the two paths\' (underlay MTU - 50); got 1400'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Engine":"fast"}}', 'Backend.Engine must be "native" or "dgram", got "fast"'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":0}}', 'Backend.Port must be an integer between 1 and 65535, got 0'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","ListenPort":0}}', 'Backend.ListenPort must be an integer between 1 and 65535, got 0'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","ListenPortV6":"51821"}}', 'Backend.ListenPortV6 must be an integer between 1 and 65535, got "51821"'],
  // flannel decodes it into a time.Duration of seconds: a string such as "25s" fails there too.
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PersistentKeepaliveInterval":"25s"}}', 'Backend.PersistentKeepaliveInterval must be an integer between 0 and 65535, got "25s"'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","Mode":"both"}}', 'Backend.Mode must be "separate" or "auto" or "ipv4" or "ipv6", got "both"'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","MTU":100}}', 'Backend.MTU must be an integer between 148 and 65535, got 100'],
  // A secret: the message says what is wrong, never the value.
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":"c2VjcmV0"}}', 'Backend.PSK must be 32 bytes in base64 (44 characters, as `wg genpsk` writes), got a string of 8 characters that is not one'],
  ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":42}}', 'Backend.PSK must be 32 bytes in base64 (44 characters, as `wg genpsk` writes), got 42'],
];
for (const [text, msg] of bad) {
  test(`rejects ${text}`, () => {
    try {
      resolve(text);
      assert.unreachable('should have thrown');
    } catch (e) {
      assert.instance(e, ConfigError);
      assert.is((e as ConfigError).code, 'EBADCONFIG');
      assert.is((e as Error).message, msg);
    }
  });
}

test('each backend brings its weftd flags; a type or flag registered twice is refused', () => {
  assert.equal(BACKENDS.flags().map((f) => f.name), ['vxlan-device', 'tun-device', 'udp-engine', 'udp-offload', 'udp-underlay', 'udp-uso', 'udp-workers', 'wireguard-device', 'wireguard-device-v6', 'wireguard-key-file', 'wireguard-impl']);
  const fake = { type: 'vxlan', flags: [], parseConfig: () => ({}), create: () => { throw new Error('unused'); } };
  assert.throws(() => new BackendRegistry([fake, fake]), /registered twice/);
  const clash = { ...fake, type: 'other', flags: [{ name: 'x', kind: 'bool' as const, help: '' }] };
  assert.throws(() => new BackendRegistry([clash, { ...clash, type: 'third' }]), /flag --x is already defined/);
});

test.run();
