// The wireguard backend's section of the network config (flannel's names,
// defaults and meanings) and the weftd flags it adds.
//   {"Type": "wireguard", "ListenPort": 51820, "ListenPortV6": 51821, "PSK": "<wg genpsk>",
//    "PersistentKeepaliveInterval": 25, "Mode": "separate", "MTU": 1500}
// As in flannel, MTU is the *underlay's* MTU; the device gets MTU - 80.
import { choiceField, deepFreeze, field, intField, show } from '../../lib/config-fields.js';
import { ConfigError } from '../../lib/errors.js';
import { ifaceName, type FlagDef } from '../../lib/flags.js';
import { decodeKey } from './key.js';

export const WG_MODES = ['separate', 'auto', 'ipv4', 'ipv6'] as const;
export type WireguardMode = (typeof WG_MODES)[number];

export const WG_IMPLS = ['auto', 'kernel', 'userspace'] as const;
export type WireguardImpl = (typeof WG_IMPLS)[number];

/**
 * flannel's overhead for both families: outer IPv6 header 40 (20 for IPv4,
 * but flannel counts 40 either way) + UDP 8 + type 4 + key index 4 + nonce 8
 * + auth tag 16. A network shared with flannel nodes needs the same figure.
 */
export const WG_OVERHEAD = 80;

export interface WireguardConfig {
  /** UDP port of the IPv4 device (Backend.ListenPort, 51820), published in the lease. */
  readonly listenPort: number;
  /** UDP port of the IPv6 device in separate mode (Backend.ListenPortV6, 51821), published in BackendV6Data. */
  readonly listenPortV6: number;
  /** Backend.PSK: base64 of 32 bytes (`wg genpsk`), the same on every host; unset: none. */
  readonly psk?: string;
  /** Backend.PersistentKeepaliveInterval in seconds; 0 = off. */
  readonly persistentKeepalive: number;
  readonly mode: WireguardMode;
  /** Backend.MTU: the underlay MTU flannel subtracts the overhead from; default the underlay interface's. */
  readonly mtu?: number;
}

export function parseWireguardConfig(raw: Readonly<Record<string, unknown>>): WireguardConfig {
  const psk = field(raw, 'PSK');
  if (psk !== undefined && psk !== null && psk !== '' && (typeof psk !== 'string' || !decodeKey(psk))) {
    // The value is a secret: say what is wrong with it, not what it is.
    throw new ConfigError(`Backend.PSK must be 32 bytes in base64 (44 characters, as \`wg genpsk\` writes), got ${typeof psk === 'string' ? `a string of ${psk.length} characters that is not one` : show(psk)}`);
  }
  const mtu = intField(raw, 'MTU', 'Backend.MTU', 68 + WG_OVERHEAD, 65535);
  return deepFreeze({
    listenPort: intField(raw, 'ListenPort', 'Backend.ListenPort', 1, 65535, 51820),
    listenPortV6: intField(raw, 'ListenPortV6', 'Backend.ListenPortV6', 1, 65535, 51821),
    ...(typeof psk === 'string' && psk !== '' ? { psk } : {}),
    persistentKeepalive: intField(raw, 'PersistentKeepaliveInterval', 'Backend.PersistentKeepaliveInterval', 0, 65535, 0),
    mode: choiceField(raw, 'Mode', 'Backend.Mode', WG_MODES) ?? 'separate',
    ...(mtu !== undefined ? { mtu } : {}),
  });
}

const absolutePath = (v: string) => (v.startsWith('/') ? undefined : 'must be an absolute path');

export const DEFAULT_KEY_FILE = '/var/lib/weft/wireguard.key';

export const WIREGUARD_FLAGS: readonly FlagDef[] = [
  { name: 'wireguard-device', key: 'wireguardDevice', kind: 'string', def: 'weft-wg', check: ifaceName, help: 'name of the wireguard backend\'s device' },
  { name: 'wireguard-device-v6', key: 'wireguardDeviceV6', kind: 'string', def: 'weft-wg-v6', check: ifaceName, help: 'name of the wireguard backend\'s IPv6 device (a dual-stack network)' },
  { name: 'wireguard-key-file', key: 'wireguardKeyFile', kind: 'string', def: DEFAULT_KEY_FILE, check: absolutePath, help: 'this host\'s WireGuard private key (mode 0600; made on first start)' },
  { name: 'wireguard-impl', key: 'wireguardImpl', kind: 'string', def: 'auto', choices: WG_IMPLS, help: 'WireGuard device: kernel, userspace (wireguard-go), or auto (kernel when it has WireGuard)' },
];

/** The wireguard flags' values as parsed by weftd's flag table. */
export interface WireguardFlagValues {
  readonly wireguardDevice: string;
  readonly wireguardDeviceV6: string;
  readonly wireguardKeyFile: string;
  readonly wireguardImpl: WireguardImpl;
}
