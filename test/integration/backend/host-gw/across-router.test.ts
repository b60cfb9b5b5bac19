// host-gw across a router (the lab's two-segments topology): h1 and h2 on
// segment a, h3 on segment b. host-gw cannot reach a peer behind a gateway, so
// each side skips the other: named in the log with why, counted in
// weft_peers{state="skipped"} and weft_peer_path, listed in /readyz and in
// `weft status`; the same-segment pair still pings and the agents stay ready.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer } from '../../../../lab/lab.js';
import { ping } from '../../../../lab/ping.js';
import { logRecords, putNetworkConfig, startCluster, weftRoutes, weftStatus, type StartedAgent } from '../../../../lab/agent.js';

const HEALTHZ = 9102;
let lab: Lab;
let agents: StartedAgent[];
let containers: LabContainer[] = [];

/** GET from inside a host (the health server listens in its namespace). */
async function get(ns: string, path: string): Promise<{ status: number; body: string }> {
  const r = await lab.execIn(ns, process.execPath, ['-e', `fetch('http://127.0.0.1:${HEALTHZ}${path}').then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })), (e) => { console.error(e.message); process.exit(1); })`]);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test.before(async () => {
  lab = await Lab.create({ hosts: 3, topology: 'two-segments', segmentBHosts: 1 });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'host-gw' } });
  ({ agents, containers } = await startCluster(lab, { argsFor: () => ['--healthz-port', String(HEALTHZ), '--metrics-peer-paths'] }));
});

test.after(async () => {
  await lab?.destroy();
});

test('the lab: h1, h2 on segment a, h3 on segment b behind the router; etcd reachable from both (every agent got a lease)', () => {
  assert.equal(lab.hosts.map((h) => `${h.name} ${h.segment} ${h.underlayIp}`), ['h1 a 192.0.2.11', 'h2 a 192.0.2.12', 'h3 b 198.51.100.13']);
  assert.is(new Set(agents.map((u) => u.ready.subnet)).size, 3);
});

test('same-segment peers get routes and ping; the peer across the router gets none', async () => {
  const [s1, s2, s3] = agents.map((u) => u.ready.subnet);
  assert.equal(await weftRoutes(lab, lab.host(1).ns), [`${s2} via 192.0.2.12 dev eth0`]);
  assert.equal(await weftRoutes(lab, lab.host(2).ns), [`${s1} via 192.0.2.11 dev eth0`]);
  assert.equal(await weftRoutes(lab, lab.host(3).ns), []);
  assert.not.ok((await weftRoutes(lab, lab.host(1).ns)).some((r) => r.startsWith(s3!)));
  const p = await ping(containers[0]!.ns, containers[1]!.ip, { count: 3, intervalMs: 200, timeoutS: 2 });
  assert.is(p.received, 3, p.output);
  const back = await ping(containers[1]!.ns, containers[0]!.ip, { count: 3, intervalMs: 200, timeoutS: 2 });
  assert.is(back.received, 3, back.output);
});

test('the skipped peer is named in the log (a warning, once) with why', async () => {
  const h3 = agents[2]!;
  for (const u of agents.slice(0, 2)) {
    const warns = logRecords(lab, u.agent).filter((r) => r.msg === 'peer skipped: this backend cannot reach it');
    assert.is(warns.length, 1, `${u.host.name}: ${JSON.stringify(warns)}`);
    assert.equal([warns[0]!.subnet, warns[0]!.publicIp, warns[0]!.level], [h3.ready.subnet, '198.51.100.13', 'warn']);
    assert.is(warns[0]!.reason, '198.51.100.13 is reached via gateway 192.0.2.1: not on this host\'s L2 segment');
  }
  const fromB = logRecords(lab, h3.agent).filter((r) => r.msg === 'peer skipped: this backend cannot reach it').map((r) => r.publicIp).sort();
  assert.equal(fromB, ['192.0.2.11', '192.0.2.12']);
});

test('metrics count it, /readyz lists it and stays ready', async () => {
  const h1 = lab.host(1);
  const h3 = agents[2]!.ready.subnet;
  const m = (await get(h1.ns, '/metrics')).body;
  assert.match(m, /\nweft_peers\{state="skipped"\} 1\n/);
  assert.match(m, /\nweft_peers\{state="programmed"\} 1\n/);
  assert.match(m, /\nweft_peers_by_path\{path="skipped"\} 1\n/);
  assert.match(m, /\nweft_peers_by_path\{path="direct"\} 1\n/);
  assert.ok(m.includes(`\nweft_peer_path{peer="${h3}",path="skipped"} 1\n`), m.split('\n').filter((l) => l.includes('peer_path')).join('\n'));
  assert.ok(m.includes(`\nweft_peer_path{peer="${agents[1]!.ready.subnet}",path="direct"} 1\n`));
  const r = await get(h1.ns, '/readyz');
  assert.is(r.status, 200, r.body);
  const body = JSON.parse(r.body);
  assert.equal([body.peersKnown, body.peersProgrammed, body.peersSkipped], [2, 1, 1]);
  assert.equal(body.skipped, [{ subnet: h3, publicIp: '198.51.100.13', reason: '198.51.100.13 is reached via gateway 192.0.2.1: not on this host\'s L2 segment' }]);
});

test('weft status shows it as skipped, with why, and exits 1 (its containers are unreachable from here)', async () => {
  const { code, status, text } = await weftStatus(lab, agents[0]!.agent);
  assert.is(code, 1, text);
  const byPath = Object.fromEntries(status.peers.map((p: { publicIp: string; path: string }) => [p.publicIp, p.path]));
  assert.equal(byPath, { '192.0.2.12': 'direct', '198.51.100.13': 'skipped' });
  const s3 = agents[2]!.ready.subnet;
  assert.match(text, new RegExp(`${s3.replace(/\./g, '\\.')}\\s+198\\.51\\.100\\.13\\s+host-gw\\s+skipped\\s+\\S+\\s+0/0\\s+not probed`));
  assert.ok(text.includes(`${s3} skipped: 198.51.100.13 is reached via gateway 192.0.2.1: not on this host's L2 segment`), text);
});

test.run();
