// The wireguard backend as a plug-in: Backend.Type "wireguard". A dual-stack
// network (EnableIPv6) gets flannel's separate mode, the default: a second
// device, weft-wg-v6 (flannel-wg-v6), listening on ListenPortV6 with the same
// key, its peers the leases' IPv6 subnets at [PublicIPv6]:<BackendV6Data.Port>.
import { ConfigError } from '../../lib/errors.js';
import { GenlHandle, WireguardNetlink } from '../../netlink/index.js';
import { defineBackend, hostOptions } from '../backend.js';
import { DualStackBackend } from '../dual-stack.js';
import { WireguardBackend } from './backend.js';
import { parseWireguardConfig, WG_OVERHEAD, WIREGUARD_FLAGS, type WireguardConfig, type WireguardFlagValues } from './config.js';
import { decodeKey, encodeKey, loadOrCreateKey } from './key.js';
import { chooseProvider } from './choose.js';

export const wireguardBackend = defineBackend<WireguardConfig>({
  type: 'wireguard',
  dualStack: true,
  flags: WIREGUARD_FLAGS,
  parseConfig: parseWireguardConfig,
  create(ctx) {
    const c = ctx.config;
    const f = ctx.flags as unknown as WireguardFlagValues;
    if (c.mode === 'ipv6' && !ctx.ipv6Network) {
      throw new ConfigError('Backend.Mode "ipv6" (peers reached at their IPv6 addresses) needs EnableIPv6 and an IPv6Network in the network config');
    }
    if (c.mode !== 'separate' && ctx.ipv6Network) {
      // flannel's single-device modes publish BackendV6Data.Port = ListenPortV6 that nothing listens on; weft runs separate mode only.
      throw new ConfigError(`Backend.Mode ${JSON.stringify(c.mode)} (one device for both families) is not supported by this weftd; a dual-stack network runs "separate" (the default: weft-wg and weft-wg-v6)`);
    }
    const host = hostOptions(ctx, 'the wireguard backend');
    const key = loadOrCreateKey(f.wireguardKeyFile);
    if (key.created) ctx.log.info('made a new WireGuard key', { keyFile: f.wireguardKeyFile, publicKey: encodeKey(key.publicKey) });
    let genl: WireguardNetlink | undefined;
    const provider = (device: string, log = ctx.log) => chooseProvider({
      impl: f.wireguardImpl,
      device,
      nl: ctx.nl,
      log,
      genl: () => (genl ??= new WireguardNetlink(ctx.track(GenlHandle.open()))),
    });
    // flannel: Backend.MTU is the underlay's (default: the interface's); the device carries 80 bytes less (both families).
    const mtu = (c.mtu ?? host.underlay.mtu) - WG_OVERHEAD;
    const shared = {
      ...host,
      key,
      persistentKeepalive: c.persistentKeepalive,
      ...(c.psk ? { psk: decodeKey(c.psk)! } : {}),
      mtu,
    };
    const v4 = new WireguardBackend({ ...shared, provider: provider(f.wireguardDevice), listenPort: c.listenPort });
    if (!ctx.ipv6Network || !ctx.underlay.v6) return v4;
    if (f.wireguardDeviceV6 === f.wireguardDevice) throw new ConfigError(`--wireguard-device-v6 ${f.wireguardDeviceV6} is also the IPv4 device's name (--wireguard-device); the two need their own`);
    if (c.listenPortV6 === c.listenPort) throw new ConfigError(`Backend.ListenPortV6 ${c.listenPortV6} is also Backend.ListenPort; the IPv6 device needs its own port`);
    const log6 = ctx.log.child({ family: 6 });
    const v6 = new WireguardBackend({
      ...shared, family: 6, network: ctx.ipv6Network, log: log6,
      provider: provider(f.wireguardDeviceV6, log6), listenPort: c.listenPortV6,
    });
    return new DualStackBackend(v4, v6);
  },
});
