// IPv4 arithmetic on uint32 numbers, IPv6 on bigints. Parsing is strict:
// dotted-quad without leading zeros (as Go's net.ParseIP since 1.17), and a
// CIDR must not have host bits set unless the caller asks for masking.
import { Address6 } from 'ip-address';

const IP4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses "10.244.3.1" to a uint32; throws naming the value. */
export function parseIP4(s: string): number {
  const m = typeof s === 'string' ? IP4_RE.exec(s) : null;
  if (!m) throw new Error(`invalid IPv4 address ${JSON.stringify(s)}`);
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    const v = Number(part);
    if (v > 255 || (part.length > 1 && part[0] === '0')) throw new Error(`invalid IPv4 address ${JSON.stringify(s)}`);
    n = n * 256 + v;
  }
  return n;
}

export function formatIP4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Netmask of a prefix length as a uint32 (prefix 0 -> 0). */
export function mask4(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

export class IP4Net {
  readonly ip: number;
  readonly prefixLen: number;

  constructor(ip: number, prefixLen: number) {
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) throw new Error(`invalid IPv4 prefix length ${prefixLen}`);
    if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff) throw new Error(`invalid IPv4 address number ${ip}`);
    this.ip = ip;
    this.prefixLen = prefixLen;
    Object.freeze(this);
  }

  /**
   * Parses "10.244.3.0/24". Host bits set ("10.244.3.5/24") are an error
   * naming the value, unless `opts.mask` is true (then they are cleared, as Go's
   * net.ParseCIDR does for flannel's Network).
   */
  static parse(cidr: string, opts: { mask?: boolean } = {}): IP4Net {
    if (typeof cidr !== 'string') throw new Error(`invalid IPv4 CIDR ${JSON.stringify(cidr)}`);
    const slash = cidr.indexOf('/');
    const lenStr = slash < 0 ? '' : cidr.slice(slash + 1);
    if (slash < 0 || !/^(0|[1-9]\d?)$/.test(lenStr) || Number(lenStr) > 32) {
      throw new Error(`invalid IPv4 CIDR ${JSON.stringify(cidr)}`);
    }
    let ip: number;
    try { ip = parseIP4(cidr.slice(0, slash)); } catch { throw new Error(`invalid IPv4 CIDR ${JSON.stringify(cidr)}`); }
    const len = Number(lenStr);
    const masked = (ip & mask4(len)) >>> 0;
    if (masked !== ip && !opts.mask) {
      throw new Error(`IPv4 CIDR ${JSON.stringify(cidr)} has host bits set (network address is ${formatIP4(masked)}/${len})`);
    }
    return new IP4Net(masked, len);
  }

  toString(): string { return `${formatIP4(this.ip)}/${this.prefixLen}`; }
  toJSON(): string { return this.toString(); }

  /** The nth address in the net, dotted: address(1) of 10.244.3.0/24 is "10.244.3.1". */
  address(n: number): string {
    if (!Number.isInteger(n) || n < 0 || n >= this.size) throw new Error(`address index ${n} is outside ${this}`);
    return formatIP4(this.ip + n);
  }

  get size(): number { return 2 ** (32 - this.prefixLen); }
  get netmask(): string { return formatIP4(mask4(this.prefixLen)); }
  /** Last address (broadcast) as a uint32. */
  get last(): number { return this.ip + this.size - 1; }

  contains(ip: string | number): boolean {
    const n = typeof ip === 'number' ? ip : parseIP4(ip);
    return n >= this.ip && n <= this.last;
  }
  containsNet(n: IP4Net): boolean { return n.prefixLen >= this.prefixLen && this.contains(n.ip); }
  overlaps(n: IP4Net): boolean { return this.contains(n.ip) || n.contains(this.ip); }
  equals(n: IP4Net): boolean { return this.ip === n.ip && this.prefixLen === n.prefixLen; }
}

const V6_BITS = 128n;
const V6_ALL = (1n << V6_BITS) - 1n;

function mask6(prefixLen: number): bigint {
  return prefixLen === 0 ? 0n : (V6_ALL << BigInt(128 - prefixLen)) & V6_ALL;
}

export function parseIP6(s: string): bigint {
  if (typeof s !== 'string' || s.includes('/') || s.includes('%') || !Address6.isValid(s)) {
    throw new Error(`invalid IPv6 address ${JSON.stringify(s)}`);
  }
  return new Address6(s).bigInt();
}

/** RFC 5952 text form, as Go's net.IP.String prints it ("fd00:0:0:3::"). */
export function formatIP6(n: bigint): string {
  return Address6.fromBigInt(n).correctForm();
}

export class IP6Net {
  readonly ip: bigint;
  readonly prefixLen: number;

  constructor(ip: bigint, prefixLen: number) {
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 128) throw new Error(`invalid IPv6 prefix length ${prefixLen}`);
    if (ip < 0n || ip > V6_ALL) throw new Error('invalid IPv6 address number');
    this.ip = ip;
    this.prefixLen = prefixLen;
    Object.freeze(this);
  }

  static parse(cidr: string, opts: { mask?: boolean } = {}): IP6Net {
    if (typeof cidr !== 'string') throw new Error(`invalid IPv6 CIDR ${JSON.stringify(cidr)}`);
    const slash = cidr.indexOf('/');
    const lenStr = slash < 0 ? '' : cidr.slice(slash + 1);
    if (slash < 0 || !/^(0|[1-9]\d{0,2})$/.test(lenStr) || Number(lenStr) > 128) {
      throw new Error(`invalid IPv6 CIDR ${JSON.stringify(cidr)}`);
    }
    let ip: bigint;
    try { ip = parseIP6(cidr.slice(0, slash)); } catch { throw new Error(`invalid IPv6 CIDR ${JSON.stringify(cidr)}`); }
    const len = Number(lenStr);
    const masked = ip & mask6(len);
    if (masked !== ip && !opts.mask) {
      throw new Error(`IPv6 CIDR ${JSON.stringify(cidr)} has host bits set (network address is ${formatIP6(masked)}/${len})`);
    }
    return new IP6Net(masked, len);
  }

  toString(): string { return `${formatIP6(this.ip)}/${this.prefixLen}`; }
  toJSON(): string { return this.toString(); }
  get last(): bigint { return this.ip | (V6_ALL >> BigInt(this.prefixLen)); }
  contains(ip: string | bigint): boolean {
    const n = typeof ip === 'bigint' ? ip : parseIP6(ip);
    return n >= this.ip && n <= this.last;
  }
  containsNet(n: IP6Net): boolean { return n.prefixLen >= this.prefixLen && this.contains(n.ip); }
  overlaps(n: IP6Net): boolean { return this.contains(n.ip) || n.contains(this.ip); }
  equals(n: IP6Net): boolean { return this.ip === n.ip && this.prefixLen === n.prefixLen; }
}
