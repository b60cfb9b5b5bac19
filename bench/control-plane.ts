// Control-plane scale, in its own lab (3 hosts running weftd with kernel VXLAN):
//  1. N remote leases written into etcd at once (a few large transactions, as
//     fast as etcd takes them: the bench measures weft, not its own puts) →
//     time until each agent's host holds all 3N kernel entries (neighbour +
//     FDB + route, counted from netlink dumps; the routes kept as a time series per host),
//     and the agents' resident memory before and after. This is the agents'
//     first burst: V8 compiles their per-lease code while it runs;
//  2. the N leases deleted at once → time until no host holds any of them
//     (a cluster torn down, an etcd restored without them);
//  3. the N leases put again, within the 10 s their claims are held for them
//     (their hosts coming back) → the same as 1 with the agents' code warm;
//  4. then, with those N peers in place, one new lease at a time → the time
//     from its put to its route existing on every host (netlink monitor).
// (control-plane-burst.ts runs 1-3.)
// The fake leases are valid vxlan leases, each with its own PublicIP (two
// leases with one PublicIP are a conflict weftd skips): from 198.18.0.0/15,
// RFC 2544's range for benchmarks, on no interface and never reached: the
// entries are PERMANENT and no traffic flows.
import { statfsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { PREFIX, putNetworkConfig, type AgentReady, type LabAgent, startAgents } from '../lab/agent.js';
import type { Lab } from '../lab/lab.js';
import { NetlinkHandle, NetlinkMonitor, RTMGRP_IPV4_ROUTE } from '../netlink/index.js';
import { type BulkOp, EtcdBulk } from './etcd-bulk.js';
import { type BurstCpu, type BurstResult, type BurstSetup, runBurst } from './control-plane-burst.js';
import { HostEntries, WantedEntries } from './control-plane-entries.js';
import { rssBytes } from './proc-stats.js';
import { HEALTHZ_FLAGS, HealthzPollers, type Responsiveness, scrapeEventLoop } from './responsiveness.js';
import { percentile } from './stats.js';
import { tracing, trace } from '../lib/trace.js';
import type { Step } from './measure.js';

export { TXN_OPS } from './control-plane-burst.js';

/**
 * 32768 /24s (10.128.0.0 – 10.255.255.255): the fake peers from 10.160.0.0 (at most
 * MAX_LEASES, up to 10.238.31.0), the propagation leases from 10.240.0.0, the real hosts
 * anywhere (skipped).
 */
export const SCALE_CONFIG = { Network: '10.128.0.0/9', SubnetLen: 24, Backend: { Type: 'vxlan', VNI: 1, Port: 8472 } } as const;
export const MAX_LEASES = 20_000;
export const MAX_PUTS = 250;
const FAKE_BASE = 160;
export const PROPAGATION_BASE = 240;
const VXLAN_DEV = 'weft.1';
/** Idle time after a burst's last host converged, before the next burst: the agents finish their own follow-ups (the peer state file). */
const SETTLE_MS = 2000;

export interface ControlPlaneSettings {
  hosts: number;
  leases: number;
  puts: number;
  /** Give up waiting for convergence after this long. */
  timeoutMs: number;
}

/** statfs(2)'s f_type of a tmpfs (linux/magic.h TMPFS_MAGIC). */
const TMPFS_MAGIC = 0x01021994;
const SHM = '/dev/shm';
/** Free space the tmpfs must have: etcd preallocates 64 MiB per WAL file (a container's /dev/shm is often 64 MiB in all). */
const SHM_MIN_FREE = 512 * 1024 * 1024;

/**
 * Where the scale lab's etcd keeps its data: on the tmpfs at /dev/shm when there is one, so that
 * a put's commit is not this VM's disk flush (etcd fsyncs its log on every commit; in slow
 * stretches of this shared disk the flush alone had a p99 above 100 ms, which then was every
 * put → route sample's tail). undefined: none here (or under 512 MiB free on it), the lab's own
 * directory (on disk).
 */
export function scaleEtcdDataRoot(): string | undefined {
  try {
    const st = statfsSync(SHM);
    return st.type === TMPFS_MAGIC && st.bavail * st.bsize >= SHM_MIN_FREE ? SHM : undefined;
  } catch {
    return undefined;
  }
}

export interface ControlPlaneResult {
  hosts: number;
  /** Where etcd kept its data: 'tmpfs' (scaleEtcdDataRoot) or 'disk' (absent in results from before it was recorded). */
  etcdData?: 'tmpfs' | 'disk';
  leases: number;
  /** Kernel entries expected per host: 3 × leases. */
  entriesExpected: number;
  /** Time to write every lease into etcd. */
  putSeconds: number;
  /** Per host: seconds from the first put until the dump shows every entry (undefined: not within the timeout). */
  convergeSeconds: (number | undefined)[];
  /** The slowest host. */
  convergeSecondsMax: number | undefined;
  /** Per host, what the last dump found: [neigh, fdb, route]. */
  entriesFound: [number, number, number][];
  /**
   * Peer routes per host over time (weftd adds each peer's route after its neighbour and FDB
   * entries): seconds since the first put, and each host's count then; convergeSeconds is when
   * all three kinds were listed complete.
   */
  series: { t: number; routes: number[] }[];
  rssBeforeMiB: number[];
  rssAfterMiB: number[];
  /** CPU seconds from the put until each host converged (control-plane-burst.ts). */
  burstCpu: BurstCpu;
  /** /healthz answer times and weftd's event-loop delay while the N leases are programmed. */
  responsiveness: Responsiveness;
  /** The same leases deleted at once: until no host holds any of their entries (absent in results from before it was measured). */
  removal?: BurstSummary;
  /** Then put again, within their claims' 10 s grace: the first burst's work with weftd's code compiled (absent likewise). */
  again?: BurstSummary;
  propagation: {
    puts: number;
    /** Every (put, host) sample, in ms. */
    samples: number;
    p50Ms: number | undefined;
    p99Ms: number | undefined;
    maxMs: number | undefined;
    /** Samples that did not arrive within the timeout. */
    missing: number;
    /**
     * etcd's acknowledgement of each put as the bench's client saw it (the commit, part of every
     * put → route sample: weftd hears of a put after it is committed).
     */
    ackP50Ms?: number | undefined;
    ackP99Ms?: number | undefined;
  };
}

/** A later burst: when each host converged, the CPU it took, and weftd's event-loop delay meanwhile. */
export type BurstSummary = Omit<BurstResult, 'series' | 'entriesFound'> & { eventLoopP99Ms: (number | undefined)[]; eventLoopMaxMs: (number | undefined)[] };

export interface FakeLease { key: string; subnet: string; vtep: string; mac: string; publicIp: string; value: string }

/**
 * The k-th fake lease: subnet 10.<base>.0.0/24 + k, VtepMAC 02:b5:<base>:… + k, PublicIP
 * 198.18.0.1 + the subnet's index in 10.128.0.0/9 (so no two subnets share one).
 */
export function fakeLease(k: number, base = FAKE_BASE): FakeLease {
  const b = base + (k >> 8);
  const c = k & 255;
  if (b > 255) throw new RangeError(`fake lease ${k} from 10.${base}.0.0 falls outside the scale network`);
  const subnet = `10.${b}.${c}.0/24`;
  const mac = `02:b5:${hex(base)}:${hex((k >> 16) & 255)}:${hex((k >> 8) & 255)}:${hex(c)}`;
  const n = 1 + (b - 128) * 256 + c;
  const publicIp = `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
  const value = JSON.stringify({ PublicIP: publicIp, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: mac } });
  return { key: `${PREFIX}/subnets/10.${b}.${c}.0-24`, subnet, vtep: `10.${b}.${c}.0`, mac, publicIp, value };
}
const hex = (n: number) => n.toString(16).padStart(2, '0');

export async function runControlPlane(lab: Lab, s: ControlPlaneSettings, step: Step): Promise<ControlPlaneResult> {
  if (s.leases > MAX_LEASES || s.puts > MAX_PUTS) throw new Error(`at most ${MAX_LEASES} leases and ${MAX_PUTS} puts fit the bench network, got ${s.leases} and ${s.puts}`);
  await putNetworkConfig(lab, SCALE_CONFIG);
  // Default flags (info logs, 10 s resync): the agent as it runs in production, plus its health server.
  const up = await startAgents(lab, () => ['--log-level', 'info', ...HEALTHZ_FLAGS]);
  const agents: LabAgent[] = up.map((u) => u.agent);
  const ready: AgentReady[] = up.map((u) => u.ready);
  step(`${agents.length} agents up: ${ready.map((r) => r.subnet).join(', ')}`);

  const taken = new Set(ready.map((r) => r.subnet));
  const fakes: FakeLease[] = [];
  for (let k = 0; fakes.length < s.leases; k++) {
    const f = fakeLease(k);
    if (!taken.has(f.subnet)) fakes.push(f);
  }
  const handles = lab.hosts.map((h) => NetlinkHandle.open({ netns: h.ns }));
  const wanted = new WantedEntries(fakes);
  const entries = lab.hosts.map((h, i) => new HostEntries(handles[i]!, h.ns, VXLAN_DEV, wanted));
  const monitors: NetlinkMonitor[] = [];
  const pollers = new HealthzPollers(lab, lab.hosts);
  const bulk = new EtcdBulk(lab.etcd!.members[0]!);
  try {
    const rssBefore = agents.map((a) => mib(rssBytes(a.proc.pid!)));
    const etcd = lab.etcd!.client();
    // 2 s of idle /healthz answers as the baseline; the scrape resets weftd's event-loop histogram.
    const idleFrom = Date.now();
    await sleep(2000);
    const idleTo = Date.now();
    await Promise.all(lab.hosts.map((h) => scrapeEventLoop(lab, h)));
    const busyFrom = Date.now();
    const burst: BurstSetup = { agents, entries, bulk, etcdPid: lab.etcd!.members[0]?.pid, timeoutMs: s.timeoutMs, step };
    // "At once": transactions of TXN_OPS puts each, all in flight together on one connection (etcd-bulk.ts).
    const first = await runBurst(burst, fakes, fakes.length, 'put');
    const busyTo = Date.now();
    const loops = await Promise.all(lab.hosts.map((h) => scrapeEventLoop(lab, h)));
    const responsiveness: Responsiveness = {
      healthzIdle: pollers.window(idleFrom, idleTo),
      healthzBusy: pollers.window(busyFrom, busyTo),
      eventLoopP99Ms: loops.map((l) => l.p99Ms),
      eventLoopMaxMs: loops.map((l) => l.maxMs),
    };
    const hz = responsiveness.healthzBusy;
    step(`while programming: /healthz p50 ${hz.p50Ms?.toFixed(1)} ms, p99 ${hz.p99Ms?.toFixed(1)} ms, max ${hz.maxMs?.toFixed(1)} ms (${hz.samples} answers, idle p99 ${responsiveness.healthzIdle.p99Ms?.toFixed(1)} ms); ` +
      `event-loop delay p99 ${loops.map((l) => l.p99Ms?.toFixed(1)).join(', ')} ms, max ${loops.map((l) => l.maxMs?.toFixed(1)).join(', ')} ms`);
    await pollers.stop();
    const rssAfter = agents.map((a) => mib(rssBytes(a.proc.pid!)));
    step(`${fakes.length} leases (${first.writeSeconds.toFixed(2)} s to put): all ${3 * fakes.length} entries after ${times(first.convergeSeconds)}; RSS ${rssAfter.map((r) => `${r.toFixed(0)} MiB`).join(', ')}`);

    // The same leases deleted at once, then put again while their claims are held for them.
    const later = async (ops: readonly BulkOp[], expect: number, what: string): Promise<BurstSummary> => {
      await sleep(SETTLE_MS);
      await Promise.all(lab.hosts.map((h) => scrapeEventLoop(lab, h)));
      const { series: _s, entriesFound: _e, ...r } = await runBurst(burst, ops, expect, what);
      const l = await Promise.all(lab.hosts.map((h) => scrapeEventLoop(lab, h)));
      step(`${what}: ${expect === 0 ? 'no' : 'all'} ${3 * fakes.length} entries after ${times(r.convergeSeconds)}; event-loop delay p99 ${l.map((x) => x.p99Ms?.toFixed(1)).join(', ')} ms, max ${l.map((x) => x.maxMs?.toFixed(1)).join(', ')} ms`);
      return { ...r, eventLoopP99Ms: l.map((x) => x.p99Ms), eventLoopMaxMs: l.map((x) => x.maxMs) };
    };
    const removal = await later(fakes.map((f) => ({ key: f.key, delete: true as const })), 0, `${fakes.length} leases deleted at once`);
    const again = await later(fakes, fakes.length, `the ${fakes.length} leases put again`);

    // One lease at a time: put → route on every host, watched through a netlink monitor per host.
    for (const h of lab.hosts) monitors.push(NetlinkMonitor.open({ netns: h.ns, groups: RTMGRP_IPV4_ROUTE }));
    const samples: number[] = [];
    const acks: number[] = [];
    let missing = 0;
    const single: FakeLease[] = [];
    for (let k = 0; single.length < s.puts; k++) {
      const f = fakeLease(k, PROPAGATION_BASE);
      if (!taken.has(f.subnet)) single.push(f);
    }
    // The etcd3 client's first requests (its connection, the code paths' first runs) are not part of a
    // put's latency: a few puts outside weft's prefix first (nothing watches them).
    for (let i = 0; i < 5; i++) await etcd.put('/weft-bench/warm-up').value(String(i)).exec();
    for (const f of single) {
      for (const m of monitors) m.poll(0);
      const seen: (number | undefined)[] = monitors.map(() => undefined);
      const start = performance.now();
      // exec(): the etcd3 builder is lazy, it sends nothing until awaited.
      let ackMs: number | undefined;
      const put = etcd.put(f.key).value(f.value).exec().then(() => {
        ackMs = performance.now() - start;
      });
      while (seen.some((x) => x === undefined) && performance.now() - start < 10_000) {
        for (const [j, m] of monitors.entries()) {
          if (seen[j] !== undefined) continue;
          const ns = m.poll(0);
          const overrun = ns.some((n) => n.kind === 'overrun');
          if (ns.some((n) => n.kind === 'route' && n.action === 'new' && n.route.dst === f.subnet) ||
              (overrun && handles[j]!.routeList({ family: 4 }).some((r) => r.dst === f.subnet))) {
            seen[j] = performance.now() - start;
          }
        }
        await sleep(1);
      }
      await put;
      if (ackMs !== undefined) acks.push(ackMs);
      if (tracing) trace('bench.single', { subnet: f.subnet, ackMs, ms: seen.map((x) => (x === undefined ? null : Math.round(x * 10) / 10)) });
      for (const x of seen) {
        if (x === undefined) missing++;
        else samples.push(x);
      }
      await sleep(20);
    }
    const prop = {
      puts: s.puts,
      samples: samples.length,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
      maxMs: samples.length ? Math.max(...samples) : undefined,
      missing,
      ackP50Ms: percentile(acks, 50),
      ackP99Ms: percentile(acks, 99),
    };
    step(`${s.puts} single puts x ${lab.hosts.length} hosts: put -> route p50 ${prop.p50Ms?.toFixed(1)} ms, p99 ${prop.p99Ms?.toFixed(1)} ms${missing ? `, ${missing} missing` : ''}`);
    return {
      hosts: lab.hosts.length,
      leases: fakes.length,
      entriesExpected: 3 * fakes.length,
      putSeconds: first.writeSeconds,
      convergeSeconds: first.convergeSeconds,
      convergeSecondsMax: first.convergeSecondsMax,
      entriesFound: first.entriesFound,
      series: first.series,
      burstCpu: first.cpu,
      rssBeforeMiB: rssBefore,
      rssAfterMiB: rssAfter,
      responsiveness,
      removal,
      again,
      propagation: prop,
    };
  } finally {
    bulk.close();
    await pollers.stop();
    for (const m of monitors) m.close();
    for (const e of entries) e.close();
    for (const h of handles) h.close();
  }
}

const times = (c: readonly (number | undefined)[]): string => c.map((x) => (x === undefined ? 'TIMEOUT' : `${x.toFixed(2)} s`)).join(', ');
const mib = (b: number | undefined) => (b === undefined ? NaN : b / 2 ** 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
