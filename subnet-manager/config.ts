// The network config stored at <prefix>/config, parsed once into a frozen,
// typed object. Rules follow flannel's pkg/subnet/config.go so that a config a
// flannel node accepts is accepted here too (the config is shared by both):
// - keys match case-insensitively, as Go's encoding/json does; unknown keys are ignored;
// - Network host bits are cleared silently (Go's net.ParseCIDR does the same);
// - SubnetLen defaults to 24 when Network is /22 or shorter, else prefix+2;
// - SubnetMin/SubnetMax default to the second/last subnet, must be aligned.
import { ConfigError } from './errors.js';
import { Prefix, formatIpNumber, ipNumber, isIp } from '../lib/ip.js';

export type BackendType = 'vxlan' | 'udp' | 'host-gw';
export const BACKEND_TYPES: readonly BackendType[] = ['vxlan', 'udp', 'host-gw'];

export interface BackendConfig {
  readonly type: BackendType;
  /** VXLAN network id; 0 for backends without one. */
  readonly vni: number;
  /** UDP port of the encapsulation (vxlan 8472, udp 8285); 0 for host-gw. */
  readonly port: number;
  readonly mtu?: number;
  readonly directRouting: boolean;
  /** udp backend only: forwarding engine. */
  readonly engine?: 'native' | 'dgram';
  /** The Backend object as written, for backend-specific extras. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface NetworkConfig {
  /** IPv4. */
  readonly network: Prefix;
  readonly subnetLen: number;
  /** First allocatable subnet (prefix subnetLen). */
  readonly subnetMin: Prefix;
  /** Last allocatable subnet (prefix subnetLen). */
  readonly subnetMax: Prefix;
  readonly enableIPv6: boolean;
  readonly ipv6Network?: Prefix;
  readonly ipv6SubnetLen?: number;
  readonly backend: BackendConfig;
}

type Obj = Record<string, unknown>;

const show = (v: unknown): string => {
  if (v === undefined) return 'undefined';
  try { return JSON.stringify(v) ?? String(v); } catch { return String(v); }
};

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Go's encoding/json: an exact key match wins, else the first case-insensitive one. */
function field(o: Obj, name: string): unknown {
  if (Object.hasOwn(o, name)) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

function intField(o: Obj, name: string, label: string, min: number, max: number, dflt: number): number;
function intField(o: Obj, name: string, label: string, min: number, max: number, dflt?: undefined): number | undefined;
function intField(o: Obj, name: string, label: string, min: number, max: number, dflt?: number): number | undefined {
  const v = field(o, name);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${label} must be an integer between ${min} and ${max}, got ${show(v)}`);
  }
  return v;
}

function boolField(o: Obj, name: string, label: string, dflt: boolean): boolean {
  const v = field(o, name);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(`${label} must be true or false, got ${show(v)}`);
  return v;
}

function subnetBound(o: Obj, name: 'SubnetMin' | 'SubnetMax', network: Prefix, subnetLen: number, dflt: bigint): Prefix {
  const v = field(o, name);
  let ip = dflt;
  if (v !== undefined && v !== null && v !== '') {
    if (typeof v !== 'string') throw new ConfigError(`${name} must be a string like "${formatIpNumber(dflt, 4)}", got ${show(v)}`);
    if (!isIp(v, 4)) throw new ConfigError(`${name} ${show(v)} is not a valid IPv4 address`);
    ip = ipNumber(v).n;
    if (!network.contains(ip)) throw new ConfigError(`${name} ${v} is not inside Network ${network}`);
    if (Prefix.containing(v, subnetLen).ip !== ip) throw new ConfigError(`${name} ${v} is not on a /${subnetLen} boundary`);
  }
  return new Prefix(4, ip, subnetLen);
}

function parseBackend(v: unknown): BackendConfig {
  if (v === undefined || v === null) v = { Type: 'vxlan' };
  if (!isObj(v)) throw new ConfigError(`Backend must be an object like {"Type":"vxlan"}, got ${show(v)}`);
  const t = field(v, 'Type') ?? 'vxlan';
  if (typeof t !== 'string') throw new ConfigError(`Backend.Type must be a string, got ${show(t)}`);
  if (!(BACKEND_TYPES as readonly string[]).includes(t)) {
    throw new ConfigError(`Backend.Type ${show(t)} is not supported (supported: ${BACKEND_TYPES.join(', ')})`);
  }
  const type = t as BackendType;
  const raw = deepFreeze(structuredClone(v));
  const mtu = intField(v, 'MTU', 'Backend.MTU', 68, 65535);
  const directRouting = boolField(v, 'DirectRouting', 'Backend.DirectRouting', false);
  switch (type) {
    case 'vxlan': {
      const vni = intField(v, 'VNI', 'Backend.VNI', 1, 0xffffff, 1);
      const port = intField(v, 'Port', 'Backend.Port', 1, 65535, 8472);
      return { type, vni, port, ...(mtu !== undefined ? { mtu } : {}), directRouting, raw };
    }
    case 'udp': {
      const port = intField(v, 'Port', 'Backend.Port', 1, 65535, 8285);
      const e = field(v, 'Engine');
      if (e !== undefined && e !== null && e !== 'native' && e !== 'dgram') {
        throw new ConfigError(`Backend.Engine must be "native" or "dgram", got ${show(e)}`);
      }
      return { type, vni: 0, port, ...(mtu !== undefined ? { mtu } : {}), directRouting, ...(e ? { engine: e as 'native' | 'dgram' } : {}), raw };
    }
    case 'host-gw':
      return { type, vni: 0, port: 0, ...(mtu !== undefined ? { mtu } : {}), directRouting, raw };
  }
}

/** Parses and validates the JSON network config. Throws ConfigError quoting the bad value. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`network config is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(doc)) throw new ConfigError(`network config must be a JSON object, got ${show(doc)}`);

  const netV = field(doc, 'Network');
  if (netV === undefined || netV === null || netV === '') throw new ConfigError('Network is required, e.g. "10.244.0.0/16"');
  if (typeof netV !== 'string') throw new ConfigError(`Network must be a string like "10.244.0.0/16", got ${show(netV)}`);
  let network: Prefix;
  try { network = Prefix.parse(netV, { mask: true, family: 4 }); } catch { throw new ConfigError(`Network ${show(netV)} is not a valid IPv4 CIDR like "10.244.0.0/16"`); }

  const slV = field(doc, 'SubnetLen');
  let subnetLen: number;
  if (slV === undefined || slV === null || slV === 0) {
    if (network.prefixLen > 28) throw new ConfigError(`Network ${network} is too small: the minimum useful prefix is /28`);
    subnetLen = network.prefixLen <= 22 ? 24 : network.prefixLen + 2;
  } else {
    if (typeof slV !== 'number' || !Number.isInteger(slV)) throw new ConfigError(`SubnetLen must be an integer, got ${show(slV)}`);
    if (slV > 30) throw new ConfigError(`SubnetLen must be at most 30, got ${slV}`);
    if (slV <= network.prefixLen) throw new ConfigError(`SubnetLen must be longer than the Network prefix /${network.prefixLen}, got ${slV}`);
    subnetLen = slV;
  }

  const subnetSize = 1n << BigInt(32 - subnetLen);
  const subnetMin = subnetBound(doc, 'SubnetMin', network, subnetLen, network.ip + subnetSize);
  const subnetMax = subnetBound(doc, 'SubnetMax', network, subnetLen, network.last + 1n - subnetSize);
  if (subnetMin.ip > subnetMax.ip) {
    throw new ConfigError(`SubnetMin ${subnetMin.networkAddress} is greater than SubnetMax ${subnetMax.networkAddress}`);
  }

  const enableIPv6 = boolField(doc, 'EnableIPv6', 'EnableIPv6', false);
  let ipv6Network: Prefix | undefined;
  let ipv6SubnetLen: number | undefined;
  const v6V = field(doc, 'IPv6Network');
  if (enableIPv6 || (v6V !== undefined && v6V !== null && v6V !== '')) {
    if (v6V === undefined || v6V === null || v6V === '') throw new ConfigError('IPv6Network is required when EnableIPv6 is true');
    if (typeof v6V !== 'string') throw new ConfigError(`IPv6Network must be a string like "fd00::/48", got ${show(v6V)}`);
    try { ipv6Network = Prefix.parse(v6V, { mask: true, family: 6 }); } catch { throw new ConfigError(`IPv6Network ${show(v6V)} is not a valid IPv6 CIDR like "fd00::/48"`); }
    const l = field(doc, 'IPv6SubnetLen');
    if (l === undefined || l === null || l === 0) {
      ipv6SubnetLen = 64;
    } else {
      if (typeof l !== 'number' || !Number.isInteger(l)) throw new ConfigError(`IPv6SubnetLen must be an integer, got ${show(l)}`);
      if (l > 126) throw new ConfigError(`IPv6SubnetLen must be at most 126, got ${l}`);
      ipv6SubnetLen = l;
    }
    if (ipv6SubnetLen <= ipv6Network.prefixLen) {
      throw new ConfigError(`IPv6SubnetLen must be longer than the IPv6Network prefix /${ipv6Network.prefixLen}, got ${ipv6SubnetLen}`);
    }
  }

  const backend = parseBackend(field(doc, 'Backend'));
  const cfg: NetworkConfig = {
    network, subnetLen, subnetMin, subnetMax, enableIPv6,
    ...(ipv6Network ? { ipv6Network, ipv6SubnetLen } : {}),
    backend,
  };
  return deepFreeze(cfg);
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Obj)) deepFreeze(v);
  }
  return o;
}
