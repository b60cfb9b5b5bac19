// The host-gw backend's section of the network config. flannel's host-gw has
// no fields of its own (its MTU is the underlay's), and neither has weft's:
//   {"Type": "host-gw"}
// Unknown keys are ignored, as flannel does.
import { deepFreeze } from '../../lib/config-fields.js';
import type { FlagDef } from '../../lib/flags.js';

export type HostGwConfig = Readonly<Record<string, never>>;

export function parseHostGwConfig(_raw: Readonly<Record<string, unknown>>): HostGwConfig {
  return deepFreeze({});
}

export const HOST_GW_FLAGS: readonly FlagDef[] = [];
