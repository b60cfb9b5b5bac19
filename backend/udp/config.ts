// The udp backend's section of the network config and the weftd flags it adds.
//   {"Type": "udp", "Port": 8285, "Engine": "native", "Offload": true, "MTU": 1472, "Underlay": "ipv4"}
// A flag, when given, wins over the config (--udp-engine over Engine, --udp-offload over Offload,
// --udp-underlay over Underlay).
import { availableParallelism } from 'node:os';
import { boolField, choiceField, deepFreeze, intField } from '../../lib/config-fields.js';
import { ifaceName, type FlagDef } from '../../lib/flags.js';
import type { UdpEngineName } from './engine.js';

export const UDP_ENGINES: readonly UdpEngineName[] = ['native', 'dgram'];
export type UdpUnderlay = 'ipv4' | 'ipv6';
export const UDP_UNDERLAYS: readonly UdpUnderlay[] = ['ipv4', 'ipv6'];
/** The native engine's limit (native/forwarder.h kMaxWorkers). */
export const MAX_UDP_WORKERS = 64;
/** --udp-workers unset: one worker per CPU, at most this many (see defaultUdpWorkers). */
export const DEFAULT_MAX_UDP_WORKERS = 8;

/**
 * The native engine's workers when --udp-workers is unset: one per CPU, at most 8. A flow
 * stays on one worker, so more workers only carry more flows at once; since each worker
 * sends from a port of its own, every one keeps UDP GRO. On the 2-CPU bench machine 2
 * workers carried one TCP stream about as fast as 1 and four streams faster in two partial
 * runs, both slower in the two full runs (README, udp backend): there two lab hosts share
 * the two CPUs, so a second worker has no idle core. The default is for a host's own CPUs.
 * Beyond 8, each worker's ~2.5 MiB of buffers and two threads would buy flows in parallel
 * that one host's link rarely carries.
 */
export function defaultUdpWorkers(cpus = availableParallelism()): number {
  return Math.max(1, Math.min(cpus, DEFAULT_MAX_UDP_WORKERS));
}

export interface UdpConfig {
  /** UDP port of the wire format (Backend.Port, default 8285 as flannel's udp backend). */
  readonly port: number;
  /** Backend.MTU; default: underlay MTU - 28. */
  readonly mtu?: number;
  /** Backend.Engine; unset: --udp-engine, else native. */
  readonly engine?: UdpEngineName;
  /** Backend.Offload; unset: --udp-offload, else true. */
  readonly offload?: boolean;
  /**
   * Backend.Underlay: the family this host sends its datagrams over, to the peers' PublicIP
   * ("ipv4", the default) or PublicIPv6 ("ipv6": needs EnableIPv6). Either way a dual-stack
   * host receives both. Absent: "ipv4".
   */
  readonly underlay?: UdpUnderlay;
}

export function parseUdpConfig(raw: Readonly<Record<string, unknown>>): UdpConfig {
  const mtu = intField(raw, 'MTU', 'Backend.MTU', 68, 65535);
  const engine = choiceField(raw, 'Engine', 'Backend.Engine', UDP_ENGINES);
  const offload = boolField(raw, 'Offload', 'Backend.Offload');
  const underlay = choiceField(raw, 'Underlay', 'Backend.Underlay', UDP_UNDERLAYS);
  return deepFreeze({
    port: intField(raw, 'Port', 'Backend.Port', 1, 65535, 8285),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(engine !== undefined ? { engine } : {}),
    ...(offload !== undefined ? { offload } : {}),
    ...(underlay !== undefined ? { underlay } : {}),
  });
}

export const UDP_FLAGS: readonly FlagDef[] = [
  { name: 'tun-device', key: 'tunDevice', kind: 'string', def: 'weft-tun', check: ifaceName, help: 'name of the udp backend\'s TUN device' },
  { name: 'udp-engine', key: 'udpEngine', kind: 'string', choices: UDP_ENGINES, help: 'udp backend forwarding engine, native or dgram (default: Backend.Engine, else native)' },
  { name: 'udp-offload', key: 'udpOffload', kind: 'bool', help: 'native udp engine: TUN TSO/GSO and UDP GSO/GRO offloads (default: Backend.Offload, else true); --udp-offload=false for one packet per datagram and syscall slot' },
  { name: 'udp-underlay', key: 'udpUnderlay', kind: 'string', choices: UDP_UNDERLAYS, help: 'udp backend: the underlay family this host sends over, ipv4 (to the peers\' PublicIP) or ipv6 (to their PublicIPv6; needs EnableIPv6) (default: Backend.Underlay, else ipv4)' },
  {
    name: 'udp-uso', key: 'udpUso', kind: 'bool',
    help: 'native udp engine with offloads: UDP segmentation offload on the TUN (TUN_F_USO4/6, Linux >= 6.2: the inner UDP datagrams of one flow written as one super-packet) ' +
      'where the kernel takes it (default true); --udp-uso=false leaves it off',
  },
  { name: 'udp-workers', key: 'udpWorkers', kind: 'int', min: 1, max: MAX_UDP_WORKERS, help: 'native udp engine: forwarding thread pairs, one TUN queue and UDP socket each (default: one per CPU, at most 8; worker k sends from Backend.Port + k; see the README on flows across workers)' },
];

/** The udp flags' values as parsed by weftd's flag table. */
export interface UdpFlagValues {
  readonly tunDevice: string;
  readonly udpEngine?: UdpEngineName;
  readonly udpOffload?: boolean;
  readonly udpUso?: boolean;
  readonly udpWorkers?: number;
  readonly udpUnderlay?: UdpUnderlay;
}

export interface UdpSettings {
  readonly engine: UdpEngineName;
  readonly offload: boolean;
  /** With offload: offer USO to the TUN (--udp-uso, default true). */
  readonly uso: boolean;
  readonly device: string;
  /** Native engine: worker thread pairs and TUN queues; the dgram engine uses one. */
  readonly workers: number;
  readonly underlay: UdpUnderlay;
}

/** What runs: the flag wins over the network config, which wins over the default. */
export function effectiveUdpSettings(c: UdpConfig, f: UdpFlagValues): UdpSettings {
  const engine = f.udpEngine ?? c.engine ?? 'native';
  const workers = engine === 'native' ? f.udpWorkers ?? defaultUdpWorkers() : 1;
  return { engine, offload: f.udpOffload ?? c.offload ?? true, uso: f.udpUso ?? true, device: f.tunDevice, workers, underlay: f.udpUnderlay ?? c.underlay ?? 'ipv4' };
}
