// Control-plane scale, in its own lab (3 hosts running weftd with kernel VXLAN):
//  1. N remote leases written into etcd at once (a few large transactions, as
//     fast as etcd takes them: the bench measures weft, not its own puts) →
//     time until each agent's host holds all 3N kernel entries (neighbour +
//     FDB + route, counted from netlink dumps; the routes kept as a time series per host),
//     and the agents' resident memory before and after;
//  2. then, with those N peers in place, one new lease at a time → the time
//     from its put to its route existing on every host (netlink monitor).
// The fake leases are valid vxlan leases, each with its own PublicIP (two
// leases with one PublicIP are a conflict weftd skips): from 198.18.0.0/15,
// RFC 2544's range for benchmarks, on no interface and never reached: the
// entries are PERMANENT and no traffic flows.
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { PREFIX, putNetworkConfig, type AgentReady, type LabAgent, startAgents } from '../lab/agent.js';
import type { Lab } from '../lab/lab.js';
import { NetlinkHandle, NetlinkMonitor, RTMGRP_IPV4_ROUTE } from '../netlink/index.js';
import { EtcdBulk } from './etcd-bulk.js';
import { HostEntries, WantedEntries } from './control-plane-entries.js';
import { cpuSeconds, cpuTimes, machineBusySeconds, rssBytes, runQueueWaitSeconds } from './proc-stats.js';
import { HEALTHZ_FLAGS, HealthzPollers, type Responsiveness, scrapeEventLoop } from './responsiveness.js';
import { percentile } from './stats.js';
import { trace, tracing } from '../lib/trace.js';
import type { Step } from './measure.js';

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
/** Puts per etcd transaction (the lab's etcd runs with --max-txn-ops raised to match; ~200 KB, under its 1.5 MiB request limit). */
export const TXN_OPS = 1000;
const VXLAN_DEV = 'weft.1';
/** A host is dumped (checked) once its monitor has reported no change for this long. */
const QUIET_MS = 100;
/** How long a quiet host's confirming dump waits for the other hosts to finish programming. */
const CHECK_WAIT_MS = 2000;

export interface ControlPlaneSettings {
  hosts: number;
  leases: number;
  puts: number;
  /** Give up waiting for convergence after this long. */
  timeoutMs: number;
}

export interface ControlPlaneResult {
  hosts: number;
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
  /**
   * CPU seconds from the put until each host converged: each weftd's user and system (kernel: its
   * netlink requests are served in its own context), etcd's, the bench's own (counting included) and
   * the whole machine's busy time (all cores, whatever else runs), over `seconds` (until the last host).
   */
  burstCpu: {
    agents: { user: number; system: number }[];
    /** Per agent: seconds its main thread was runnable but waited for a CPU, until that host converged (undefined: no schedstats). */
    agentsWaiting?: (number | undefined)[];
    etcd: number | undefined; bench: number; machineBusy: number; seconds: number;
  };
  /** /healthz answer times and weftd's event-loop delay while the N leases are programmed. */
  responsiveness: Responsiveness;
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
    // What the monitors queued before the put (the agents' start) is not a change of the burst.
    for (const e of entries) e.poll();
    const busyFrom = Date.now();
    const etcdPid = lab.etcd!.members[0]?.pid;
    const cpu0 = { agents: agents.map((a) => cpuTimes(a.proc.pid!)), etcd: etcdPid === undefined ? undefined : cpuSeconds(etcdPid), bench: process.cpuUsage(), busy: machineBusySeconds() };
    const agentCpu: { user: number; system: number }[] = agents.map(() => ({ user: NaN, system: NaN }));
    const wait0 = agents.map((a) => runQueueWaitSeconds(a.proc.pid!));
    const agentsWaiting: (number | undefined)[] = agents.map(() => undefined);
    const t0 = performance.now();
    trace('bench.put', { leases: fakes.length });
    // "At once": transactions of TXN_OPS puts each, all in flight together on one connection (etcd-bulk.ts).
    const txns: Promise<unknown>[] = [];
    for (let i = 0; i < fakes.length; i += TXN_OPS) {
      txns.push(bulk.txn(fakes.slice(i, i + TXN_OPS)).then((revision) => {
        trace('bench.txn', { first: i, revision });
        return revision;
      }));
    }
    const putting = Promise.all(txns).then(() => (performance.now() - t0) / 1000);
    const converge: (number | undefined)[] = handles.map(() => undefined);
    const found: [number, number, number][] = handles.map(() => [0, 0, 0]);
    const deadline = t0 + s.timeoutMs;
    let putSeconds: number | undefined;
    void putting.then((x) => { putSeconds = x; });
    let lastReport = 0;
    const series: { t: number; routes: number[] }[] = [{ t: 0, routes: handles.map(() => 0) }];
    const lastCheck = handles.map(() => -Infinity);
    const shortWithRoutes = handles.map(() => false);
    let changed = false;
    // Every host's monitor is read every 10 ms, also while a host is dumped (asynchronously: tens to
    // hundreds of ms under load), so a dump does not delay when another host's last route change is seen.
    const pollAll = () => {
      for (const [i, e] of entries.entries()) {
        if (converge[i] !== undefined) continue;
        const routes = e.poll();
        changed ||= routes !== found[i]![2];
        found[i]![2] = routes;
      }
    };
    const poller = setInterval(pollAll, 10);
    try {
      while (converge.some((c) => c === undefined) && performance.now() < deadline) {
        const round = performance.now();
        changed = false;
        pollAll();
        for (const [i, e] of entries.entries()) {
          if (converge[i] !== undefined) continue;
          const routes = found[i]![2];
          // Dumped (the check) once the host has been quiet for a moment: when every route is there, else
          // every second if the monitor lost changes (an overrun: its route count may be short).
          const now = performance.now();
          if (now - e.lastChange < QUIET_MS || (routes < fakes.length && (e.overruns === 0 || now - lastCheck[i]! < 1000))) continue;
          // Its confirming dump (tens of thousands of entries to decode) waits while another host is still
          // programming, so it does not take their CPUs (up to CHECK_WAIT_MS; the host's time is its last change anyway).
          const othersBusy = entries.some((x, j) => j !== i && converge[j] === undefined && (found[j]![2] < fakes.length || now - x.lastChange < QUIET_MS));
          if (othersBusy && e.overruns === 0 && now - e.lastChange < CHECK_WAIT_MS) continue;
          lastCheck[i] = now;
          const dumped = await e.dumpCounts();
          pollAll();
          if (!dumped) continue;
          found[i] = dumped;
          changed = true;
          // Complete, and no route changed since the dump began: complete since the host's last route
          // change, unless a check found it short while every route was there (a neighbour or FDB entry
          // may have come since without a route change) or the monitor lost changes: then since this dump.
          const complete = dumped.every((n) => n === fakes.length);
          if (complete && e.lastChange < now) {
            converge[i] = ((shortWithRoutes[i] || e.overruns > 0 ? now : e.lastChange) - t0) / 1000;
            const [a, b] = [cpu0.agents[i], cpuTimes(agents[i]!.proc.pid!)];
            if (a && b) agentCpu[i] = { user: b.user - a.user, system: b.system - a.system };
            const w = runQueueWaitSeconds(agents[i]!.proc.pid!);
            if (w !== undefined && wait0[i] !== undefined) agentsWaiting[i] = w - wait0[i]!;
          } else if (!complete && routes >= fakes.length) {
            shortWithRoutes[i] = true;
          }
        }
        if (changed || performance.now() - t0 - 1000 * series.at(-1)!.t > 250) series.push({ t: (performance.now() - t0) / 1000, routes: found.map((f) => f[2]) });
        if (tracing) trace('bench.count', { routes: found.map((f) => f[2]), ms: Math.round(performance.now() - round), busy: machineBusySeconds(), cpu: agents.map((a) => cpuSeconds(a.proc.pid!)) });
        if (performance.now() - lastReport > 2000) {
          lastReport = performance.now();
          step(`  ${((performance.now() - t0) / 1000).toFixed(1)} s: routes per host ${found.map((f) => f[2]).join(', ')} of ${fakes.length}`);
        }
        await sleep(20);
      }
    } finally {
      clearInterval(poller);
    }
    const overruns = entries.map((e) => e.overruns);
    if (overruns.some((n) => n > 0)) step(`  the hosts' route monitors overran ${overruns.join(', ')} times (those hosts were timed by their dumps)`);
    const benchCpu = process.cpuUsage(cpu0.bench);
    const etcdCpu = etcdPid === undefined ? undefined : cpuSeconds(etcdPid);
    const burstCpu = {
      agents: agentCpu,
      agentsWaiting,
      etcd: etcdCpu === undefined || cpu0.etcd === undefined ? undefined : etcdCpu - cpu0.etcd,
      bench: (benchCpu.user + benchCpu.system) / 1e6,
      machineBusy: machineBusySeconds() - cpu0.busy,
      seconds: (performance.now() - t0) / 1000,
    };
    step(`CPU seconds until converged: weftd ${agentCpu.map((c) => `${c.user.toFixed(2)} user + ${c.system.toFixed(2)} sys`).join(', ')} ` +
      `(its main thread waiting for a CPU ${agentsWaiting.map((w) => (w === undefined ? '?' : w.toFixed(2))).join(', ')} s); etcd ${burstCpu.etcd?.toFixed(2)}, bench ${burstCpu.bench.toFixed(2)}; machine busy ${burstCpu.machineBusy.toFixed(2)} of ${(cpus().length * burstCpu.seconds).toFixed(2)} CPU-s (${cpus().length} CPUs)`);
    putSeconds ??= await putting;
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
    const done = converge.filter((c): c is number => c !== undefined);
    step(`${fakes.length} leases (${putSeconds.toFixed(2)} s to put): all ${3 * fakes.length} entries after ${converge.map((c) => (c === undefined ? 'TIMEOUT' : `${c.toFixed(2)} s`)).join(', ')}; RSS ${rssAfter.map((r) => `${r.toFixed(0)} MiB`).join(', ')}`);

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
      putSeconds,
      convergeSeconds: converge,
      convergeSecondsMax: done.length === converge.length ? Math.max(...done) : undefined,
      entriesFound: found,
      series,
      burstCpu,
      rssBeforeMiB: rssBefore,
      rssAfterMiB: rssAfter,
      responsiveness,
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

const mib = (b: number | undefined) => (b === undefined ? NaN : b / 2 ** 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
