// How responsive each weftd stays while it programs many peers: /healthz
// answer times (polled every POLL_INTERVAL_MS by bench/http-probe.js inside the
// host's namespace) and the event-loop delay weftd itself measures
// (perf_hooks.monitorEventLoopDelay, served in /metrics as
// weft_nodejs_eventloop_lag_{p99,max}_seconds, reset at every scrape). The monitor records
// the time between two of its 10 ms ticks (an idle weftd reads p50 ≈ 10.2 ms), so the delay
// reported here is the reading minus that tick.
import { fileURLToPath } from 'node:url';
import type { Lab, LabHost, TrackedProcess } from '../lab/lab.js';
import { percentile } from './stats.js';

const PROBE = fileURLToPath(new URL('./http-probe.js', import.meta.url));
export const HEALTHZ_PORT = 9101;
/** weftd flags that serve /healthz and /metrics where the probe reaches them. */
export const HEALTHZ_FLAGS = ['--healthz-ip', '127.0.0.1', '--healthz-port', String(HEALTHZ_PORT)] as const;
/**
 * Every 100 ms: often enough for a distribution (40-50 answers per host in a 10,000-lease burst),
 * rarely enough not to be the load measured. Every 20 ms, the probes' requests cost each weftd
 * 0.7-1.2 ms of its main thread each (node's HTTP server, on the two CPUs the agents share) and
 * three hosts' bursts ended later (3 hosts, 10,000 leases, 4 rounds each interleaved: every host
 * done after 4.41-5.05 s, median 4.74; every 100 ms 3.70-4.68 s, median 4.20).
 */
export const POLL_INTERVAL_MS = 100;

export interface LatencySummary {
  samples: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** Answers other than 200 (or no answer). */
  failures: number;
}

export interface Responsiveness {
  /** /healthz answer times while idle (before the puts): the baseline. */
  healthzIdle: LatencySummary;
  /** /healthz answer times from the first put until every host converged, all hosts together. */
  healthzBusy: LatencySummary;
  /** Per host, weftd's own event-loop delay over the same window. */
  eventLoopP99Ms: (number | undefined)[];
  eventLoopMaxMs: (number | undefined)[];
}

export class HealthzPollers {
  private readonly procs: TrackedProcess[];

  constructor(private readonly lab: Lab, hosts: readonly LabHost[]) {
    this.procs = hosts.map((h) =>
      lab.spawnIn(h.ns, process.execPath, [PROBE, 'poll', `http://127.0.0.1:${HEALTHZ_PORT}/healthz`, String(POLL_INTERVAL_MS)], { logName: `healthz-poll-${h.name}` }));
  }

  /** Latencies of answers sent in [fromMs, toMs) (epoch ms), all hosts together. */
  window(fromMs: number, toMs: number): LatencySummary {
    const lat: number[] = [];
    let failures = 0;
    for (const p of this.procs) {
      for (const line of this.lab.readLog(p).split('\n')) {
        const [t, ms, status] = line.split(' ').map(Number);
        if (t === undefined || ms === undefined || !Number.isFinite(t) || t < fromMs || t >= toMs) continue;
        lat.push(ms);
        if (status !== 200) failures++;
      }
    }
    return { samples: lat.length, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat.length ? Math.max(...lat) : undefined, failures };
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.lab.stop(p)));
  }
}

/** weftd's event-loop monitor tick (daemon/metrics.ts EVENT_LOOP_TICK_MS; the bench may not import the daemon). */
export const EVENT_LOOP_TICK_MS = 10;

/** Scrapes one host's /metrics: the event-loop delay p99 and max (ms, beyond the monitor's tick) since the previous scrape. */
export async function scrapeEventLoop(lab: Lab, h: LabHost): Promise<{ p99Ms: number | undefined; maxMs: number | undefined }> {
  const r = await lab.execIn(h.ns, process.execPath, [PROBE, 'get', `http://127.0.0.1:${HEALTHZ_PORT}/metrics`], { timeoutMs: 20_000 });
  const value = (name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(r.stdout);
    return m ? Math.max(0, Number(m[1]) * 1000 - EVENT_LOOP_TICK_MS) : undefined;
  };
  return { p99Ms: value('weft_nodejs_eventloop_lag_p99_seconds'), maxMs: value('weft_nodejs_eventloop_lag_max_seconds') };
}
