// Pure subnet allocation: enumerate the subnets between SubnetMin and
// SubnetMax and pick a free one given what is taken. No etcd here, so the
// bounds logic is unit-testable.
import { OutOfSubnetsError } from './errors.js';
import { IP4Net, formatIP4 } from './ip.js';

export interface SubnetSpace {
  readonly network: IP4Net;
  readonly subnetLen: number;
  readonly subnetMin: IP4Net;
  readonly subnetMax: IP4Net;
}

const step = (s: SubnetSpace): number => 2 ** (32 - s.subnetLen);

/** Number of allocatable subnets, SubnetMin and SubnetMax included. */
export function subnetCount(s: SubnetSpace): number {
  return (s.subnetMax.ip - s.subnetMin.ip) / step(s) + 1;
}

export function subnetAt(s: SubnetSpace, i: number): IP4Net {
  if (!Number.isInteger(i) || i < 0 || i >= subnetCount(s)) throw new RangeError(`subnet index ${i} out of range`);
  return new IP4Net(s.subnetMin.ip + i * step(s), s.subnetLen);
}

/** True if sn is one of the allocatable subnets (right size, aligned, in [min, max]). */
export function isAllocatable(s: SubnetSpace, sn: IP4Net): boolean {
  return sn.prefixLen === s.subnetLen && sn.ip >= s.subnetMin.ip && sn.ip <= s.subnetMax.ip && sn.ip % step(s) === 0;
}

/**
 * Indexes of allocatable subnets that overlap nothing in `taken`. Anything in
 * taken counts, whatever its size or alignment, so a stray key in etcd can
 * never lead to an overlapping subnet being handed out.
 */
export function freeSubnetIndexes(s: SubnetSpace, taken: Iterable<IP4Net>): number[] {
  const n = subnetCount(s);
  const used = new Uint8Array(n);
  const size = step(s);
  for (const t of taken) {
    const lo = Math.max(t.ip, s.subnetMin.ip);
    const hi = Math.min(t.last, s.subnetMax.ip + size - 1);
    if (lo > hi) continue;
    const a = Math.floor((lo - s.subnetMin.ip) / size);
    const b = Math.floor((hi - s.subnetMin.ip) / size);
    for (let i = a; i <= b; i++) used[i] = 1;
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (!used[i]) out.push(i);
  return out;
}

export function isFree(s: SubnetSpace, sn: IP4Net, taken: Iterable<IP4Net>): boolean {
  if (!isAllocatable(s, sn)) return false;
  for (const t of taken) if (t.overlaps(sn)) return false;
  return true;
}

/** A uniformly random free subnet (as flannel: concurrent starters rarely collide), or null. */
export function chooseFreeSubnet(s: SubnetSpace, taken: Iterable<IP4Net>, random: () => number = Math.random): IP4Net | null {
  const free = freeSubnetIndexes(s, taken);
  if (free.length === 0) return null;
  return subnetAt(s, free[Math.floor(random() * free.length)]!);
}

export function outOfSubnets(s: SubnetSpace): OutOfSubnetsError {
  return new OutOfSubnetsError(
    `out of subnets: all ${subnetCount(s)} /${s.subnetLen} subnets between ${formatIP4(s.subnetMin.ip)} and ${formatIP4(s.subnetMax.ip)} are leased`,
  );
}
