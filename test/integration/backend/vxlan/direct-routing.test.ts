// VXLAN with DirectRouting on the two-segment lab: h1, h2 on segment a, h3, h4
// on segment b, one container each. Same-segment pairs get a direct route
// (`<subnet> via <PublicIP> dev eth0 proto 87`) and no VXLAN entries, and the
// VXLAN devices' tx counters do not move while such a pair exchanges 10 MB;
// cross-segment pairs use VXLAN; every pair pings. Then h2 moves to segment b
// (its port re-plugged, re-addressed, host routes announce its PublicIP
// there): within 3 s every host has switched its path to h2 (and h2 its
// paths to the others), and every pair pings again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer, type LabHost } from '../../../../lab/lab.js';
import { ping, pingAllPairs } from '../../../../lab/ping.js';
import { moveHost } from '../../../../lab/segments.js';
import { logRecords, putNetworkConfig, startCluster, waitFor, weftRoutes, weftStatus, type StartedAgent } from '../../../../lab/agent.js';

const DEV = 'weft.1';
let lab: Lab;
let agents: StartedAgent[];
let containers: LabContainer[] = [];
const subnetOf = (h: LabHost) => agents.find((u) => u.host === h)!.ready.subnet;
const on = (i: number) => containers.find((c) => c.host.index === i)!;

/** What host h's routes should be: a direct route to each peer on its segment, a VXLAN route to the others. */
function expectedRoutes(h: LabHost): string[] {
  return lab.hosts
    .filter((p) => p !== h)
    .map((p) => (p.segment === h.segment ? `${subnetOf(p)} via ${p.underlayIp} dev eth0` : `${subnetOf(p)} via ${subnetOf(p).replace(/\/24$/, '')} dev ${DEV} onlink`))
    .sort();
}

async function vxlanEntries(h: LabHost): Promise<{ neigh: string[]; fdb: string[] }> {
  const neigh = (await lab.ipJson(h.ns, ['neigh', 'show', 'dev', DEV])) as Array<{ dst: string }>;
  const fdb = (await lab.bridgeJson(h.ns, ['fdb', 'show', 'dev', DEV])) as Array<{ dst?: string }>;
  return { neigh: neigh.map((n) => n.dst).sort(), fdb: fdb.filter((f) => f.dst).map((f) => f.dst!).sort() };
}

async function txCounters(h: LabHost): Promise<{ packets: number; bytes: number }> {
  const [l] = (await lab.ipJson(h.ns, ['-s', 'link', 'show', DEV])) as Array<{ stats64: { tx: { packets: number; bytes: number } } }>;
  return { packets: l!.stats64.tx.packets, bytes: l!.stats64.tx.bytes };
}

const MB10 = 10 * 1024 * 1024;

/** 10 MiB each way over TCP between two containers; resolves with the bytes each side received. */
async function exchange10MB(a: LabContainer, b: LabContainer): Promise<{ atA: number; atB: number }> {
  const server = lab.spawnIn(b.ns, process.execPath, ['-e', `
    const s = require('net').createServer((c) => {
      let got = 0; c.on('data', (d) => { got += d.length; });
      c.on('end', () => { console.log('GOT ' + got); c.end(); s.close(); setTimeout(() => process.exit(0), 100); });
      c.write(Buffer.alloc(${MB10}, 7));
    });
    s.listen(7001, '${b.ip}', () => console.log('LISTENING'));
    setTimeout(() => process.exit(3), 20000);`], { logName: `exchange-server-${b.name}` });
  await waitFor('the exchange server to listen', 5000, () => lab.readLog(server).includes('LISTENING'));
  const r = await lab.execIn(a.ns, process.execPath, ['-e', `
    const c = require('net').connect(7001, '${b.ip}', () => { c.write(Buffer.alloc(${MB10}, 9)); c.end(); });
    let got = 0; c.on('data', (d) => { got += d.length; });
    c.on('close', () => { console.log('GOT ' + got); process.exit(0); });
    c.on('error', (e) => { console.error(e.message); process.exit(1); });
    setTimeout(() => process.exit(2), 20000);`], { timeoutMs: 25_000 });
  await waitFor('the exchange server to report', 5000, () => /GOT \d+/.test(lab.readLog(server)));
  return { atA: Number(/GOT (\d+)/.exec(r.stdout)?.[1] ?? -1), atB: Number(/GOT (\d+)/.exec(lab.readLog(server))![1]) };
}

test.before(async () => {
  lab = await Lab.create({ hosts: 4, topology: 'two-segments', segmentBHosts: 2 });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'vxlan', DirectRouting: true } });
  ({ agents, containers } = await startCluster(lab));
});

test.after(async () => {
  await lab?.destroy();
});

test('same segment: direct routes and no VXLAN entries; across the router: VXLAN', async () => {
  for (const h of lab.hosts) {
    assert.equal(await weftRoutes(lab, h.ns), expectedRoutes(h), `routes of ${h.name}`);
    const far = lab.hosts.filter((p) => p.segment !== h.segment);
    assert.equal(await vxlanEntries(h), { neigh: far.map((p) => subnetOf(p).replace(/\/24$/, '')).sort(), fdb: far.map((p) => p.underlayIp).sort() }, `VXLAN entries of ${h.name}`);
  }
});

test('every pair pings', async () => {
  await pingAllPairs(lab, containers);
});

test('10 MB between same-segment containers: the VXLAN devices\' tx counters do not move; across the router they do', async () => {
  for (const [a, b] of [[1, 2], [3, 4]] as const) {
    const before = await Promise.all([txCounters(lab.host(a)), txCounters(lab.host(b))]);
    const r = await exchange10MB(on(a), on(b));
    const after = await Promise.all([txCounters(lab.host(a)), txCounters(lab.host(b))]);
    assert.equal(r, { atA: MB10, atB: MB10 }, 'both sides got all 10 MiB');
    console.log(`  h${a}c1 <-> h${b}c1: 10 MiB each way; ${DEV} tx packets h${a} +${after[0]!.packets - before[0]!.packets}, h${b} +${after[1]!.packets - before[1]!.packets}`);
    assert.equal(after, before, `${DEV} tx counters of h${a}, h${b}`);
  }
  // The counters do count: a cross-segment exchange goes through the device.
  const before = await txCounters(lab.host(1));
  const p = await ping(on(1).ns, on(3).ip, { count: 20, intervalMs: 10, timeoutS: 2 });
  assert.is(p.received, 20);
  assert.ok((await txCounters(lab.host(1))).packets - before.packets >= 20, 'VXLAN tx packets for the cross-segment pings');
});

test('weft status shows each peer\'s path', async () => {
  const { status } = await weftStatus(lab, agents[0]!.agent);
  const byIp = Object.fromEntries(status.peers.map((p: { publicIp: string; path: string }) => [p.publicIp, p.path]));
  assert.equal(byIp, { '192.0.2.12': 'direct', '198.51.100.13': 'vxlan', '198.51.100.14': 'vxlan' });
});

test('h2 moves to segment b: within 3 s every host switched its path to h2 (and h2 its own), then every pair pings', async () => {
  const h2 = lab.host(2);
  await moveHost(lab, h2, 'b');
  const ms = await waitFor('every host\'s routes to follow the move', 3000, async () => {
    for (const h of lab.hosts) if (JSON.stringify(await weftRoutes(lab, h.ns)) !== JSON.stringify(expectedRoutes(h))) return false;
    return true;
  }).catch(async (e) => {
    const now = await Promise.all(lab.hosts.map(async (h) => `${h.name}:\n  ${(await weftRoutes(lab, h.ns)).join('\n  ')}\n  want\n  ${expectedRoutes(h).join('\n  ')}`));
    throw new Error(`${(e as Error).message}\n${now.join('\n')}`);
  });
  console.log(`  h2 moved -> every path switched after ${ms} ms`);
  assert.equal(await vxlanEntries(h2), { neigh: [subnetOf(lab.host(1)).replace(/\/24$/, '')], fdb: ['192.0.2.11'] }, 'h2 reaches h1 over VXLAN now, h3 and h4 directly');
  assert.equal((await vxlanEntries(lab.host(1))).fdb, ['192.0.2.12', '198.51.100.13', '198.51.100.14']);
  assert.equal((await vxlanEntries(lab.host(3))).fdb, ['192.0.2.11']);
  const moved = logRecords(lab, agents[0]!.agent).filter((r) => r.msg === 'peer path changed');
  assert.equal(moved.map((r) => `${r.publicIp} ${r.from} -> ${r.path}`), ['192.0.2.12 direct -> vxlan']);
  await pingAllPairs(lab, containers);
});

test.run();
