import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HealthServer, type HealthSource } from '../../../daemon/health.js';
import { EVENT_LOOP_TICK_MS, forwarderTotals } from '../../../daemon/metrics.js';
import { EVENT_LOOP_TICK_MS as BENCH_TICK_MS } from '../../../bench/responsiveness.js';
import type { ForwarderStats } from '../../../backend/udp/engine.js';
import { createLogger } from '../../../daemon/logger.js';
import { SystemdNotifier } from '../../../daemon/systemd.js';
import type { Backend, BackendStats } from '../../../backend/backend.js';
import { WEFTD_NODE_FLAGS } from '../../../lib/node-flags.js';

const quiet = createLogger('silent');

test('systemd notifier: no NOTIFY_SOCKET, no messages', () => {
  const sent: string[] = [];
  const n = new SystemdNotifier(quiet, {}, (_p, m) => sent.push(m));
  n.status('x');
  n.ready('y');
  assert.is(n.enabled, false);
  assert.equal(sent, []);
});

test('systemd notifier: READY carries a status line; a send failure is logged, not thrown', () => {
  const sent: Array<[string, string]> = [];
  const n = new SystemdNotifier(quiet, { NOTIFY_SOCKET: '@weft-test' }, (p, m) => sent.push([p, m]));
  n.status('acquiring a subnet lease\nfor 192.0.2.11');
  n.ready('ready: subnet 10.244.3.0/24');
  assert.equal(sent, [
    ['@weft-test', 'STATUS=acquiring a subnet lease for 192.0.2.11'],
    ['@weft-test', 'READY=1\nSTATUS=ready: subnet 10.244.3.0/24'],
  ]);
  const lines: string[] = [];
  const failing = new SystemdNotifier(createLogger('warn', {}, (l) => lines.push(l)), { NOTIFY_SOCKET: '/run/nope' }, () => {
    throw Object.assign(new Error('notify /run/nope: No such file or directory'), { code: 'ENOENT' });
  });
  failing.ready('x');
  assert.is(lines.length, 1);
  assert.match(lines[0]!, /"code":"ENOENT"/);
});

test('systemd notifier: watchdog only with WATCHDOG_USEC and a matching WATCHDOG_PID', async () => {
  const sent: string[] = [];
  const n = new SystemdNotifier(quiet, { NOTIFY_SOCKET: '@w', WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid) }, (_p, m) => sent.push(m));
  const other = new SystemdNotifier(quiet, { NOTIFY_SOCKET: '@w', WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' }, (_p, m) => sent.push(`other ${m}`));
  await new Promise((r) => setTimeout(r, 230));
  n.stopping();
  other.stopping();
  const dogs = sent.filter((m) => m === 'WATCHDOG=1').length;
  assert.ok(dogs >= 3 && dogs <= 6, `WATCHDOG=1 every 50 ms: ${dogs}`);
  assert.not.ok(sent.includes('other WATCHDOG=1'));
  assert.ok(sent.includes('STOPPING=1'));
});

function fakeSource(over: Partial<HealthSource> = {}, stats: Partial<BackendStats> = {}): HealthSource {
  const s: BackendStats = { peersKnown: 2, peersProgrammed: 2, kernelErrors: 3, invalidPeers: 1, deviceRecreated: 0, ...stats };
  const backend = { stats: () => s } as unknown as Backend;
  return {
    phase: () => 'ready',
    leaseExpiry: () => new Date(2_000_000_000_000),
    leaseExpiresInSeconds: () => 86000,
    leaseRecoveries: () => 2,
    subnet: () => '10.244.3.0/24',
    backend: () => backend,
    etcd: () => ({ lastContact: new Date(), reconnects: 4, watchResyncs: 1, invalidLeases: 5, leaseConflicts: 7, conflictingLeases: 1 }),
    kernelErrors: () => [{ op: 'neigh show', errno: 'EINTR', count: 3 }, { op: 'route replace', errno: 'ENOBUFS', count: 1 }],
    probeEtcd: async () => true,
    ...over,
  };
}

test('health: /readyz is 503 until every known peer is programmed', async () => {
  const h = new HealthServer(fakeSource({}, { peersProgrammed: 1 }), quiet);
  const r = await h.handle('/readyz', 'GET');
  assert.is(r.code, 503);
  assert.equal(JSON.parse(r.body), { ok: false, phase: 'ready', subnet: '10.244.3.0/24', peersKnown: 2, peersProgrammed: 1, peersSkipped: 0, skipped: [], forwardRules: 'off' });
  assert.is((await new HealthServer(fakeSource({ phase: () => 'syncing' }), quiet).handle('/readyz', 'GET')).code, 503);
  assert.is((await new HealthServer(fakeSource(), quiet).handle('/readyz', 'GET')).code, 200);
});

test('health: /readyz reports the forward rules, and is 503 while they cannot be put in place', async () => {
  const checkedAt = new Date(1_700_000_000_000);
  const fwd = (ok: boolean, detail: string) => () => ({ ok, detail, repairs: 2, checkedAt });
  const bad = await new HealthServer(fakeSource({ forwardRules: fwd(false, 'iptables-restore of WEFT-FWD failed: no such table') }), quiet).handle('/readyz', 'GET');
  assert.is(bad.code, 503);
  assert.equal(JSON.parse(bad.body).forwardRules, { ok: false, detail: 'iptables-restore of WEFT-FWD failed: no such table', repairs: 2, checkedAt: checkedAt.toISOString() });
  const good = await new HealthServer(fakeSource({ forwardRules: fwd(true, 'repaired: no jump from FORWARD to WEFT-FWD') }), quiet).handle('/readyz', 'GET');
  assert.is(good.code, 200);
  assert.is(JSON.parse(good.body).forwardRules.detail, 'repaired: no jump from FORWARD to WEFT-FWD');
});

const SKIPPED = { subnet: '10.244.9.0/24', publicIp: '198.51.100.13', path: 'skipped' as const, reason: '198.51.100.13 is reached via gateway 192.0.2.1: not on this host\'s L2 segment', since: new Date(0) };

test('health: a skipped peer (host-gw behind a gateway) is listed in /readyz, named with why, and does not hold readiness back', async () => {
  const paths = [{ subnet: '10.244.5.0/24', publicIp: '192.0.2.12', path: 'direct' as const, since: new Date(0) }, SKIPPED];
  const h = new HealthServer(fakeSource({}, { peersProgrammed: 1, peersSkipped: 1, paths }), quiet);
  const r = await h.handle('/readyz', 'GET');
  assert.is(r.code, 200);
  assert.equal(JSON.parse(r.body).skipped, [{ subnet: '10.244.9.0/24', publicIp: '198.51.100.13', reason: SKIPPED.reason }]);
  assert.is(JSON.parse(r.body).peersSkipped, 1);
});

test('metrics: skipped peers counted, peers by path, each peer\'s path as weft_peer_path{peer,path} only with --metrics-peer-paths, path changes counted', async () => {
  const paths = [{ subnet: '10.244.5.0/24', publicIp: '192.0.2.12', path: 'direct' as const, since: new Date(0) }, { subnet: '10.244.6.0/24', publicIp: '198.51.100.12', path: 'vxlan' as const, since: new Date(0) }, SKIPPED];
  const src = fakeSource({}, { peersKnown: 3, peersProgrammed: 2, peersSkipped: 1, paths, pathChanges: 4 });
  const perPeer = [
    'weft_peer_path{peer="10.244.5.0/24",path="direct"} 1',
    'weft_peer_path{peer="10.244.6.0/24",path="vxlan"} 1',
    'weft_peer_path{peer="10.244.9.0/24",path="skipped"} 1',
  ];
  const m = (await new HealthServer(src, quiet).handle('/metrics', 'GET')).body;
  for (const line of [
    'weft_peers{state="skipped"} 1',
    'weft_peers_by_path{path="direct"} 1',
    'weft_peers_by_path{path="vxlan"} 1',
    'weft_peers_by_path{path="udp"} 0',
    'weft_peers_by_path{path="skipped"} 1',
    'weft_peer_path_changes_total 4',
  ]) {
    assert.ok(m.includes(`\n${line}\n`), line);
  }
  assert.not.match(m, /weft_peer_path\{/, 'no per-peer series by default');
  const all = (await new HealthServer(src, quiet, { perPeerPaths: true }).handle('/metrics', 'GET')).body;
  for (const line of perPeer) assert.ok(all.includes(`\n${line}\n`), line);
  assert.ok(all.includes('\n# TYPE weft_peer_path gauge\n'));
});

test('metrics: one scrape reads the backend\'s stats once, the next scrape reads them again', async () => {
  let reads = 0;
  const s: BackendStats = { peersKnown: 1, peersProgrammed: 1, kernelErrors: 0, invalidPeers: 0, deviceRecreated: 0, paths: [SKIPPED], pathChanges: 0 };
  const h = new HealthServer(fakeSource({ backend: () => ({ stats: () => { reads++; return s; } }) as unknown as Backend }), quiet, { perPeerPaths: true });
  await h.handle('/metrics', 'GET');
  assert.is(reads, 1);
  s.peersKnown = 7;
  assert.match((await h.handle('/metrics', 'GET')).body, /\nweft_peers\{state="known"\} 7\n/);
  assert.is(reads, 2);
});

test('health: /healthz probes etcd when it has been quiet, and says unreachable when the probe fails', async () => {
  let probes = 0;
  const h = new HealthServer(fakeSource({ etcd: () => ({ reconnects: 0, watchResyncs: 0, invalidLeases: 0, leaseConflicts: 0, conflictingLeases: 0 }), probeEtcd: async () => { probes++; throw new Error('down'); } }), quiet);
  const r = await h.handle('/healthz', 'GET');
  assert.is(r.code, 503);
  assert.is(JSON.parse(r.body).etcd, 'unreachable');
  await h.handle('/healthz', 'GET');
  assert.is(probes, 1, 'at most one probe per second');
});

test('metrics: counters mirror the backend, etcd and forwarder counters', async () => {
  const drops = { no_route: 0, ttl: 0, unknown_peer: 2, spoofed_source: 1, wrong_destination: 3, malformed: 0, tun_write_error: 0, send_error: 0 };
  const forwarder: ForwarderStats = { engine: 'native', running: true, txPackets: 10, rxPackets: 7, txBytes: 1000, rxBytes: 700, icmpSent: 4, icmpSuppressed: 6, drops, peers: {} };
  const h = new HealthServer(fakeSource({}, { forwarder }), quiet);
  const m = (await h.handle('/metrics', 'GET')).body;
  for (const line of [
    'weft_kernel_operation_errors_total 3',
    'weft_etcd_reconnects_total 4',
    'weft_invalid_leases_total 5',
    'weft_lease_expiry_timestamp_seconds 2000000000',
    'weft_forwarder_packets_total{direction="tx"} 10',
    'weft_forwarder_drops_total{reason="wrong_destination"} 3',
    'weft_forwarder_icmp_total{result="suppressed"} 6',
    'weft_forwarder_drops_total{reason="unknown_peer"} 2',
    'weft_forwarder_drops_total{reason="no_route"} 0',
    'weft_lease_expiry_seconds 86000',
    'weft_lease_recoveries_total 2',
    'weft_netlink_errors_total{op="neigh show",errno="EINTR"} 3',
    'weft_netlink_errors_total{op="route replace",errno="ENOBUFS"} 1',
    'weft_lease_conflicts_total 7',
    'weft_conflicting_leases 1',
  ]) {
    assert.ok(m.includes(`\n${line}\n`), line);
  }
  // Scraped twice, counters do not double.
  const again = (await h.handle('/metrics', 'GET')).body;
  assert.ok(again.includes('\nweft_etcd_reconnects_total 4\n'));
  assert.is(forwarderTotals(undefined), undefined);
  // One prefix for every metric, the process metrics too.
  const names = m.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]!);
  assert.ok(names.includes('weft_process_resident_memory_bytes'));
  // The event-loop delay (perf_hooks.monitorEventLoopDelay) since the last scrape.
  for (const n of ['weft_nodejs_eventloop_lag_p99_seconds', 'weft_nodejs_eventloop_lag_max_seconds']) assert.ok(names.includes(n), n);
  assert.equal(names.filter((n) => !n.startsWith('weft_')), []);
});

test('metrics: the event-loop gauges read the monitor\'s tick plus the delay (idle p50 is about the tick), and the bench subtracts the same tick', async () => {
  assert.is(BENCH_TICK_MS, EVENT_LOOP_TICK_MS);
  const h = new HealthServer(fakeSource(), quiet);
  await h.handle('/metrics', 'GET'); // resets the histogram
  await new Promise((r) => setTimeout(r, 300));
  const m = (await h.handle('/metrics', 'GET')).body;
  const p50 = Number(/^weft_nodejs_eventloop_lag_p50_seconds ([0-9.e+-]+)$/m.exec(m)?.[1]);
  assert.ok(p50 >= 0.9 * EVENT_LOOP_TICK_MS / 1000, `idle p50 ${p50} s, tick ${EVENT_LOOP_TICK_MS} ms`);
});

test('deploy/weftd.service passes systemd-analyze verify without a single warning', () => {
  const unit = fileURLToPath(new URL('../../../../deploy/weftd.service', import.meta.url));
  const text = readFileSync(unit, 'utf8');
  assert.match(text, /^Type=notify$/m);
  assert.match(text, /^After=network-online\.target etcd\.service$/m);
  assert.match(text, /^EnvironmentFile=-\/etc\/default\/weftd$/m);
  // verify checks that ExecStart exists; the binary is installed later, so point it at a stand-in.
  const dir = mkdtempSync(join(tmpdir(), 'weft-unit-'));
  try {
    const copy = join(dir, 'weftd.service');
    writeFileSync(copy, text.replace(/^ExecStart=\S+/m, 'ExecStart=/bin/true'));
    const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    assert.is(r.error, undefined, 'systemd-analyze runs (Debian package systemd)');
    assert.is(r.status, 0, r.stderr);
    assert.is((r.stdout + r.stderr).trim(), '', 'no warnings');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('weftd\'s shebang runs node with WEFTD_NODE_FLAGS (what the lab\'s agents get), and starts as the kernel would run it', () => {
  const script = fileURLToPath(new URL('../../../cmd/weftd.js', import.meta.url));
  const line = readFileSync(script, 'utf8').split('\n')[0]!;
  assert.is(line, `#!/usr/bin/env -S node ${WEFTD_NODE_FLAGS.join(' ')}`);
  // The kernel passes everything after the interpreter as one argument, then the script.
  const [interp, ...rest] = line.slice(2).split(' ');
  const r = spawnSync(interp!, [rest.join(' '), script, '--version'], { encoding: 'utf8', env: { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` } });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /\d+\.\d+\.\d+/);
});

test.run();
