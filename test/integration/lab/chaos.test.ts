// The chaos suite in CI: 20 s of seeded random faults on a 5-host lab with a 3-member etcd
// (lab/chaos.ts), then the checks of issue 12, each its own test. The whole report is printed;
// a failing run replays with WEFT_CHAOS_SEED=<seed> (or `weft chaos --seconds 20 --seed <seed>`).
// WEFT_CHAOS_SECONDS and WEFT_CHAOS_FAULTS (comma-separated kinds) change the run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runChaos, type ChaosResult } from '../../../lab/chaos.js';
import { formatReport, pairGaps, RSS_SLACK_KIB } from '../../../lab/chaos-report.js';
import { FAULT_KINDS, type FaultKind } from '../../../lab/chaos-schedule.js';

const seconds = Number(process.env.WEFT_CHAOS_SECONDS ?? 20);
// A fixed default seed: CI sees the same schedule every run (every kind of fault occurs in it).
const seed = process.env.WEFT_CHAOS_SEED === 'random' ? Math.floor(Math.random() * 0xffffffff) : Number(process.env.WEFT_CHAOS_SEED ?? 12);
// Fault kinds weftd on main cannot recover from yet, each with the work that makes it: left out of
// the CI run until that lands (WEFT_CHAOS_FAULTS=all, or `weft chaos`, runs them).
// (None now: lease-delete runs since weftd watches its own lease and puts it back, issue 12.)
const PENDING: Partial<Record<FaultKind, string>> = {};
const env = process.env.WEFT_CHAOS_FAULTS;
const kinds: FaultKind[] = env === 'all' ? [...FAULT_KINDS] : env ? (env.split(',') as FaultKind[]) : FAULT_KINDS.filter((k) => !PENDING[k]);
let r: ChaosResult;

test.before(async () => {
  for (const [k, why] of Object.entries(PENDING)) if (!kinds.includes(k as FaultKind)) console.log(`  (not in this run: ${k}: ${why})`);
  r = await runChaos({ seconds, seed, kinds, log: (l) => console.log(`  ${l}`) });
  console.log(formatReport(r).replace(/^/gm, '  '));
});

test('the schedule applied at least one fault every 2 s, every kind of fault, each undone in the window', () => {
  const starts = [0, ...r.faults.map((f) => f.startedMs), seconds * 1000 - 1000];
  for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! - starts[i - 1]! <= 2100, `no fault between ${starts[i - 1]} and ${starts[i]} ms`);
  assert.equal([...new Set(r.faults.map((f) => f.kind))].sort(), [...kinds].sort());
  for (const f of r.faults) assert.not.ok(f.error, `${f.kind} ${f.target} at ${f.startedMs} ms was not applied: ${f.error}`);
  // A route delete can miss when another fault removed the route first, but not every one:
  // `ip route del <dst> dev <dev>` matched no route through a nexthop object, and all failed.
  const routeDeletes = r.faults.filter((f) => f.kind === 'route-delete' && f.detail.startsWith('ip route del'));
  assert.ok(routeDeletes.length === 0 || routeDeletes.some((f) => !f.detail.includes('(failed')), `no route-delete fault deleted a route: ${routeDeletes.map((f) => f.detail).join('; ')}`);
  assert.ok(r.lastFaultEndMs < seconds * 1000 + 4000, `the last fault was undone at ${r.lastFaultEndMs} ms`);
});

test('within 5 s of the last fault every pair of containers pings', () => {
  const silent = r.final.problems.filter((p) => / -> /.test(p));
  assert.equal(silent, [], `pairs not answering ${r.settleMs} ms after the last fault`);
  for (const p of r.pairs) assert.ok(p.replies.some((t) => t > r.lastFaultEndMs), `${p.from} -> ${p.to}: no reply after the last fault`);
});

test('no two leases share a subnet (or a VtepMAC or a PublicIP); each host holds one, as its subnet.env says', () => {
  assert.equal(r.final.problems.filter((p) => /leases:|live leases carry|subnet\.env/.test(p)), []);
  for (const ls of Object.values(r.final.leases)) assert.ok(ls.length > 0);
});

test('each host\'s kernel entries (ip -j neigh, bridge -j fdb, ip -j route) and forwarder peers equal the live leases exactly', () => {
  assert.equal(r.final.problems.filter((p) => !/ -> |leases:|live leases carry|subnet\.env/.test(p)), []);
  assert.ok(r.final.convergedAfterMs !== undefined && r.final.convergedAfterMs <= r.settleMs);
});

test('no weftd exited except those the schedule killed', () => {
  const own = r.processes.filter((p) => p.exit && !p.exit.bySchedule);
  assert.equal(own.map((p) => `${p.host} pid ${p.pid} (${p.exit!.code ?? p.exit!.signal}): ${p.exit!.logTail}`), []);
  assert.is(r.processes.filter((p) => p.exit?.bySchedule).length, r.faults.filter((f) => f.kind === 'weftd-kill').length);
});

test('the RSS of each weftd stays within 20 MiB of its start', () => {
  const measured = r.processes.filter((p) => !p.exit && p.baselineRssKiB !== undefined && p.endRssKiB !== undefined);
  assert.ok(measured.length >= 5, `only ${measured.length} processes measured`);
  for (const p of measured) assert.ok(p.endRssKiB! - p.baselineRssKiB! <= RSS_SLACK_KIB, `${p.host} pid ${p.pid}: ${p.baselineRssKiB} -> ${p.endRssKiB} KiB`);
});

test('the report names the seed, each fault, the longest gap per pair and the totals', () => {
  const text = formatReport(r);
  assert.match(text, `seed ${seed}`);
  assert.match(text, 'longest ping gap per pair');
  assert.match(text, /^totals: /m);
  for (const p of r.pairs) assert.ok(pairGaps(p, r.lastFaultEndMs, r.pingIntervalMs).longestMs > 0);
});

test.run();
