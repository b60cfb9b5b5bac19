// Garbage leases for the chaos suite: what an admin's typo, a restored backup or a
// copy-pasted lease puts under <prefix>/subnets/. Invalid ones stay to the end; those that
// conflict with a live host's lease (its VtepMAC, its PublicIP, its subnet) are removed
// again by the runner after the fault's hold. Garbage subnets live at .200 and above, where
// the suite's agents never lease (SubnetMax .199); PublicIPs come from 198.51.100.0/24.
import type { ChaosNetwork, LiveLease } from './chaos-check.js';
import { TRANSIENT_GARBAGE, type GarbageKind, type PlannedFault } from './chaos-schedule.js';

export interface Garbage {
  readonly puts: ReadonlyArray<readonly [key: string, value: string]>;
  readonly transient: boolean;
  /** The live lease a conflicting garbage lease copies from. */
  readonly victim?: string;
}

/** Deterministic in the fault (its pick) and the live leases. */
export function garbageFor(f: PlannedFault, net: ChaosNetwork, live: readonly LiveLease[]): Garbage {
  const kind = f.variant as GarbageKind;
  const n = Math.floor(f.pick * 1_000_000);
  const [a, b] = net.network.split('.').map(Number) as [number, number];
  // Permanent garbage in .200-.224, transient in .225-.249: a later fault never reuses a key still held.
  const third = (TRANSIENT_GARBAGE.has(kind) ? 225 : 200) + (n % 25);
  const free = `${a}.${b}.${third}.0-24`;
  const key = (suffix: string) => `${net.prefix}/subnets/${suffix}`;
  const fakeIp = `198.51.100.${1 + (n % 250)}`;
  const fakeMac = `0a:c4:${[n >>> 16, n >>> 8, n, n >>> 4].map((x) => (x & 0xff).toString(16).padStart(2, '0')).join(':')}`;
  const value = (publicIp: string, mac = fakeMac) => JSON.stringify({
    PublicIP: publicIp, PublicIPv6: null, BackendType: net.name,
    BackendData: net.name === 'vxlan' ? { VNI: 1, VtepMAC: mac } : null,
  });
  const victim = live.length ? live[Math.floor(f.pick * live.length)] : undefined;
  const permanent = (k: string, v: string): Garbage => ({ puts: [[key(k), v]], transient: false });
  const transient = (k: string, v: string): Garbage => ({ puts: [[key(k), v]], transient: true, ...(victim ? { victim: victim.key } : {}) });
  switch (kind) {
    case 'invalid-json': return permanent(free, `{"PublicIP":"${fakeIp}","BackendType":"${net.name}","BackendData":{`);
    case 'not-an-object': return permanent(free, `["PublicIP","${fakeIp}"]`);
    case 'bad-public-ip': return permanent(free, value(`198.51.100.${300 + (n % 100)}`));
    case 'bad-key': return permanent(`garbage-${n}`, value(fakeIp));
    case 'outside-network': return permanent(`10.99.${n % 250}.0-24`, value(fakeIp));
    case 'bad-mac': return permanent(free, value(fakeIp, '01:00:5e:00:00:01'));
    case 'whole-network': return transient(net.network.replace('/', '-'), value(fakeIp));
  }
  if (!victim) return permanent(free, '{"no":"live lease to copy"}');
  const [v1, v2, v3] = victim.subnet.split(/[./]/).map(Number) as [number, number, number];
  switch (kind) {
    case 'dup-mac': return transient(free, value(fakeIp, victim.mac ?? fakeMac));
    case 'dup-public-ip': return transient(free, value(victim.publicIp));
    case 'overlap-wider': return transient(`${v1}.${v2}.${v3 & ~1}.0-23`, value(fakeIp));
    case 'overlap-narrower': return transient(`${v1}.${v2}.${v3}.128-25`, value(fakeIp));
  }
  throw new Error(`unknown garbage kind ${JSON.stringify(kind)}`);
}
