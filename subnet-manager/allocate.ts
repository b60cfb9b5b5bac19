// Pure subnet allocation: enumerate the subnets between SubnetMin and
// SubnetMax and pick a free one given what is taken. No etcd here, so the
// bounds logic is unit-testable. Arithmetic is the Prefix's (bigint), so the
// same code serves an IPv6 space.
import { Prefix } from '../lib/ip.js';
import { OutOfSubnetsError } from './errors.js';

export interface SubnetSpace {
  readonly network: Prefix;
  readonly subnetLen: number;
  readonly subnetMin: Prefix;
  readonly subnetMax: Prefix;
}

const step = (s: SubnetSpace): bigint => 1n << BigInt(s.subnetMin.bits - s.subnetLen);

/** Number of allocatable subnets, SubnetMin and SubnetMax included. */
export function subnetCount(s: SubnetSpace): number {
  return Number((s.subnetMax.ip - s.subnetMin.ip) / step(s)) + 1;
}

export function subnetAt(s: SubnetSpace, i: number): Prefix {
  if (!Number.isInteger(i) || i < 0 || i >= subnetCount(s)) throw new RangeError(`subnet index ${i} out of range`);
  return new Prefix(s.subnetMin.family, s.subnetMin.ip + BigInt(i) * step(s), s.subnetLen);
}

/** True if sn is one of the allocatable subnets (right size, aligned, in [min, max]). */
export function isAllocatable(s: SubnetSpace, sn: Prefix): boolean {
  return sn.family === s.subnetMin.family && sn.prefixLen === s.subnetLen && sn.ip >= s.subnetMin.ip && sn.ip <= s.subnetMax.ip;
}

/**
 * Indexes of allocatable subnets that overlap nothing in `taken`. Anything in
 * taken counts, whatever its size or alignment, so a stray key in etcd can
 * never lead to an overlapping subnet being handed out.
 */
export function freeSubnetIndexes(s: SubnetSpace, taken: Iterable<Prefix>): number[] {
  const n = subnetCount(s);
  const used = new Uint8Array(n);
  const size = step(s);
  const min = s.subnetMin.ip;
  const max = s.subnetMax.ip + size - 1n;
  for (const t of taken) {
    if (t.family !== s.subnetMin.family) continue;
    const lo = t.ip > min ? t.ip : min;
    const hi = t.last < max ? t.last : max;
    if (lo > hi) continue;
    const a = Number((lo - min) / size);
    const b = Number((hi - min) / size);
    for (let i = a; i <= b; i++) used[i] = 1;
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (!used[i]) out.push(i);
  return out;
}

export function isFree(s: SubnetSpace, sn: Prefix, taken: Iterable<Prefix>): boolean {
  if (!isAllocatable(s, sn)) return false;
  for (const t of taken) if (t.overlaps(sn)) return false;
  return true;
}

/** A uniformly random free subnet (as flannel: concurrent starters rarely collide), or null. */
export function chooseFreeSubnet(s: SubnetSpace, taken: Iterable<Prefix>, random: () => number = Math.random): Prefix | null {
  const free = freeSubnetIndexes(s, taken);
  if (free.length === 0) return null;
  return subnetAt(s, free[Math.floor(random() * free.length)]!);
}

/**
 * flannel's IPv6 walk (pkg/subnet/etcd/local_manager.go allocateSubnet): the
 * first `limit` free subnets from SubnetMin upward. An IPv6 space has far too
 * many subnets to list (2^32 /64s in a /32), so it jumps over taken ranges
 * instead of marking every subnet.
 */
export function firstFreeSubnets(s: SubnetSpace, taken: Iterable<Prefix>, limit = 100): Prefix[] {
  const size = step(s);
  const fam = s.subnetMin.family;
  const sorted = [...taken].filter((t) => t.family === fam).sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  const out: Prefix[] = [];
  let cur = s.subnetMin.ip;
  let i = 0;
  while (cur <= s.subnetMax.ip && out.length < limit) {
    const end = cur + size - 1n;
    while (i < sorted.length && sorted[i]!.last < cur) i++;
    // Any taken range starting at or before this candidate's end and reaching into it?
    let blockEnd = -1n;
    for (let j = i; j < sorted.length && sorted[j]!.ip <= end; j++) if (sorted[j]!.last >= cur && sorted[j]!.last > blockEnd) blockEnd = sorted[j]!.last;
    if (blockEnd < 0n) {
      out.push(new Prefix(fam, cur, s.subnetLen));
      cur += size;
    } else {
      cur = ((blockEnd - s.subnetMin.ip) / size + 1n) * size + s.subnetMin.ip; // the first candidate after the taken range
    }
  }
  return out;
}

/** flannel's choice for IPv6: a random one of the first 100 free subnets from SubnetMin, independent of the IPv4 choice. */
export function chooseFreeSubnetV6(s: SubnetSpace, taken: Iterable<Prefix>, random: () => number = Math.random): Prefix | null {
  const free = firstFreeSubnets(s, taken, 100);
  return free.length === 0 ? null : free[Math.floor(random() * free.length)]!;
}

export function outOfSubnets(s: SubnetSpace): OutOfSubnetsError {
  const v6 = s.subnetMin.family === 6 ? 'IPv6 ' : '';
  return new OutOfSubnetsError(
    `out of ${v6}subnets: all ${subnetCount(s)} /${s.subnetLen} subnets between ${s.subnetMin.networkAddress} and ${s.subnetMax.networkAddress} are leased`,
  );
}
