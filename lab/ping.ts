// Reachability probes built on iputils ping (run inside a namespace):
//   ping(ns, dst, opts)            one bounded run, parsed statistics
//   pingMatrix(lab, containers)    every container to every other, bounded parallelism
//   startPinger(ns, dst, ms)       a background pinger for "no lost pings during X" tests
import { execIn, spawnIn, stopProcess, type ExecOptions, type ExecResult } from './netns.js';

export interface PingResult {
  sent: number;
  received: number;
  lossPct: number;
  /** NaN when nothing came back. */
  rttAvgMs: number;
  /** Per-reply round-trip times in order of arrival. */
  rtts: number[];
  /** The raw output, for assertion messages. */
  output: string;
}

export interface PingOptions {
  /** Default 3. */
  count?: number;
  /** Default 200. Below 200 ms needs root (the lab runs as root). */
  intervalMs?: number;
  /** How long to wait for a reply after the last packet (ping -W). Default 1. */
  timeoutS?: number;
  /** The echo requests' TTL, or hop limit over IPv6 (ping -t). Default: the system's. */
  ttl?: number;
}

/** Parses iputils `ping -n` output, or busybox ping's (in the runtimes' containers): replies and the statistics block. */
export function parsePing(output: string): PingResult {
  const stats = /(\d+) packets transmitted, (\d+) (?:packets )?received(?:, \+\d+ duplicates)?(?:, \+\d+ errors)?, ([\d.]+)% packet loss/.exec(output);
  if (!stats) throw new Error(`ping output has no statistics line:\n${output}`);
  const rtts = [...output.matchAll(/bytes from .*(?:icmp_)?seq=\d+.* time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const avg = /(?:rtt min\/avg\/max\/mdev|round-trip min\/avg\/max) = [\d.]+\/([\d.]+)\//.exec(output);
  return {
    sent: Number(stats[1]),
    received: Number(stats[2]),
    lossPct: Number(stats[3]),
    rttAvgMs: avg ? Number(avg[1]) : NaN,
    rtts,
    output,
  };
}

/** Runs a command where the pinger lives: in a namespace, or in a container through its runtime. */
export type Exec = (cmd: string, args: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

export async function ping(from: string | Exec, dstIp: string, opts: PingOptions = {}): Promise<PingResult> {
  const count = opts.count ?? 3;
  const intervalMs = opts.intervalMs ?? 200;
  const timeoutS = opts.timeoutS ?? 1;
  // busybox ping (containers) has no -n and prints numbers anyway; -W there is the wait after the last packet too.
  const busybox = typeof from !== 'string';
  const args = [...(busybox ? [] : ['-n']), '-c', String(count), '-i', (intervalMs / 1000).toFixed(3), '-W', String(timeoutS), ...(opts.ttl === undefined ? [] : ['-t', String(opts.ttl)]), dstIp];
  const run: Exec = typeof from === 'string' ? (c, a, o) => execIn(from, c, a, o) : from;
  const r = await run('ping', args, { timeoutMs: count * intervalMs + timeoutS * 1000 + 5000 });
  // Exit 1 = no reply (still prints statistics); 2 = another error (bad address, no route).
  if (r.code === 2 && !/packets transmitted/.test(r.stdout)) {
    return { sent: 0, received: 0, lossPct: 100, rttAvgMs: NaN, rtts: [], output: `${r.stdout}${r.stderr}` };
  }
  return parsePing(r.stdout + r.stderr);
}

/** A pinger and a destination: a namespace (iputils ping), or a container with `exec` (its own ping). */
export interface PingTarget { name: string; ip: string; ns?: string; exec?: Exec }
export interface PingPair { from: string; to: string; dstIp: string; result: PingResult }

/** Every container pings every other container's IP (count 2, 4 probes at a time). */
export async function pingMatrix(
  lab: { containers: PingTarget[] },
  containers: PingTarget[] = lab.containers,
  opts: PingOptions & { parallel?: number } = {},
): Promise<PingPair[]> {
  const jobs: { from: PingTarget; to: PingTarget }[] = [];
  for (const from of containers) for (const to of containers) if (from !== to) jobs.push({ from, to });
  const out: PingPair[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const k = next++;
      const { from, to } = jobs[k]!;
      const result = await ping(from.exec ?? from.ns!, to.ip, { count: 2, intervalMs: 100, timeoutS: 1, ...opts });
      out[k] = { from: from.name, to: to.name, dstIp: to.ip, result };
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.parallel ?? 4, jobs.length) }, worker));
  return out;
}

/** One line per pair: `h1c1 -> h2c1 (10.244.2.2): 2/2`, for assertion messages. */
export function formatPingMatrix(pairs: PingPair[]): string {
  return pairs.map((p) => `${p.from} -> ${p.to} (${p.dstIp}): ${p.result.received}/${p.result.sent}`).join('\n');
}

/** pingMatrix (2 echoes per pair, 3 s to answer) that throws, listing the pairs that lost any; else the pairs. */
export async function pingAllPairs(lab: { containers: PingTarget[] }, containers: PingTarget[] = lab.containers): Promise<PingPair[]> {
  const pairs = await pingMatrix(lab, containers, { count: 2, intervalMs: 200, timeoutS: 3 });
  const bad = pairs.filter((p) => p.result.received !== p.result.sent || p.result.sent === 0);
  if (bad.length) throw new Error(`${bad.length} of ${pairs.length} pairs lost pings:\n${formatPingMatrix(bad)}`);
  return pairs;
}

export interface PingerStats {
  /** Echo requests sent, minus the trailing unanswered ones still in flight at stop(). */
  sent: number;
  /** Distinct icmp_seq answered. */
  received: number;
  lost: number;
  /** The first lost sequence numbers (at most 50). */
  lostSeqs: number[];
  /** Trailing unanswered requests sent in the last ~30 ms before stop(): not counted as sent. */
  inFlight: number;
  /** Errors ping reported in its statistics (+N errors: ICMP errors, e.g. host unreachable). */
  errors: number;
  output: string;
}

export interface Pinger {
  readonly pid: number | undefined;
  /** With `timestamps`: when each reply arrived so far (epoch ms, from ping -D), in order; else []. */
  replyTimes(): readonly number[];
  stop(): Promise<PingerStats>;
}

/**
 * Starts `ping -n -l 2 -i <intervalMs/1000> dstIp` in ns (whole ms only); stop() sends SIGINT and
 * counts replies by icmp_seq. Run it shorter than 65536 × interval (seq wraps).
 * Silent drops keep the rate; an unresolved neighbour (no ARP answer) makes
 * iputils back off to a few packets per second, so assert on `lost`, not on
 * `sent`, when the path may break.
 */
export function startPinger(ns: string, dstIp: string, intervalMs = 10, opts: { timestamps?: boolean } = {}): Pinger {
  // -l 2: iputils paces intervals >= 10 ms (one CLK_TCK) coarsely, ~16 ms for 10 ms; a preload
  // of 2 lets its token bucket catch up, so the average rate is the requested one.
  // -D: each line starts with [epoch.micros], the arrival time of that reply.
  const p = spawnIn(ns, 'ping', ['-n', '-l', '2', ...(opts.timestamps ? ['-D'] : []), '-i', (intervalMs / 1000).toFixed(3), dstIp], { stdio: 'pipe' });
  let output = '';
  const times: number[] = [];
  let parsed = 0;
  p.stdout!.setEncoding('utf8').on('data', (d: string) => {
    output += d;
    if (!opts.timestamps) return;
    const end = output.lastIndexOf('\n') + 1;
    for (const m of output.slice(parsed, end).matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=\d+/gm)) times.push(Number(m[1]) * 1000);
    parsed = Math.max(parsed, end);
  });
  p.stderr!.setEncoding('utf8').on('data', (d: string) => { output += d; });
  const closed = new Promise<void>((r) => p.once('close', () => r()));
  let stopped: Promise<PingerStats> | undefined;
  return {
    pid: p.pid,
    replyTimes: () => times,
    stop() {
      stopped ??= (async () => {
        await stopProcess(p, { signal: 'SIGINT', graceMs: 2000 });
        await closed; // stdout fully read
        const m = /(\d+) packets transmitted/.exec(output);
        if (!m) throw new Error(`pinger ${ns} -> ${dstIp} printed no statistics:\n${output.slice(-2000)}`);
        const transmitted = Number(m[1]);
        const answered = new Set([...output.matchAll(/bytes from .*icmp_seq=(\d+)/g)].map((x) => Number(x[1])));
        let inFlight = 0;
        const allowance = Math.max(1, Math.ceil(30 / intervalMs));
        while (inFlight < allowance && transmitted - inFlight > 0 && !answered.has(transmitted - inFlight)) inFlight++;
        const sent = transmitted - inFlight;
        const lostSeqs: number[] = [];
        let lost = 0;
        for (let seq = 1; seq <= sent; seq++) {
          if (!answered.has(seq)) { lost++; if (lostSeqs.length < 50) lostSeqs.push(seq); }
        }
        const errors = Number(/\+(\d+) errors/.exec(output)?.[1] ?? 0);
        return { sent, received: sent - lost, lost, lostSeqs, inFlight, errors, output };
      })();
      return stopped;
    },
  };
}
