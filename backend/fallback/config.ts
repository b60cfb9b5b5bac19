// Backend.Fallback of a vxlan network config (weft's extension; flannel
// ignores the key):
//   {"Type": "vxlan", "Fallback": {"Type": "udp", "Port": 8285, "Engine": "native", "Offload": true}}
// Type must be "udp" (the only fallback path); Port is the udp path's port on
// the underlay (and the probes' port on the VTEP address); Engine and Offload
// as in the udp backend's config (--udp-engine and --udp-offload win).
import { ConfigError } from '../../lib/errors.js';
import { absent, boolField, choiceField, deepFreeze, field, intField, isObject, show } from '../../lib/config-fields.js';
import type { UdpEngineName } from '../udp/engine.js';

export interface FallbackConfig {
  readonly type: 'udp';
  /** Fallback.Port: the udp path's UDP port (default 8285, flannel's udp port). */
  readonly port: number;
  readonly engine?: UdpEngineName;
  readonly offload?: boolean;
}

const ENGINES: readonly UdpEngineName[] = ['native', 'dgram'];

/** undefined when the key is absent or null; a ConfigError naming Backend.Fallback.<field> for a bad value. */
export function parseFallbackConfig(raw: unknown): FallbackConfig | undefined {
  if (absent(raw)) return undefined;
  if (!isObject(raw)) throw new ConfigError(`Backend.Fallback must be an object such as {"Type": "udp", "Port": 8285}, got ${show(raw)}`);
  const type = field(raw, 'Type');
  if (type !== 'udp') throw new ConfigError(`Backend.Fallback.Type must be "udp" (the only fallback path), got ${show(type)}`);
  if (!absent(field(raw, 'MTU'))) {
    throw new ConfigError(`Backend.Fallback.MTU is not used: the overlay MTU is Backend.MTU, else the smaller of the two paths' (underlay MTU - 50); got ${show(field(raw, 'MTU'))}`);
  }
  const engine = choiceField(raw, 'Engine', 'Backend.Fallback.Engine', ENGINES);
  const offload = boolField(raw, 'Offload', 'Backend.Fallback.Offload');
  return deepFreeze({
    type: 'udp' as const,
    port: intField(raw, 'Port', 'Backend.Fallback.Port', 1, 65535, 8285),
    ...(engine !== undefined ? { engine } : {}),
    ...(offload !== undefined ? { offload } : {}),
  });
}
