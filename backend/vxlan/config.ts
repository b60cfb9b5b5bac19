// The vxlan backend's section of the network config (flannel's names and
// defaults) and the weftd flags it adds.
//   {"Type": "vxlan", "VNI": 1, "Port": 8472, "MTU": 1450, "DirectRouting": false}
import { boolField, deepFreeze, intField } from '../../lib/config-fields.js';
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
}

export function parseVxlanConfig(raw: Readonly<Record<string, unknown>>): VxlanConfig {
  const mtu = intField(raw, 'MTU', 'Backend.MTU', 68, 65535);
  return deepFreeze({
    vni: intField(raw, 'VNI', 'Backend.VNI', 1, 0xffffff, 1),
    port: intField(raw, 'Port', 'Backend.Port', 1, 65535, 8472),
    ...(mtu !== undefined ? { mtu } : {}),
    directRouting: boolField(raw, 'DirectRouting', 'Backend.DirectRouting', false),
  });
}

export const VXLAN_FLAGS: readonly FlagDef[] = [
  { name: 'vxlan-device', key: 'vxlanDevice', kind: 'string', check: ifaceName, help: 'name of the VXLAN device (default: weft.<VNI>)' },
];
