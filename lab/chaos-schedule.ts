// The chaos suite's fault plan: a pure function of (seed, duration, topology), so a failing
// seed replays the same faults at the same offsets (`weft chaos --seed N`). The runner
// (./chaos.ts) applies it; the plan itself never looks at the lab.
//
// Rules the plan keeps, so that every fault is one an operator could cause and the cluster
// is expected to survive it:
// - one fault starts at least every 2 s (gaps of 250..2000 ms), the first within 1 s;
// - every fault and its undoing (restart, SIGCONT, link up, garbage removal) fit in the window;
// - at most one etcd member is impaired at a time (quorum stays), and a weftd is not killed
//   again while it is still down;
// - kinds come from a shuffled bag, so each enabled kind recurs every |kinds| faults.

export const FAULT_KINDS = [
  'weftd-kill', // kill -9 of a weftd, restarted after holdMs
  'etcd-stop', // SIGSTOP of an etcd member, SIGCONT after holdMs
  'etcd-kill', // kill -9 of an etcd member, restarted (same data dir) after holdMs
  'lease-delete', // etcdctl del of a host's lease key
  'link-flap', // the host's underlay link down for holdMs (carrier: the switch port; admin: eth0 itself)
  'device-delete', // ip link del weft.1 on a vxlan host (the udp host's TUN on a udp host)
  'route-delete', // a peer route on weft.1 (vxlan) or the TUN's network route (udp) deleted by hand
  'garbage-lease', // bad leases written into the host's network; conflicting ones removed after holdMs
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Garbage leases. The first group stays to the end (each is invalid: never programmed);
 * the second conflicts with a live host's lease and is removed again after holdMs (which
 * lease wins such a conflict depends on history, so the end state is only defined without it).
 */
export const GARBAGE_KINDS = [
  'invalid-json', 'not-an-object', 'bad-public-ip', 'bad-key', 'outside-network', 'bad-mac',
  'dup-mac', 'dup-public-ip', 'overlap-wider', 'overlap-narrower', 'whole-network',
] as const;
export type GarbageKind = (typeof GARBAGE_KINDS)[number];
export const TRANSIENT_GARBAGE: ReadonlySet<GarbageKind> = new Set(['dup-mac', 'dup-public-ip', 'overlap-wider', 'overlap-narrower', 'whole-network']);
/** Garbage that only means something in a network of VXLAN leases. */
const VXLAN_ONLY: ReadonlySet<GarbageKind> = new Set(['bad-mac', 'dup-mac']);

export interface PlanHost {
  readonly name: string;
  readonly backend: 'vxlan' | 'udp';
}

export interface PlannedFault {
  /** Milliseconds after the start of the window. */
  readonly at: number;
  readonly kind: FaultKind;
  /** A host name ('h2') or an etcd member name ('m1'). */
  readonly target: string;
  /** How long the fault lasts before it is undone (0 for one-shot faults). */
  readonly holdMs: number;
  /** link-flap: 'carrier' | 'admin'; garbage-lease: a GarbageKind. */
  readonly variant?: string;
  /** A uniform number in [0, 1) for choices the runner makes from the live state (which peer route, which victim lease). */
  readonly pick: number;
}

export interface PlanOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly hosts: readonly PlanHost[];
  readonly etcdMembers: readonly string[];
  /** Default: every kind. */
  readonly kinds?: readonly FaultKind[];
}

/** mulberry32: a small, well-mixed 32-bit PRNG; the same seed gives the same sequence everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Time an etcd member needs after its hold to be healthy again (restart), kept free of other etcd faults. */
const ETCD_RECOVERY_MS = 2000;
/** Time a killed weftd needs to be up again after its restart. */
const WEFTD_RECOVERY_MS = 1500;

export function planFaults(o: PlanOptions): PlannedFault[] {
  const kinds = [...(o.kinds ?? FAULT_KINDS)];
  if (kinds.length === 0) throw new Error('no fault kinds to plan');
  for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault kind ${JSON.stringify(k)}; kinds: ${FAULT_KINDS.join(', ')}`);
  if (o.hosts.length === 0) throw new Error('no hosts to plan faults for');
  const rnd = prng(o.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const bag: FaultKind[] = [];
  const refill = () => {
    const more = [...kinds];
    for (let i = more.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [more[i], more[j]] = [more[j]!, more[i]!]; }
    bag.push(...more);
  };
  /** The first kind in the bag that can run now (one that cannot waits for a later slot); a new bag when none can. */
  const takeKind = (feasible: (k: FaultKind) => boolean): FaultKind | undefined => {
    if (bag.length === 0) refill();
    let i = bag.findIndex(feasible);
    if (i < 0) { refill(); i = bag.findIndex(feasible); }
    return i < 0 ? undefined : bag.splice(i, 1)[0];
  };

  const out: PlannedFault[] = [];
  let etcdBusyUntil = 0;
  const weftdDownUntil = new Map<string, number>();
  // The last fault starts early enough for its undoing (at most ~3.5 s with etcd's restart) to fit.
  const lastStart = o.durationMs - 1000;
  const next = (at: number) => {
    const n = at + int(250, 2000);
    // The last gap before the window's end must not exceed 2 s either.
    return n > lastStart && o.durationMs - at > 2000 && lastStart > at ? lastStart : n;
  };
  for (let at = int(100, 1000); at <= lastStart; at = next(at)) {
    const left = o.durationMs - at;
    const feasible = (k: FaultKind): boolean => {
      if (k === 'etcd-stop' || k === 'etcd-kill') return o.etcdMembers.length > 0 && etcdBusyUntil <= at && left >= (k === 'etcd-kill' ? ETCD_RECOVERY_MS + 400 : 900);
      if (k === 'weftd-kill') return left >= WEFTD_RECOVERY_MS + 200 && o.hosts.some((h) => (weftdDownUntil.get(h.name) ?? 0) <= at);
      return true;
    };
    // A kind that cannot run now (etcd busy, no time for a restart) gives way to the next one in the bag.
    const kind = takeKind(feasible);
    if (kind === undefined) continue;
    const hold = (lo: number, hi: number, recovery = 0) => Math.max(0, Math.min(int(lo, hi), left - recovery - 200));
    let f: PlannedFault;
    switch (kind) {
      case 'etcd-stop':
      case 'etcd-kill': {
        const holdMs = kind === 'etcd-stop' ? hold(300, 3000, 500) : hold(200, 1500, ETCD_RECOVERY_MS);
        f = { at, kind, target: pickOf(o.etcdMembers), holdMs, pick: rnd() };
        etcdBusyUntil = at + holdMs + (kind === 'etcd-kill' ? ETCD_RECOVERY_MS : 500);
        break;
      }
      case 'weftd-kill': {
        const up = o.hosts.filter((h) => (weftdDownUntil.get(h.name) ?? 0) <= at);
        const h = pickOf(up);
        const holdMs = hold(0, 1000, WEFTD_RECOVERY_MS);
        weftdDownUntil.set(h.name, at + holdMs + WEFTD_RECOVERY_MS);
        f = { at, kind, target: h.name, holdMs, pick: rnd() };
        break;
      }
      case 'link-flap':
        f = { at, kind, target: pickOf(o.hosts).name, holdMs: hold(100, 1500), variant: rnd() < 0.5 ? 'carrier' : 'admin', pick: rnd() };
        break;
      case 'garbage-lease': {
        const h = pickOf(o.hosts);
        const variants = GARBAGE_KINDS.filter((g) => h.backend === 'vxlan' || !VXLAN_ONLY.has(g));
        const variant = pickOf(variants);
        f = { at, kind, target: h.name, holdMs: TRANSIENT_GARBAGE.has(variant) ? hold(500, 3000) : 0, variant, pick: rnd() };
        break;
      }
      default:
        f = { at, kind, target: pickOf(o.hosts).name, holdMs: 0, pick: rnd() };
    }
    out.push(f);
  }
  return out;
}
