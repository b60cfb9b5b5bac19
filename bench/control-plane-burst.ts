// One burst of the control-plane bench: a set of lease puts (or deletes)
// written into etcd at once, then the time until every host holds exactly
// the wanted kernel entries (all of them after puts, none after deletes),
// and the CPU each process spent meanwhile. The hosts' route monitors say
// when a host last changed (and give the time series); a dump of the three
// kinds confirms it once it has been quiet (control-plane-entries.ts).
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { LabAgent } from '../lab/agent.js';
import { trace, tracing } from '../lib/trace.js';
import type { HostEntries } from './control-plane-entries.js';
import { type BulkOp, EtcdBulk } from './etcd-bulk.js';
import type { Step } from './measure.js';
import { cpuSeconds, cpuTimes, machineBusySeconds, runQueueWaitSeconds } from './proc-stats.js';

/** Operations per etcd transaction (the lab's etcd runs with --max-txn-ops raised to match; ~200 KB, under its 1.5 MiB request limit). */
export const TXN_OPS = 1000;
/** A host is dumped (checked) once its monitor has reported no change for this long. */
const QUIET_MS = 100;
/** How long a quiet host's confirming dump waits for the other hosts to finish programming. */
const CHECK_WAIT_MS = 2000;

export interface BurstCpu {
  agents: { user: number; system: number }[];
  /** Per agent: seconds its main thread was runnable but waited for a CPU, until that host converged (undefined: no schedstats). */
  agentsWaiting?: (number | undefined)[];
  etcd: number | undefined; bench: number; machineBusy: number; seconds: number;
}

export interface BurstResult {
  /** Time to write every operation into etcd. */
  writeSeconds: number;
  /** Per host: seconds from the first write until the dump shows exactly the wanted entries (undefined: not within the timeout). */
  convergeSeconds: (number | undefined)[];
  /** The slowest host. */
  convergeSecondsMax: number | undefined;
  /** Per host, what the last dump found: [neigh, fdb, route]. */
  entriesFound: [number, number, number][];
  /** Wanted routes per host over time: seconds since the first write, and each host's count then. */
  series: { t: number; routes: number[] }[];
  /**
   * CPU seconds from the first write until each host converged: each weftd's user and system (kernel:
   * its netlink requests are served in its own context), etcd's, the bench's own (counting included) and
   * the whole machine's busy time (all cores, whatever else runs), over `seconds` (until the last host).
   */
  cpu: BurstCpu;
}

export interface BurstSetup {
  readonly agents: readonly LabAgent[];
  readonly entries: readonly HostEntries[];
  readonly bulk: EtcdBulk;
  readonly etcdPid: number | undefined;
  readonly timeoutMs: number;
  readonly step: Step;
}

/**
 * Writes `ops` (TXN_OPS per transaction, all in flight together on one connection) and waits
 * until every host holds `expect` of each kind of wanted entry: the number of wanted leases
 * after their puts, 0 after their deletes.
 */
export async function runBurst(b: BurstSetup, ops: readonly BulkOp[], expect: number, what: string): Promise<BurstResult> {
  const { agents, entries } = b;
  // Encoded before the clock starts: the hosts whose leases these are would encode them on their own CPUs.
  const encoded = [];
  for (let i = 0; i < ops.length; i += TXN_OPS) encoded.push({ first: i, txn: EtcdBulk.encode(ops.slice(i, i + TXN_OPS)) });
  // What the monitors queued before (the agents' start, an earlier burst) is not a change of this one.
  for (const e of entries) e.poll();
  const cpu0 = { agents: agents.map((a) => cpuTimes(a.proc.pid!)), etcd: b.etcdPid === undefined ? undefined : cpuSeconds(b.etcdPid), bench: process.cpuUsage(), busy: machineBusySeconds() };
  const agentCpu: { user: number; system: number }[] = agents.map(() => ({ user: NaN, system: NaN }));
  const wait0 = agents.map((a) => runQueueWaitSeconds(a.proc.pid!));
  const agentsWaiting: (number | undefined)[] = agents.map(() => undefined);
  const t0 = performance.now();
  trace('bench.burst', { burst: what, ops: ops.length });
  const txns = encoded.map(({ first, txn }) => b.bulk.txn(txn).then((revision) => {
    trace('bench.txn', { first, revision });
    return revision;
  }));
  const writing = Promise.all(txns).then(() => (performance.now() - t0) / 1000);
  let writeSeconds: number | undefined;
  void writing.then((x) => { writeSeconds = x; }, () => {});
  const converge: (number | undefined)[] = entries.map(() => undefined);
  const found: [number, number, number][] = entries.map((e) => [NaN, NaN, e.poll()]);
  const deadline = t0 + b.timeoutMs;
  let lastReport = 0;
  const series: { t: number; routes: number[] }[] = [{ t: 0, routes: found.map((f) => f[2]) }];
  const lastCheck = entries.map(() => -Infinity);
  const shortWithRoutes = entries.map(() => false);
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
        // Dumped (the check) once the host has been quiet for a moment: when its routes are as wanted, else
        // every second if the monitor lost changes (an overrun: its route count may be wrong).
        const now = performance.now();
        if (now - e.lastChange < QUIET_MS || (routes !== expect && (e.overruns === 0 || now - lastCheck[i]! < 1000))) continue;
        // Its confirming dump (tens of thousands of entries to decode) waits while another host is still
        // programming, so it does not take their CPUs (up to CHECK_WAIT_MS; the host's time is its last change anyway).
        const othersBusy = entries.some((x, j) => j !== i && converge[j] === undefined && (found[j]![2] !== expect || now - x.lastChange < QUIET_MS));
        if (othersBusy && e.overruns === 0 && now - e.lastChange < CHECK_WAIT_MS) continue;
        lastCheck[i] = now;
        const dumped = await e.dumpCounts();
        pollAll();
        if (!dumped) continue;
        found[i] = dumped;
        changed = true;
        // As wanted, and no route changed since the dump began: so since the host's last route change,
        // unless a check found it short while the routes were as wanted (a neighbour or FDB entry may have
        // changed since without a route change) or the monitor lost changes: then since this dump.
        const complete = dumped.every((n) => n === expect);
        if (complete && e.lastChange < now) {
          converge[i] = ((shortWithRoutes[i] || e.overruns > 0 ? now : Math.max(e.lastChange, t0)) - t0) / 1000;
          const [a, z] = [cpu0.agents[i], cpuTimes(agents[i]!.proc.pid!)];
          if (a && z) agentCpu[i] = { user: z.user - a.user, system: z.system - a.system };
          const w = runQueueWaitSeconds(agents[i]!.proc.pid!);
          if (w !== undefined && wait0[i] !== undefined) agentsWaiting[i] = w - wait0[i]!;
        } else if (!complete && routes === expect) {
          shortWithRoutes[i] = true;
        }
      }
      if (changed || performance.now() - t0 - 1000 * series.at(-1)!.t > 250) series.push({ t: (performance.now() - t0) / 1000, routes: found.map((f) => f[2]) });
      if (tracing) trace('bench.count', { routes: found.map((f) => f[2]), ms: Math.round(performance.now() - round), busy: machineBusySeconds(), cpu: agents.map((a) => cpuSeconds(a.proc.pid!)) });
      if (performance.now() - lastReport > 2000) {
        lastReport = performance.now();
        b.step(`  ${((performance.now() - t0) / 1000).toFixed(1)} s: routes per host ${found.map((f) => f[2]).join(', ')}, want ${expect}`);
      }
      await sleep(20);
    }
  } finally {
    clearInterval(poller);
  }
  const overruns = entries.map((e) => e.overruns);
  if (overruns.some((n) => n > 0)) b.step(`  the hosts' route monitors overran ${overruns.join(', ')} times (those hosts were timed by their dumps)`);
  const benchCpu = process.cpuUsage(cpu0.bench);
  const etcdCpu = b.etcdPid === undefined ? undefined : cpuSeconds(b.etcdPid);
  const cpu: BurstCpu = {
    agents: agentCpu,
    agentsWaiting,
    etcd: etcdCpu === undefined || cpu0.etcd === undefined ? undefined : etcdCpu - cpu0.etcd,
    bench: (benchCpu.user + benchCpu.system) / 1e6,
    machineBusy: machineBusySeconds() - cpu0.busy,
    seconds: (performance.now() - t0) / 1000,
  };
  b.step(`${what}: CPU seconds until converged: weftd ${agentCpu.map((c) => `${c.user.toFixed(2)} user + ${c.system.toFixed(2)} sys`).join(', ')} ` +
    `(its main thread waiting for a CPU ${agentsWaiting.map((w) => (w === undefined ? '?' : w.toFixed(2))).join(', ')} s); etcd ${cpu.etcd?.toFixed(2)}, bench ${cpu.bench.toFixed(2)}; machine busy ${cpu.machineBusy.toFixed(2)} of ${(cpus().length * cpu.seconds).toFixed(2)} CPU-s (${cpus().length} CPUs)`);
  writeSeconds ??= await writing;
  const done = converge.filter((c): c is number => c !== undefined);
  return {
    writeSeconds,
    convergeSeconds: converge,
    convergeSecondsMax: done.length === converge.length ? Math.max(...done) : undefined,
    entriesFound: found,
    series,
    cpu,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
