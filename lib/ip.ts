// The one IP model, for both families: address text <-> bytes (strict:
// dotted quads without leading zeros, as Go's net.ParseIP since 1.17; IPv6
// without zones), formatted as inet_ntop(3) prints it (RFC 5952), so our
// strings compare equal to iproute2's and to Go's; one Prefix type for IPv4
// and IPv6 subnets; and uint32 helpers for the IPv4 packet path.

export type IpFamily = 4 | 6;

/** An address per family, for what a host or peer has in each (a public IP, an underlay address). */
export interface DualAddress {
  readonly v4?: string;
  readonly v6?: string;
}

export interface ParsedIp {
  family: IpFamily;
  bytes: Buffer;
}

function bad(what: string, s: unknown): never {
  throw new TypeError(`invalid ${what} ${JSON.stringify(s)}`);
}

/** Dotted quad without leading zeros, scanned by character: leases carry tens of thousands. */
function parseV4(s: string): Buffer | undefined {
  if (s.length < 7 || s.length > 15) return undefined;
  const b = Buffer.allocUnsafe(4);
  let part = 0;
  let n = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || part === 3) return undefined;
      b[part++] = n;
      n = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && n === 0) return undefined; // a leading zero
      n = n * 10 + (c - 48);
      if (n > 255) return undefined;
      digits++;
    } else {
      return undefined;
    }
  }
  if (part !== 3 || digits === 0) return undefined;
  b[3] = n;
  return b;
}

function parseV6(s: string): Buffer | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    const parts = h.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p);
        if (!v4) return undefined;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  const b = Buffer.allocUnsafe(16);
  all.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

/** "192.0.2.11" or "fd00::1" → family and network-order bytes. Throws TypeError quoting the input. */
export function parseIp(s: string): ParsedIp {
  if (typeof s !== 'string') return bad('IP address', s);
  const v4 = parseV4(s);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = s.includes(':') ? parseV6(s) : undefined;
  if (v6) return { family: 6, bytes: v6 };
  return bad('IP address', s);
}

export function ipFamily(s: string): IpFamily {
  return parseIp(s).family;
}

/** True when s is a valid address (of `family`, when given). */
export function isIp(s: unknown, family?: IpFamily): s is string {
  if (typeof s !== 'string') return false;
  try {
    const p = parseIp(s);
    return family === undefined || p.family === family;
  } catch {
    return false;
  }
}

/**
 * "10.244.3.1/24" → address bytes and prefix length, host bits kept (an
 * interface address, or what the kernel is asked for); a bare address is a
 * host prefix. For subnets, use Prefix.
 */
export function parseCidr(s: string): ParsedIp & { prefixLen: number } {
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { family: ip.family, bytes: ip.bytes, prefixLen: max };
  // One to three digits, at most max (scanned: every peer route's destination comes through here).
  const digits = s.length - slash - 1;
  let len = 0;
  for (let i = slash + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return bad('prefix', s);
    len = len * 10 + (c - 48);
  }
  if (digits < 1 || digits > 3 || len > max) bad('prefix', s);
  return { family: ip.family, bytes: ip.bytes, prefixLen: len };
}

/** Network-order bytes (4 or 16) → text, as inet_ntop prints it. */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return [b[0], b[1], b[2], b[3]].join('.'); // one flat string (formatIpNumber)
  if (b.length !== 16) throw new TypeError(`an IP address has 4 or 16 bytes, got ${b.length}`);
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!);
  // Longest run of two or more zero words, first one on a tie (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  // glibc prints IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) in dotted form.
  if (best === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
    const v4 = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
    return bestLen === 6 ? `::${v4}` : `::ffff:${v4}`;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

// ---------------------------------------------------------------- IPv4 as uint32 (the packet path)

/** Parses "10.244.3.1" to a uint32; throws naming the value. */
export function parseIP4(s: string): number {
  const b = typeof s === 'string' ? parseV4(s) : undefined;
  if (!b) throw new TypeError(`invalid IPv4 address ${JSON.stringify(s)}`);
  return b.readUInt32BE(0);
}

export function formatIP4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Netmask of a prefix length as a uint32 (prefix 0 -> 0). */
export function mask4(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** Netmask of an IPv6 prefix length as a 128-bit bigint (prefix 0 -> 0). */
export function mask6(prefixLen: number): bigint {
  return ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefixLen)) - 1n);
}

// ---------------------------------------------------------------- Prefix

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

function toBigInt(b: Uint8Array): bigint {
  // IPv4 in one conversion: leases and peers parse tens of thousands.
  if (b.length === 4) return BigInt(((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0);
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

function fromBigInt(n: bigint, family: IpFamily): Buffer {
  const len = family === 4 ? 4 : 16;
  const b = Buffer.allocUnsafe(len);
  for (let i = len - 1; i >= 0; i--) {
    b[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return b;
}

/** The address `n` (an integer of the family's width) as text. */
export function formatIpNumber(n: bigint, family: IpFamily): string {
  if (family === 4 && n >= 0n && n <= 0xffffffffn) {
    // The common case without a Buffer: thousands of peers format their subnets often. Joined,
    // not a template literal: V8 keeps a concatenation of 13 or more characters as a tree of its
    // parts (a cons string: up to 6 heap objects here instead of 1), and peers keep these texts.
    const v = Number(n);
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  }
  return formatIp(fromBigInt(n, family));
}

/** An address as an integer of its family's width. */
export function ipNumber(s: string): { family: IpFamily; n: bigint } {
  const p = parseIp(s);
  return { family: p.family, n: toBigInt(p.bytes) };
}

/** HOST_MASKS[family][prefixLen]: the host bits of a prefix of that length (computed once). */
const HOST_MASKS: Record<IpFamily, readonly bigint[]> = {
  4: Array.from({ length: 33 }, (_, len) => (1n << BigInt(32 - len)) - 1n),
  6: Array.from({ length: 129 }, (_, len) => (1n << BigInt(128 - len)) - 1n),
};

/**
 * A subnet of either family: "10.244.3.0/24", "fd00:0:0:3::/64". Immutable;
 * host bits are never set. Arithmetic is on bigint, so both families share it.
 */
export class Prefix {
  readonly family: IpFamily;
  /** The network address as an integer of the family's width. */
  readonly ip: bigint;
  readonly prefixLen: number;
  /** Last address as an integer. */
  readonly last: bigint;
  /** The text, once asked for (a private field: still writable on the frozen object, and no weak map for the collector to walk). */
  #text: string | undefined = undefined;

  constructor(family: IpFamily, ip: bigint, prefixLen: number) {
    const bits = BITS[family];
    if (bits === undefined) throw new TypeError(`invalid IP family ${family}`);
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > bits) throw new TypeError(`invalid IPv${family} prefix length ${prefixLen}`);
    if (ip < 0n || ip > HOST_MASKS[family][0]!) throw new TypeError(`invalid IPv${family} address number ${ip}`);
    const host = HOST_MASKS[family][prefixLen]!;
    if ((ip & host) !== 0n) throw new TypeError(`IPv${family} prefix ${formatIpNumber(ip, family)}/${prefixLen} has host bits set`);
    this.family = family;
    this.ip = ip;
    this.prefixLen = prefixLen;
    this.last = ip | host;
    Object.freeze(this);
  }

  private static hostMask(family: IpFamily, prefixLen: number): bigint {
    return HOST_MASKS[family][prefixLen]!;
  }

  /**
   * Parses "10.244.3.0/24" or "fd00::/64". Host bits set ("10.244.3.5/24") are
   * an error naming the value, unless `opts.mask` is true (then they are
   * cleared, as Go's net.ParseCIDR does for flannel's Network). `opts.family`
   * restricts the family.
   */
  static parse(cidr: string, opts: { mask?: boolean; family?: IpFamily } = {}): Prefix {
    const what = opts.family ? `IPv${opts.family} CIDR` : 'CIDR';
    if (typeof cidr !== 'string') throw new TypeError(`invalid ${what} ${JSON.stringify(cidr)}`);
    const slash = cidr.indexOf('/');
    const lenStr = slash < 0 ? '' : cidr.slice(slash + 1);
    let ip: ParsedIp;
    try {
      if (slash < 0 || !/^(0|[1-9]\d{0,2})$/.test(lenStr)) throw new Error();
      ip = parseIp(cidr.slice(0, slash));
      if ((opts.family && ip.family !== opts.family) || Number(lenStr) > BITS[ip.family]) throw new Error();
    } catch {
      throw new TypeError(`invalid ${what} ${JSON.stringify(cidr)}`);
    }
    const len = Number(lenStr);
    const n = toBigInt(ip.bytes);
    const masked = n & ~Prefix.hostMask(ip.family, len);
    if (masked !== n && !opts.mask) {
      throw new TypeError(`IPv${ip.family} CIDR ${JSON.stringify(cidr)} has host bits set (network address is ${formatIpNumber(masked, ip.family)}/${len})`);
    }
    return new Prefix(ip.family, masked, len);
  }

  /** The prefix of length `prefixLen` holding address `addr` (host bits cleared). */
  static containing(addr: string, prefixLen: number): Prefix {
    const { family, n } = ipNumber(addr);
    return new Prefix(family, n & ~Prefix.hostMask(family, prefixLen), prefixLen);
  }

  get bits(): number { return BITS[this.family]; }
  /** Number of addresses. */
  get size(): bigint { return 1n << BigInt(this.bits - this.prefixLen); }
  /** The network address as text ("10.244.3.0"). */
  get networkAddress(): string { return formatIpNumber(this.ip, this.family); }
  get netmask(): string { return formatIpNumber(~Prefix.hostMask(this.family, this.prefixLen) & ((1n << BigInt(this.bits)) - 1n), this.family); }

  toString(): string {
    // Immutable, so its text is computed once (peers are keyed by it everywhere), as one flat string (formatIpNumber).
    return (this.#text ??= [this.networkAddress, this.prefixLen].join('/'));
  }
  toJSON(): string { return this.toString(); }

  /** The nth address in the prefix: address(1) of 10.244.3.0/24 is "10.244.3.1". */
  address(n: number | bigint): string {
    const i = BigInt(n);
    if (i < 0n || i >= this.size) throw new RangeError(`address index ${n} is outside ${this}`);
    return formatIpNumber(this.ip + i, this.family);
  }

  contains(ip: string | bigint): boolean {
    let n: bigint;
    if (typeof ip === 'bigint') n = ip;
    else {
      const p = parseIp(ip);
      if (p.family !== this.family) return false;
      n = toBigInt(p.bytes);
    }
    return n >= this.ip && n <= this.last;
  }
  /** The network address of the prefix of length `len` (at most this one's) that holds this one. */
  networkOf(len: number): bigint {
    if (!Number.isInteger(len) || len < 0 || len > this.prefixLen) throw new RangeError(`prefix length ${len} is not within 0..${this.prefixLen} of ${this}`);
    return this.ip & ~HOST_MASKS[this.family][len]!;
  }
  containsNet(o: Prefix): boolean { return o.family === this.family && o.prefixLen >= this.prefixLen && this.contains(o.ip); }
  overlaps(o: Prefix): boolean { return o.family === this.family && (this.contains(o.ip) || o.contains(this.ip)); }
  equals(o: Prefix): boolean { return o.family === this.family && this.ip === o.ip && this.prefixLen === o.prefixLen; }
}
