// The network config stored at <prefix>/config, parsed once into a frozen,
// typed object. Rules follow flannel's pkg/subnet/config.go so that a config a
// flannel node accepts is accepted here too (the config is shared by both):
// - keys match case-insensitively, as Go's encoding/json does; unknown keys are ignored;
// - Network host bits are cleared silently (Go's net.ParseCIDR does the same);
// - SubnetLen defaults to 24 when Network is /22 or shorter, else prefix+2;
// - SubnetMin/SubnetMax default to the second/last subnet, must be aligned;
// - dual stack: EnableIPv4 (default true), EnableIPv6, IPv6Network, IPv6SubnetLen
//   (64 when IPv6Network is /62 or shorter, else prefix+2), IPv6SubnetMin/Max
//   (second/last subnet), checked as the IPv4 ones. IPv6-only (EnableIPv4 false)
//   is refused: flannel's etcd mode cannot run it (see the README).
import { absent, boolField, deepFreeze, field, isObject, show, type JsonObject as Obj } from '../lib/config-fields.js';
import { Prefix, formatIpNumber, ipNumber, isIp } from '../lib/ip.js';
import { ConfigError } from './errors.js';

/**
 * The Backend object as written. Its Type is checked to be a string here; what
 * the rest means is each backend's business (backend/<type>/config.ts), and
 * whether the type exists is the backend registry's.
 */
export interface BackendConfig {
  readonly type: string;
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
  /** Always true: IPv6-only is refused (flannel's etcd mode cannot run it either). */
  readonly enableIPv4: true;
  readonly enableIPv6: boolean;
  /** The IPv6 half, present exactly when enableIPv6. */
  readonly ipv6Network?: Prefix;
  readonly ipv6SubnetLen?: number;
  readonly ipv6SubnetMin?: Prefix;
  readonly ipv6SubnetMax?: Prefix;
  readonly backend: BackendConfig;
}

/** The IPv6 subnet space of a dual-stack config (undefined when EnableIPv6 is off). */
export function ipv6Space(c: NetworkConfig): { network: Prefix; subnetLen: number; subnetMin: Prefix; subnetMax: Prefix } | undefined {
  if (!c.enableIPv6 || !c.ipv6Network || c.ipv6SubnetLen === undefined || !c.ipv6SubnetMin || !c.ipv6SubnetMax) return undefined;
  return { network: c.ipv6Network, subnetLen: c.ipv6SubnetLen, subnetMin: c.ipv6SubnetMin, subnetMax: c.ipv6SubnetMax };
}

type BoundName = 'SubnetMin' | 'SubnetMax' | 'IPv6SubnetMin' | 'IPv6SubnetMax';

function subnetBound(o: Obj, name: BoundName, network: Prefix, subnetLen: number, dflt: bigint): Prefix {
  const fam = network.family;
  const v = field(o, name);
  let ip = dflt;
  if (!absent(v, true)) {
    if (typeof v !== 'string') throw new ConfigError(`${name} must be a string like "${formatIpNumber(dflt, fam)}", got ${show(v)}`);
    if (!isIp(v, fam)) throw new ConfigError(`${name} ${show(v)} is not a valid IPv${fam} address`);
    ip = ipNumber(v).n;
    const net = fam === 4 ? 'Network' : 'IPv6Network';
    if (!network.contains(ip)) throw new ConfigError(`${name} ${v} is not inside ${net} ${network}`);
    if (Prefix.containing(v, subnetLen).ip !== ip) throw new ConfigError(`${name} ${v} is not on a /${subnetLen} boundary`);
  }
  return new Prefix(fam, ip, subnetLen);
}

function parseBackend(v: unknown): BackendConfig {
  if (absent(v)) v = { Type: 'vxlan' }; // flannel's documented default
  if (!isObject(v)) throw new ConfigError(`Backend must be an object like {"Type":"vxlan"}, got ${show(v)}`);
  const t = field(v, 'Type') ?? 'vxlan';
  if (typeof t !== 'string' || t === '') throw new ConfigError(`Backend.Type must be a string like "vxlan", got ${show(t)}`);
  return { type: t, raw: deepFreeze(structuredClone(v)) };
}

/** Parses and validates the JSON network config. Throws ConfigError quoting the bad value. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`network config is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new ConfigError(`network config must be a JSON object, got ${show(doc)}`);

  const netV = field(doc, 'Network');
  if (absent(netV, true)) throw new ConfigError('Network is required, e.g. "10.244.0.0/16"');
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

  const enableIPv4 = boolField(doc, 'EnableIPv4', 'EnableIPv4', true);
  const enableIPv6 = boolField(doc, 'EnableIPv6', 'EnableIPv6', false);
  if (!enableIPv4) {
    throw new ConfigError(enableIPv6
      ? 'EnableIPv4 false (IPv6-only) is not supported: flannel\'s etcd mode cannot run an IPv6-only network either (every lease needs an IPv4 subnet); use a dual-stack network (EnableIPv4 and EnableIPv6 true)'
      : 'EnableIPv4 and EnableIPv6 are both false: there is no network to run');
  }
  const v6 = enableIPv6 ? parseIPv6Space(doc) : undefined;
  // Not enabled: a malformed IPv6Network is still an error (Go's JSON decoding fails on it in flannel too).
  const v6V = field(doc, 'IPv6Network');
  if (!v6 && !absent(v6V, true) && (typeof v6V !== 'string' || !isCidr6(v6V))) {
    throw new ConfigError(`IPv6Network ${show(v6V)} is not a valid IPv6 CIDR like "fd00::/48"`);
  }

  const backend = parseBackend(field(doc, 'Backend'));
  const cfg: NetworkConfig = {
    network, subnetLen, subnetMin, subnetMax, enableIPv4: true, enableIPv6,
    ...(v6 ? { ipv6Network: v6.network, ipv6SubnetLen: v6.subnetLen, ipv6SubnetMin: v6.subnetMin, ipv6SubnetMax: v6.subnetMax } : {}),
    backend,
  };
  return deepFreeze(cfg);
}

function isCidr6(v: string): boolean {
  try { Prefix.parse(v, { mask: true, family: 6 }); return true; } catch { return false; }
}

/** IPv6Network, IPv6SubnetLen, IPv6SubnetMin/Max (EnableIPv6 is on): flannel's defaults and rules. */
function parseIPv6Space(doc: Obj): { network: Prefix; subnetLen: number; subnetMin: Prefix; subnetMax: Prefix } {
  const v6V = field(doc, 'IPv6Network');
  if (absent(v6V, true)) throw new ConfigError('IPv6Network is required when EnableIPv6 is true, e.g. "fd00:10:244::/48"');
  if (typeof v6V !== 'string') throw new ConfigError(`IPv6Network must be a string like "fd00::/48", got ${show(v6V)}`);
  let network: Prefix;
  try { network = Prefix.parse(v6V, { mask: true, family: 6 }); } catch { throw new ConfigError(`IPv6Network ${show(v6V)} is not a valid IPv6 CIDR like "fd00::/48"`); }
  const l = field(doc, 'IPv6SubnetLen');
  let subnetLen: number;
  if (l === undefined || l === null || l === 0) {
    if (network.prefixLen > 124) throw new ConfigError(`IPv6Network ${network} is too small: the minimum useful prefix is /124`);
    subnetLen = network.prefixLen <= 62 ? 64 : network.prefixLen + 2;
  } else {
    if (typeof l !== 'number' || !Number.isInteger(l)) throw new ConfigError(`IPv6SubnetLen must be an integer, got ${show(l)}`);
    if (l > 126) throw new ConfigError(`IPv6SubnetLen must be at most 126, got ${l}`);
    // flannel: "network must be able to accommodate at least four subnets".
    if (l < network.prefixLen + 2) throw new ConfigError(`IPv6SubnetLen must be at least the IPv6Network prefix + 2 (/${network.prefixLen + 2}, four subnets), got ${l}`);
    subnetLen = l;
  }
  const size = 1n << BigInt(128 - subnetLen);
  const subnetMin = subnetBound(doc, 'IPv6SubnetMin', network, subnetLen, network.ip + size);
  const subnetMax = subnetBound(doc, 'IPv6SubnetMax', network, subnetLen, network.last + 1n - size);
  if (subnetMin.ip > subnetMax.ip) {
    throw new ConfigError(`IPv6SubnetMin ${subnetMin.networkAddress} is greater than IPv6SubnetMax ${subnetMax.networkAddress}`);
  }
  return { network, subnetLen, subnetMin, subnetMax };
}
