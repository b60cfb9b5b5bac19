// The wireguard backend as a plug-in: Backend.Type "wireguard".
import { ConfigError } from '../../lib/errors.js';
import { GenlHandle, WireguardNetlink } from '../../netlink/index.js';
import { defineBackend, hostOptions } from '../backend.js';
import { WireguardBackend } from './backend.js';
import { parseWireguardConfig, WG_OVERHEAD, WIREGUARD_FLAGS, type WireguardConfig, type WireguardFlagValues } from './config.js';
import { decodeKey, encodeKey, loadOrCreateKey } from './key.js';
import { chooseProvider } from './choose.js';

export const wireguardBackend = defineBackend<WireguardConfig>({
  type: 'wireguard',
  flags: WIREGUARD_FLAGS,
  parseConfig: parseWireguardConfig,
  create(ctx) {
    const c = ctx.config;
    const f = ctx.flags as unknown as WireguardFlagValues;
    if (c.mode === 'ipv6') {
      throw new ConfigError('Backend.Mode "ipv6" (peers reached at their IPv6 addresses) needs IPv6, which this weftd does not support yet; use "separate" (the default), "auto" or "ipv4"');
    }
    const host = hostOptions(ctx, 'the wireguard backend');
    const key = loadOrCreateKey(f.wireguardKeyFile);
    if (key.created) ctx.log.info('made a new WireGuard key', { keyFile: f.wireguardKeyFile, publicKey: encodeKey(key.publicKey) });
    let genl: WireguardNetlink | undefined;
    const provider = chooseProvider({
      impl: f.wireguardImpl,
      device: f.wireguardDevice,
      nl: ctx.nl,
      log: ctx.log,
      genl: () => (genl ??= new WireguardNetlink(ctx.track(GenlHandle.open()))),
    });
    // flannel: Backend.MTU is the underlay's (default: the interface's); the device carries 80 bytes less.
    const mtu = (c.mtu ?? host.underlay.mtu) - WG_OVERHEAD;
    return new WireguardBackend({
      ...host,
      provider,
      key,
      listenPort: c.listenPort,
      persistentKeepalive: c.persistentKeepalive,
      ...(c.psk ? { psk: decodeKey(c.psk)! } : {}),
      mtu,
    });
  },
});
