// The chaos suite's report: the seed, each fault with its time, the longest ping gap per
// pair, the outages each fault probably caused, and the totals; plus the verdicts the test
// and `weft chaos` share (each a name, pass/fail and why).
import type { ChaosResult, PairResult } from './chaos.js';

/** Pings may stop for this long without counting as an outage: 5 intervals. */
const outageFactor = 5;
/** A weftd may grow this much over the run. */
export const RSS_SLACK_KIB = 20 * 1024;

export interface Outage { from: string; to: string; startMs: number; endMs: number }

/** The longest gap between consecutive replies of a pair within the run (start of the faults to the end of the checks). */
export function pairGaps(p: PairResult, endMs: number, intervalMs: number): { longestMs: number; outages: Outage[] } {
  const ts = [0, ...p.replies.filter((t) => t > 0 && t < endMs), endMs];
  let longestMs = 0;
  const outages: Outage[] = [];
  for (let i = 1; i < ts.length; i++) {
    const g = ts[i]! - ts[i - 1]!;
    if (g > longestMs) longestMs = g;
    if (g > outageFactor * intervalMs) outages.push({ from: p.from, to: p.to, startMs: ts[i - 1]!, endMs: ts[i]! });
  }
  return { longestMs, outages };
}

export interface Verdict { name: string; ok: boolean; why: string }

export function verdicts(r: ChaosResult): Verdict[] {
  const unexpected = r.processes.filter((p) => p.exit && !p.exit.bySchedule);
  const rss = r.processes.filter((p) => !p.exit && p.baselineRssKiB !== undefined && p.endRssKiB !== undefined);
  const grew = rss.filter((p) => p.endRssKiB! - p.baselineRssKiB! > RSS_SLACK_KIB);
  const pingProblems = r.final.problems.filter((s) => / -> /.test(s));
  const leaseProblems = r.final.problems.filter((s) => /leases:|live leases carry|subnet\.env/.test(s));
  const kernelProblems = r.final.problems.filter((s) => !pingProblems.includes(s) && !leaseProblems.includes(s));
  const within = `within ${r.settleMs / 1000} s of the last fault`;
  const fmt = (xs: string[]) => xs.slice(0, 12).join('; ') + (xs.length > 12 ? `; ... (${xs.length} in all)` : '');
  return [
    { name: 'every pair pings', ok: pingProblems.length === 0, why: pingProblems.length ? `${within}: ${fmt(pingProblems)}` : `all ${r.pairs.length} pairs answer ${within}` },
    { name: 'leases distinct and consistent', ok: leaseProblems.length === 0, why: leaseProblems.length ? fmt(leaseProblems) : 'no two live leases overlap or share a VtepMAC or PublicIP; each host holds one, as its subnet.env says' },
    { name: 'kernel equals the live leases', ok: kernelProblems.length === 0, why: kernelProblems.length ? `${within}: ${fmt(kernelProblems)}` : 'neighbours, FDB and routes (vxlan), TUN route and forwarder peers (udp) match the live leases exactly' },
    { name: 'no weftd exited by itself', ok: unexpected.length === 0, why: unexpected.length ? unexpected.map((p) => `${p.host} pid ${p.pid} at ${(p.exit!.atMs / 1000).toFixed(1)} s (${p.exit!.code ?? p.exit!.signal}): ${p.exit!.logTail?.split('\n').at(-1)}`).join('; ') : `${r.processes.filter((p) => p.exit?.bySchedule).length} exits, all from the schedule's kill -9` },
    { name: `RSS within ${RSS_SLACK_KIB / 1024} MiB of start`, ok: grew.length === 0 && rss.length > 0, why: grew.length ? grew.map((p) => `${p.host} pid ${p.pid} ${mib(p.baselineRssKiB!)} -> ${mib(p.endRssKiB!)} MiB`).join('; ') : `${rss.length} processes measured` },
    { name: 'every fault applied', ok: r.faults.every((f) => !f.error), why: r.faults.filter((f) => f.error).map((f) => `${f.kind} ${f.target}: ${f.error}`).join('; ') || `${r.faults.length} faults` },
  ];
}

const mib = (kib: number) => (kib / 1024).toFixed(1);
const sec = (ms: number) => (ms / 1000).toFixed(3);

export function formatReport(r: ChaosResult): string {
  const endMs = r.lastFaultEndMs + (r.final.convergedAfterMs ?? r.settleMs);
  const lines: string[] = [];
  lines.push(`weft chaos: seed ${r.seed}, ${r.seconds} s of faults, pings every ${r.pingIntervalMs} ms`);
  lines.push(`  ${r.topology}`);
  lines.push(`  replay: weft chaos --seconds ${r.seconds} --seed ${r.seed}`);
  lines.push('', `faults (${r.faults.length}), time from the start of the faults:`);
  const gaps = r.pairs.map((p) => ({ p, ...pairGaps(p, endMs, r.pingIntervalMs) }));
  const outages = gaps.flatMap((g) => g.outages);
  for (const f of r.faults) {
    // An outage is put on the last fault that started before it began (+2 intervals).
    const mine = outages.filter((o) => r.faults.filter((x) => x.startedMs <= o.startMs + 2 * r.pingIntervalMs).at(-1) === f);
    const caused = mine.length ? `  -> outages: ${mine.map((o) => `${o.from}->${o.to} ${sec(o.endMs - o.startMs)} s`).join(', ')}` : '';
    lines.push(`  ${sec(f.startedMs).padStart(8)} s  ${f.kind.padEnd(13)} ${f.target.padEnd(3)} ${f.error ? `NOT APPLIED: ${f.error}` : f.detail}${caused}`);
  }
  lines.push('', 'longest ping gap per pair (sent, lost):');
  for (const g of gaps) {
    lines.push(`  ${`${g.p.from} -> ${g.p.to}`.padEnd(14)} ${g.p.network.padEnd(6)} ${sec(g.longestMs).padStart(7)} s   (${g.p.sent} sent, ${g.p.lost} lost)`);
  }
  lines.push('', `after the last fault (undone at ${sec(r.lastFaultEndMs)} s): ` +
    (r.final.convergedAfterMs !== undefined ? `whole again after ${sec(r.final.convergedAfterMs)} s` : `NOT whole within ${r.settleMs / 1000} s`));
  for (const p of r.final.problems.slice(0, 40)) lines.push(`  - ${p}`);
  if (r.final.problems.length > 40) lines.push(`  ... ${r.final.problems.length - 40} more`);
  for (const [net, ls] of Object.entries(r.final.leases)) lines.push(`  live ${net} leases: ${ls.join(', ')}`);
  lines.push('', 'weftd processes (RSS MiB once ready -> at the end):');
  for (const p of r.processes) {
    const rss = `${p.baselineRssKiB !== undefined ? mib(p.baselineRssKiB) : '?'} -> ${p.endRssKiB !== undefined ? mib(p.endRssKiB) : p.exit ? 'exited' : '?'}`;
    const exit = p.exit ? `, exited at ${sec(p.exit.atMs)} s (${p.exit.code ?? p.exit.signal}${p.exit.bySchedule ? ', the schedule\'s kill' : ', BY ITSELF'})` : '';
    lines.push(`  ${p.host} pid ${p.pid}: ${rss}${exit}`);
  }
  const byKind = new Map<string, number>();
  for (const f of r.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const sent = r.pairs.reduce((s, p) => s + p.sent, 0);
  const lost = r.pairs.reduce((s, p) => s + p.lost, 0);
  const worst = gaps.reduce((w, g) => (g.longestMs > w.longestMs ? g : w), gaps[0]!);
  lines.push('', `totals: ${r.faults.length} faults (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}); ` +
    `${r.pairs.length} pairs, ${sent} pings sent, ${lost} lost (${sent ? ((100 * lost) / sent).toFixed(2) : '0'}%), ` +
    `${outages.length} outages over ${outageFactor * r.pingIntervalMs} ms; longest gap ${sec(worst.longestMs)} s (${worst.p.from} -> ${worst.p.to}); ` +
    `weftd exits: ${r.processes.filter((p) => p.exit?.bySchedule).length} by the schedule, ${r.processes.filter((p) => p.exit && !p.exit.bySchedule).length} by themselves`);
  lines.push('', 'checks:');
  for (const v of verdicts(r)) lines.push(`  ${v.ok ? 'ok  ' : 'FAIL'} ${v.name}: ${v.why}`);
  if (r.garbageLeft.length) lines.push('', `invalid garbage left in etcd on purpose: ${r.garbageLeft.join(', ')}`);
  return lines.join('\n');
}
