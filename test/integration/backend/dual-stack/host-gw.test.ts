// Dual stack on host-gw: three weft hosts on a dual-stack segment; each
// peer's IPv6 subnet is routed via its PublicIPv6 (weft's protocol), every
// container pings every other over both families, and 10 MB of TCP over IPv6
// arrives intact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab } from '../../../../lab/lab.js';
import { ping, pingAllPairs } from '../../../../lab/ping.js';
import { installWeftPlugin } from '../../../../lab/cni.js';
import { Prefix } from '../../../../lib/ip.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkedTransfer } from '../../../../lab/transfer.js';
import { putNetworkConfig, startCluster, waitFor, WEFT, weftStatus, type StartedAgent } from '../../../../lab/agent.js';
import type { LabContainer } from '../../../../lab/lab.js';

let lab: Lab;
let agents: StartedAgent[];
let containers: LabContainer[];

async function routes6(ns: string): Promise<string[]> {
  const rs = (await lab.ipJson(ns, ['-6', 'route', 'show', 'proto', '87'])) as Array<{ dst: string; gateway?: string; dev: string }>;
  return rs.map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`).sort();
}

test.before(async () => {
  lab = await Lab.create({ hosts: 3, ipv6: true });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:244::/48', Backend: { Type: 'host-gw' } });
  ({ agents, containers } = await startCluster(lab));
});

test.after(async () => {
  await lab?.destroy();
});

test('each host routes every peer\'s IPv6 subnet via its PublicIPv6 on eth0, proto 87, and nothing else', async () => {
  for (const u of agents) {
    const want = agents.filter((p) => p !== u).map((p) => `${p.ready.ipv6!.subnet} via ${p.host.underlayIpv6} dev eth0`).sort();
    await waitFor(`${u.host.name}'s IPv6 routes`, 3000, async () => JSON.stringify(await routes6(u.host.ns)) === JSON.stringify(want));
    assert.equal(await routes6(u.host.ns), want);
  }
});

test('every container pings every other over IPv4 and over IPv6', async () => {
  await pingAllPairs(lab, containers);
  await pingAllPairs(lab, containers.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6! })));
});

test('10 MB of TCP over IPv6 arrives intact (sha256)', async () => {
  const [a, b] = containers.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6! }));
  const r = await checkedTransfer(lab, a!, b!, { bytes: 10 * 1024 * 1024, port: 7206 });
  assert.is(r.receivedSha, r.sentSha);
  assert.is(r.receivedBytes, r.bytes);
});

test('weft status: each peer\'s IPv6 half on its own row, path direct (via its PublicIPv6), ICMPv6 echo answered', async () => {
  const u = agents[0]!;
  const s = await weftStatus(lab, u.agent);
  assert.is(s.code, 0, s.text);
  const rows = s.status.peers.map((p: { family: number; subnet: string; publicIp: string; path: string; received: number }) => `${p.family} ${p.subnet} ${p.publicIp} ${p.path} ${p.received}`).sort();
  const want = agents.slice(1).flatMap((o) => [`4 ${o.ready.subnet} ${o.host.underlayIp} direct 3`, `6 ${o.ready.ipv6!.subnet} ${o.host.underlayIpv6} direct 3`]).sort();
  assert.equal(rows, want);
  assert.match(s.text, `IPv6      subnet ${u.ready.ipv6!.subnet} of fd00:10:244::/48, public IPv6 ${u.host.underlayIpv6}, device none`);
});

test('CNI: weft\'s plugin (as flannel) reads FLANNEL_IPV6_* from the subnet file: the container gets an address of each subnet, routes to both networks, and pings a peer\'s container over IPv6', async () => {
  const u = agents[0]!;
  const dir = join(u.host.dir, 'cni6');
  mkdirSync(dir, { recursive: true });
  const cniPath = await installWeftPlugin(WEFT, join(lab.dir, 'cni-bin'));
  const conflist = join(dir, 'weft6.conflist');
  writeFileSync(conflist, JSON.stringify({
    cniVersion: '1.0.0', name: 'weft6',
    plugins: [{ type: 'flannel', subnetFile: u.agent.subnetFile, dataDir: join(dir, 'flannel'), ipam: { dataDir: join(dir, 'ipam') }, delegate: { bridge: 'weft0', ipMasq: false } }],
  }));
  const c = await lab.addContainer(u.host, { conflist, cniPath, name: `${u.host.name}cni` });
  assert.ok(Prefix.parse(u.ready.subnet).contains(c.ip), `${c.ip} in ${u.ready.subnet}`);
  assert.ok(c.ipv6 && Prefix.parse(u.ready.ipv6!.subnet).contains(c.ipv6), `${c.ipv6} in ${u.ready.ipv6!.subnet}`);
  const r4 = (await lab.ipJson(c.ns, ['-4', 'route', 'show'])) as Array<{ dst: string; gateway?: string }>;
  const r6 = (await lab.ipJson(c.ns, ['-6', 'route', 'show'])) as Array<{ dst: string; gateway?: string }>;
  assert.ok(r4.some((r) => r.dst === '10.244.0.0/16' && r.gateway === u.ready.gateway), JSON.stringify(r4));
  assert.ok(r6.some((r) => r.dst === 'fd00:10:244::/48' && r.gateway === u.ready.ipv6!.gateway), JSON.stringify(r6));
  const peer = containers.find((x) => x.host !== u.host)!;
  const p = await ping(c.ns, peer.ipv6!, { count: 3, intervalMs: 200, timeoutS: 3 });
  assert.ok(p.received > 0, `ping -6 ${peer.ipv6} from the CNI container: ${JSON.stringify(p)}`);
  const back = await ping(peer.ns, c.ipv6!, { count: 2, intervalMs: 200, timeoutS: 3 });
  assert.is(back.received, back.sent);
  await lab.removeContainer(c);
});

test.run();
