// The network config stored at <prefix>/config, parsed once into a frozen,
// typed object. Rules follow flannel's pkg/subnet/config.go so that a config a
// flannel node accepts is accepted here too (the config is shared by both):
// - keys match case-insensitively, as Go's encoding/json does; unknown keys are ignored;
// - Network host bits are cleared silently (Go's net.ParseCIDR does the same);
// - SubnetLen defaults to 24 when Network is /22 or shorter, else prefix+2;
// - SubnetMin/SubnetMax default to the second/last subnet, must be aligned.
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
  readonly enableIPv6: boolean;
  readonly ipv6Network?: Prefix;
  readonly ipv6SubnetLen?: number;
  readonly backend: BackendConfig;
}

function subnetBound(o: Obj, name: 'SubnetMin' | 'SubnetMax', network: Prefix, subnetLen: number, dflt: bigint): Prefix {
  const v = field(o, name);
  let ip = dflt;
  if (!absent(v, true)) {
    if (typeof v !== 'string') throw new ConfigError(`${name} must be a string like "${formatIpNumber(dflt, 4)}", got ${show(v)}`);
    if (!isIp(v, 4)) throw new ConfigError(`${name} ${show(v)} is not a valid IPv4 address`);
    ip = ipNumber(v).n;
    if (!network.contains(ip)) throw new ConfigError(`${name} ${v} is not inside Network ${network}`);
    if (Prefix.containing(v, subnetLen).ip !== ip) throw new ConfigError(`${name} ${v} is not on a /${subnetLen} boundary`);
  }
  return new Prefix(4, ip, subnetLen);
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

  const enableIPv6 = boolField(doc, 'EnableIPv6', 'EnableIPv6', false);
  let ipv6Network: Prefix | undefined;
  let ipv6SubnetLen: number | undefined;
  const v6V = field(doc, 'IPv6Network');
  if (enableIPv6 || !absent(v6V, true)) {
    if (absent(v6V, true)) throw new ConfigError('IPv6Network is required when EnableIPv6 is true');
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
