// The vxlan backend's section of the network config (flannel's names and
// defaults) and the weftd flags it adds.
//   {"Type": "vxlan", "VNI": 1, "Port": 8472, "MTU": 1450, "DirectRouting": false}
// weft's extension, which flannel ignores (backend/fallback/):
//   "Fallback": {"Type": "udp", "Port": 8285, "Engine": "native", "Offload": true}
import { boolField, deepFreeze, field, intField } from '../../lib/config-fields.js';
import { parseFallbackConfig, type FallbackConfig } from '../fallback/config.js';
import { ConfigError } from '../../lib/errors.js';
import { ifaceName, type FlagDef } from '../../lib/flags.js';

export interface VxlanConfig {
  /** VXLAN network id (Backend.VNI, default 1). */
  readonly vni: number;
  /** UDP destination port (Backend.Port, default 8472 as flannel; the kernel's default is 4789). */
  readonly port: number;
  /** Backend.MTU; default: underlay MTU - 50. */
  readonly mtu?: number;
  /** Backend.DirectRouting: a peer on this host's L2 segment is routed directly (no VXLAN), as flannel does. */
  readonly directRouting: boolean;
  /** Backend.Fallback (weft only): per peer, the userspace udp path where VXLAN does not get through. */
  readonly fallback?: FallbackConfig;
}

export function parseVxlanConfig(raw: Readonly<Record<string, unknown>>): VxlanConfig {
  const mtu = intField(raw, 'MTU', 'Backend.MTU', 68, 65535);
  const fallback = parseFallbackConfig(field(raw, 'Fallback'));
  const port = intField(raw, 'Port', 'Backend.Port', 1, 65535, 8472);
  if (fallback && fallback.port === port) throw new ConfigError(`Backend.Fallback.Port ${port} is the VXLAN port (Backend.Port): the two paths need two ports`);
  return deepFreeze({
    vni: intField(raw, 'VNI', 'Backend.VNI', 1, 0xffffff, 1),
    port,
    ...(mtu !== undefined ? { mtu } : {}),
    directRouting: boolField(raw, 'DirectRouting', 'Backend.DirectRouting', false),
    ...(fallback ? { fallback } : {}),
  });
}

export const VXLAN_FLAGS: readonly FlagDef[] = [
  { name: 'vxlan-device', key: 'vxlanDevice', kind: 'string', check: ifaceName, help: 'name of the VXLAN device (default: weft.<VNI>)' },
];
