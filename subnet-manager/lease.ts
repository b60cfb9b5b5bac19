// Lease keys and values, byte-compatible with flannel (pkg/subnet, pkg/lease):
//   key   <prefix>/subnets/10.244.3.0-24   (dual stack: 10.244.3.0-24&fd00:0:0:3::-64)
//   value {"PublicIP":"192.0.2.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{...}}
//   dual  {"PublicIP":"192.0.2.11","PublicIPv6":"2001:db8::11","BackendType":"vxlan","BackendData":{...},"BackendV6Data":{...}}
import { LeaseError } from './errors.js';
import { deepFreeze } from '../lib/config-fields.js';
import { Prefix, isIp, mask4, parseIP4 } from '../lib/ip.js';

export interface LeaseAttrs {
  readonly publicIP: string;
  readonly publicIPv6: string | null;
  /**
   * "vxlan", "udp", ... flannel's udp backend writes no BackendType at all, and
   * udp was flannel's original default, so an absent or empty BackendType is
   * decoded as "udp".
   */
  readonly backendType: string;
  readonly backendData: unknown;
  /** flannel's BackendV6Data (dual stack: the IPv6 device's data, e.g. its VTEP MAC); absent when the lease has none. */
  readonly backendV6Data?: unknown;
}

export interface Lease {
  /** IPv4 subnet. */
  readonly subnet: Prefix;
  readonly ipv6Subnet?: Prefix;
  readonly attrs: LeaseAttrs;
  /** Full etcd key. */
  readonly key: string;
  /** undefined = reservation (a key without an etcd lease; never expires). */
  readonly expiration?: Date;
  readonly modRevision?: number;
  /** etcd revision that created the key: the older of two conflicting leases wins. */
  readonly createRevision?: number;
  /** etcd lease id (decimal string) the key is attached to; undefined for reservations. */
  readonly leaseId?: string;
}

export function leaseKeySuffix(subnet: Prefix, ipv6?: Prefix): string {
  const v4 = `${subnet.networkAddress}-${subnet.prefixLen}`;
  if (!ipv6) return v4;
  return `${v4}&${ipv6.networkAddress}-${ipv6.prefixLen}`;
}

/**
 * "10.244.3.0-24" (IPv4 only, no host bits set), as almost every key reads, without regular
 * expressions or a second parse of the text: keys come by the ten thousand in a burst. Anything
 * else is undefined, for the general parser (and its errors).
 */
function plainV4Key(s: string): Prefix | undefined {
  const dash = s.indexOf('-');
  const digits = s.length - dash - 1;
  if (dash < 7 || digits < 1 || digits > 2 || s.includes('&')) return undefined;
  const d1 = s.charCodeAt(dash + 1) - 48;
  const d2 = digits === 2 ? s.charCodeAt(dash + 2) - 48 : 0;
  if (d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || (digits === 2 && d1 === 0)) return undefined;
  const len = digits === 2 ? d1 * 10 + d2 : d1;
  if (len > 32) return undefined;
  let n: number;
  try { n = parseIP4(s.slice(0, dash)); } catch { return undefined; }
  if (len < 32 && (n & ~mask4(len)) !== 0) return undefined;
  return new Prefix(4, BigInt(n), len);
}

export function parseLeaseKeySuffix(s: string, opts: { mask?: boolean } = {}): { subnet: Prefix; ipv6Subnet?: Prefix } {
  if (typeof s !== 'string') throw new LeaseError(`invalid lease key ${JSON.stringify(s)}`);
  const plain = plainV4Key(s);
  if (plain) return { subnet: plain };
  const [v4, v6, ...rest] = s.split('&');
  const m4 = /^([0-9.]+)-(\d{1,2})$/.exec(v4 ?? '');
  if (!m4 || rest.length > 0) throw new LeaseError(`invalid lease key ${JSON.stringify(s)}: want "10.244.3.0-24" or "10.244.3.0-24&fd00::-64"`);
  let subnet: Prefix;
  try { subnet = Prefix.parse(`${m4[1]}/${m4[2]}`, { family: 4, ...opts }); } catch (e) {
    throw new LeaseError(`invalid lease key ${JSON.stringify(s)}: ${(e as Error).message}`);
  }
  if (v6 === undefined) return { subnet };
  const m6 = /^([0-9a-fA-F:.]+)-(\d{1,3})$/.exec(v6);
  if (!m6) throw new LeaseError(`invalid lease key ${JSON.stringify(s)}: bad IPv6 part ${JSON.stringify(v6)}`);
  try {
    return { subnet, ipv6Subnet: Prefix.parse(`${m6[1]}/${m6[2]}`, { family: 6, ...opts }) };
  } catch (e) {
    throw new LeaseError(`invalid lease key ${JSON.stringify(s)}: ${(e as Error).message}`);
  }
}

/**
 * Exactly flannel's JSON (Go struct field order, PublicIPv6 null when absent).
 * backendData undefined leaves the key out, as Go's omitempty does for
 * flannel's host-gw lease; null is written as null (weft's udp leases).
 */
export function encodeLeaseAttrs(a: LeaseAttrs): string {
  return JSON.stringify({
    PublicIP: a.publicIP,
    PublicIPv6: a.publicIPv6 ?? null,
    BackendType: a.backendType,
    ...(a.backendData === undefined ? {} : { BackendData: a.backendData }),
    ...(a.backendV6Data === undefined || a.backendV6Data === null ? {} : { BackendV6Data: a.backendV6Data }),
  });
}

/** Parses a lease value; throws LeaseError naming the bad field and value. */
export function decodeLeaseAttrs(json: string): LeaseAttrs {
  let v: unknown;
  try { v = JSON.parse(json); } catch (e) {
    throw new LeaseError(`lease value is not valid JSON (${(e as Error).message}): ${JSON.stringify(String(json).slice(0, 80))}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LeaseError(`lease value must be a JSON object, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  const ip = o['PublicIP'];
  if (typeof ip !== 'string') throw new LeaseError(`lease PublicIP must be an IPv4 address string, got ${JSON.stringify(ip)}`);
  if (!isIp(ip, 4)) { throw new LeaseError(`lease PublicIP ${JSON.stringify(ip)} is not a valid IPv4 address`); }
  const ip6 = o['PublicIPv6'] ?? null;
  if (ip6 !== null) {
    if (typeof ip6 !== 'string') throw new LeaseError(`lease PublicIPv6 must be a string or null, got ${JSON.stringify(ip6)}`);
    if (!isIp(ip6, 6)) { throw new LeaseError(`lease PublicIPv6 ${JSON.stringify(ip6)} is not a valid IPv6 address`); }
  }
  const bt = o['BackendType'] ?? '';
  if (typeof bt !== 'string') throw new LeaseError(`lease BackendType must be a string, got ${JSON.stringify(bt)}`);
  const backendData = o['BackendData'] ?? null;
  const v6Data = o['BackendV6Data'] ?? null;
  return deepFreeze({
    publicIP: ip, publicIPv6: ip6 as string | null, backendType: bt === '' ? 'udp' : bt, backendData,
    ...(v6Data !== null ? { backendV6Data: v6Data } : {}),
  });
}
