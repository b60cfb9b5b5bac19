// weftd with the host-gw backend, end to end: 3 hosts on one segment, 2
// containers each, real pings; iproute2 as the oracle that each host's routes
// are exactly the other hosts' leases (`<subnet> nhid <N> proto 87`, each
// through a nexthop object `via <PublicIP> dev eth0`: `ip -j nexthop`);
// flannel's lease format; kill -9 and restart without a lost ping; a departed
// host's route gone within 2 s.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer, type LabHost } from '../../../../lab/lab.js';
import { pingAllPairs, startPinger } from '../../../../lab/ping.js';
import { PREFIX, putNetworkConfig, restartAgent, startCluster, waitFor, waitReady, weftNexthops, weftRoutes, weftStatus, kernelRoutes, type AgentReady, type LabAgent } from '../../../../lab/agent.js';

let lab: Lab;
const agents = new Map<string, LabAgent>();
const ready = new Map<string, AgentReady>();
let containers: LabContainer[] = [];

/** The lab hosts' leases straight from etcd: key suffix → raw value. */
async function leases(): Promise<Map<string, { subnet: string; publicIp: string; raw: string }>> {
  const all = await lab.etcd!.client().getAll().prefix(`${PREFIX}/subnets/`).strings();
  const out = new Map<string, { subnet: string; publicIp: string; raw: string }>();
  for (const [k, v] of Object.entries(all)) {
    const subnet = k.slice(k.lastIndexOf('/') + 1).replace('-', '/');
    out.set(subnet, { subnet, publicIp: (JSON.parse(v) as { PublicIP: string }).PublicIP, raw: v });
  }
  return out;
}

/** What each host's routes must be: one per other lease, via its PublicIP on the underlay. */
async function assertRoutesMatchLeases(hosts: LabHost[] = lab.hosts.filter((h) => agents.has(h.name))) {
  const all = [...(await leases()).values()];
  for (const h of hosts) {
    const want = all.filter((l) => l.publicIp !== h.underlayIp).map((l) => `${l.subnet} via ${l.publicIp} dev eth0`).sort();
    assert.equal(await weftRoutes(lab, h.ns), want, `routes of ${h.name}`);
    // Each through its own object: one per peer, none left over from a departed one.
    assert.ok((await kernelRoutes(lab, h.ns, ['proto', '87'])).every((r) => r.nhid !== undefined), `routes of ${h.name} go through nexthop objects`);
    assert.equal(await weftNexthops(lab, h.ns), all.filter((l) => l.publicIp !== h.underlayIp).map((l) => `via ${l.publicIp} dev eth0`).sort(), `nexthop objects of ${h.name}`);
  }
}

test.before(async () => {
  lab = await Lab.create({ hosts: 3 });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'host-gw' } });
  const c = await startCluster(lab, { perHost: 2 });
  for (const u of c.agents) {
    agents.set(u.host.name, u.agent);
    ready.set(u.host.name, u.ready);
  }
  containers = c.containers;
});

test.after(async () => {
  await lab?.destroy();
});

test('leases are flannel\'s host-gw JSON (no BackendData); MTU is the underlay\'s; no tunnel device', async () => {
  const all = await leases();
  assert.is(all.size, 3);
  for (const h of lab.hosts) {
    const l = [...all.values()].find((x) => x.publicIp === h.underlayIp)!;
    assert.is(l.raw, `{"PublicIP":"${h.underlayIp}","PublicIPv6":null,"BackendType":"host-gw"}`);
    assert.is(ready.get(h.name)!.mtu, 1500);
    const kinds = ((await lab.ipJson(h.ns, ['-d', 'link', 'show'])) as Array<{ ifname: string; linkinfo?: { info_kind?: string } }>).map((x) => x.linkinfo?.info_kind ?? x.ifname);
    assert.not.ok(kinds.some((k) => k === 'vxlan' || k === 'tun'), `${h.name}: ${kinds.join(',')}`);
  }
});

test('each host\'s routes match the leases exactly (ip route show proto 87)', async () => {
  await assertRoutesMatchLeases();
});

test('every container pings every other, across hosts and on the same host', async () => {
  assert.is((await pingAllPairs(lab, containers)).length, 6 * 5);
});

test('weft status: each peer\'s path is direct, and it answers', async () => {
  const { code, status, text } = await weftStatus(lab, agents.get('h1')!);
  assert.is(code, 0, text);
  assert.is(status.node.backend, 'host-gw');
  assert.equal(status.peers.map((p: { path: string; reachable: boolean }) => `${p.path} ${p.reachable}`), ['direct true', 'direct true']);
  assert.match(text, /^Device {4}none \(host-gw: each peer's subnet is routed via its PublicIP\)$/m);
  assert.match(text, /10\.244\.\d+\.0\/24\s+192\.0\.2\.1[23]\s+host-gw\s+direct\s+10\.244\.\d+\.1\s+3\/3/);
});

test('kill -9 and restart of an agent while containers ping every 10 ms: zero lost pings, routes unchanged', async () => {
  const a = agents.get('h2')!;
  const before = await weftRoutes(lab, a.host.ns);
  const [c1, c2, c3] = [1, 2, 3].map((i) => containers.find((c) => c.host.index === i)!);
  const p1 = startPinger(c1!.ns, c2!.ip, 10);
  const p2 = startPinger(c2!.ns, c3!.ip, 10);
  await new Promise((r) => setTimeout(r, 500));
  await lab.stop(a.proc, { signal: 'SIGKILL' });
  await new Promise((r) => setTimeout(r, 300));
  await restartAgent(lab, a);
  const r = await waitReady(lab, a);
  await new Promise((res) => setTimeout(res, 700));
  const [s1, s2] = [await p1.stop(), await p2.stop()];
  assert.ok(s1.sent > 100, `pinger sent ${s1.sent}`);
  assert.is(s1.lost, 0, `h1->h2 lost ${s1.lost} of ${s1.sent}: seqs ${s1.lostSeqs.join(',')}`);
  assert.is(s2.lost, 0, `h2->h3 lost ${s2.lost} of ${s2.sent}: seqs ${s2.lostSeqs.join(',')}`);
  assert.is(r.subnet, ready.get('h2')!.subnet, 'same subnet after the restart');
  assert.equal(await weftRoutes(lab, a.host.ns), before);
  await assertRoutesMatchLeases();
});

test('a route deleted by hand is back within 2.5 s (route notification, not the 10 s resync)', async () => {
  const h = lab.host(1);
  const [victim] = await weftRoutes(lab, h.ns);
  const dst = victim!.split(' ')[0]!;
  const del = await lab.execIn(h.ns, 'sh', ['-c', `ip route del ${dst} proto 87 && ip -j route show proto 87`]);
  assert.is(del.code, 0, del.stderr);
  assert.not.ok(del.stdout.includes(dst), 'the route really was deleted');
  const ms = await waitFor('the route to be restored', 2500, async () => (await weftRoutes(lab, h.ns)).includes(victim!));
  console.log(`  route deleted by hand -> restored after ${ms} ms`);
});

test('a nexthop object deleted by hand, its route with it (no route notification), is back within 2.5 s', async () => {
  const h = lab.host(2);
  const before = await weftRoutes(lab, h.ns);
  const [victim] = await kernelRoutes(lab, h.ns, ['proto', '87']);
  const del = await lab.execIn(h.ns, 'sh', ['-c', `ip nexthop del id ${victim!.nhid} && ip -j route show proto 87`]);
  assert.is(del.code, 0, del.stderr);
  assert.not.ok(del.stdout.includes(victim!.dst), 'the route went with its object');
  const ms = await waitFor('the route and its object to be restored', 2500, async () => JSON.stringify(await weftRoutes(lab, h.ns)) === JSON.stringify(before));
  console.log(`  nexthop object deleted by hand -> restored after ${ms} ms`);
  await assertRoutesMatchLeases([h]);
});

test('a host leaves (agent stopped, lease deleted): its route is gone from the others within 2 s', async () => {
  const a = agents.get('h3')!;
  await lab.stop(a.proc, { signal: 'SIGTERM' });
  assert.is(a.proc.exitCode, 0);
  const own = [...(await leases()).values()].find((l) => l.publicIp === a.host.underlayIp)!;
  await lab.etcd!.client().delete().key(`${PREFIX}/subnets/${own.subnet.replace('/', '-')}`);
  agents.delete('h3');
  const ms = await waitFor(`${own.subnet} to vanish from h1 and h2`, 2000, async () => {
    for (const h of [lab.host(1), lab.host(2)]) if ((await weftRoutes(lab, h.ns)).some((r) => r.startsWith(own.subnet))) return false;
    return true;
  });
  console.log(`  lease deleted -> route gone after ${ms} ms`);
  await assertRoutesMatchLeases();
  await pingAllPairs(lab, containers.filter((c) => c.host.index !== 3));
});

test.run();
