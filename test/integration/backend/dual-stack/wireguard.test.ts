// Dual stack on the wireguard backend (flannel's separate mode), on wireguard-go
// (this kernel has no WireGuard; `auto` picks it as on any such host): three weft
// hosts on a dual-stack segment, each with weft-wg (IPv4, 51820) and weft-wg-v6
// (IPv6, 51821) under one key. wg(8) and iproute2 are the oracles for the IPv6
// device against the leases; every container pings every other over both
// families, and 10 MB of TCP over IPv6 arrive intact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { Lab, type LabContainer, type LabHost } from '../../../../lab/lab.js';
import { pingAllPairs } from '../../../../lab/ping.js';
import { checkedTransfer } from '../../../../lab/transfer.js';
import { PREFIX, putNetworkConfig, startCluster, waitFor, weftStatus, type StartedAgent } from '../../../../lab/agent.js';
import { wgDump } from '../../../../lab/wireguard.js';

const NETWORK = '10.244.0.0/16';
const IPV6_NETWORK = 'fd00:10:244::/48';
const DEV6 = 'weft-wg-v6';

let lab: Lab;
let agents: StartedAgent[];
let containers: LabContainer[];

interface WgLease { key: string; v4: string; v6: string; value: Record<string, any> } // eslint-disable-line @typescript-eslint/no-explicit-any

async function leases(): Promise<WgLease[]> {
  const all = await lab.etcd!.client().getAll().prefix(`${PREFIX}/subnets/`).strings();
  return Object.entries(all).map(([key, v]) => {
    const m = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/.exec(key)!;
    return { key, v4: `${m[1]}/${m[2]}`, v6: `${m[3]}/${m[4]}`, value: JSON.parse(v) };
  });
}

const leaseOf = (all: WgLease[], h: LabHost) => all.find((l) => l.value.PublicIP === h.underlayIp)!;

test.before(async () => {
  lab = await Lab.create({ hosts: 3, ipv6: true });
  await putNetworkConfig(lab, { Network: NETWORK, EnableIPv6: true, IPv6Network: IPV6_NETWORK, Backend: { Type: 'wireguard' } });
  ({ agents, containers } = await startCluster(lab, { argsFor: (h) => ['--wireguard-key-file', join(h.dir, 'wireguard.key')] }));
});

test.after(async () => {
  await lab?.destroy();
});

test('each lease is flannel\'s dual-stack wireguard lease: one public key, Port 51820 in BackendData, 51821 in BackendV6Data', async () => {
  const all = await leases();
  assert.is(all.length, 3);
  for (const u of agents) {
    const l = leaseOf(all, u.host);
    assert.is(l.v6, u.ready.ipv6!.subnet);
    const key = l.value.BackendData.PublicKey;
    assert.equal(l.value, {
      PublicIP: u.host.underlayIp, PublicIPv6: u.host.underlayIpv6, BackendType: 'wireguard',
      BackendData: { PublicKey: key, Port: 51820 }, BackendV6Data: { PublicKey: key, Port: 51821 },
    });
    assert.is(u.ready.mtu, 1420);
  }
});

test('weft-wg-v6 on each host (wg and ip as oracles) matches the leases: key, port 51821, one peer per other host at [PublicIPv6]:51821 with its IPv6 subnet; <v6 subnet>::/128, the IPv6 network routed in', async () => {
  const all = await leases();
  for (const u of agents) {
    const mine = leaseOf(all, u.host);
    const want = all.filter((l) => l !== mine).map((l) => `${l.value.BackendV6Data.PublicKey} [${l.value.PublicIPv6}]:51821 ${l.v6}`).sort();
    const view = async () => (await wgDump(lab, u.host, DEV6)).peers.map((p) => `${p.publicKey} ${p.endpoint} ${p.allowedIps.join(',')}`).sort();
    await waitFor(`${u.host.name}'s IPv6 WireGuard peers`, 5000, async () => JSON.stringify(await view()) === JSON.stringify(want));
    assert.equal(await view(), want);
    const d = await wgDump(lab, u.host, DEV6);
    assert.is(d.publicKey, mine.value.BackendV6Data.PublicKey);
    assert.is(d.listenPort, 51821);
    // The IPv4 device carries only the IPv4 subnets.
    const d4 = await wgDump(lab, u.host, 'weft-wg');
    assert.is(d4.listenPort, 51820);
    assert.equal(d4.peers.map((p) => p.allowedIps.join(',')).sort(), all.filter((l) => l !== mine).map((l) => l.v4).sort());
    const addrs = (await lab.ipJson(u.host.ns, ['-6', 'addr', 'show', 'dev', DEV6])) as Array<{ addr_info: Array<{ local?: string; prefixlen: number; scope: string }> }>;
    assert.equal(addrs[0]!.addr_info.filter((a) => a.local && a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`), [`${mine.v6.split('/')[0]}/128`]);
    const routes = (await lab.ipJson(u.host.ns, ['-6', 'route', 'show', 'dev', DEV6, 'proto', '87'])) as Array<{ dst: string }>;
    assert.equal(routes.map((r) => r.dst), [IPV6_NETWORK]);
    const [link] = (await lab.ipJson(u.host.ns, ['link', 'show', DEV6])) as Array<{ mtu: number; flags: string[] }>;
    assert.is(link!.mtu, 1420);
    assert.ok(link!.flags.includes('UP'));
  }
});

test('every container pings every other over IPv4 and over IPv6; the IPv6 peers shake hands', async () => {
  await pingAllPairs(lab, containers);
  await pingAllPairs(lab, containers.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6! })));
  for (const p of (await wgDump(lab, agents[0]!.host, DEV6)).peers) {
    assert.ok(p.latestHandshake > 0 && p.rxBytes > 0 && p.txBytes > 0, JSON.stringify(p));
  }
});

test('10 MB of TCP over IPv6 arrive intact (sha256)', async () => {
  const [a, b] = containers.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6! }));
  const r = await checkedTransfer(lab, a!, b!, { bytes: 10 * 1024 * 1024, port: 7207 });
  assert.equal([r.receivedBytes, r.receivedSha], [r.bytes, r.sentSha]);
});

test('weft status lists each peer\'s IPv6 half (IPv6 subnet, PublicIPv6, path wireguard on weft-wg-v6, ICMPv6 answered) beside its IPv4 one', async () => {
  const u = agents[0]!;
  const s = await weftStatus(lab, u.agent);
  assert.is(s.code, 0, s.text);
  assert.is(s.status.node.ipv6.subnet, u.ready.ipv6!.subnet);
  assert.is(s.status.node.ipv6.publicIp, u.host.underlayIpv6);
  assert.is(s.status.node.ipv6.device.name, DEV6);
  assert.is(s.status.node.ipv6.wireguard.listenPort, 51821);
  const rows = s.status.peers.map((p: any) => `${p.family} ${p.subnet} ${p.publicIp} ${p.path} ${p.received}/${p.sent} ${p.wireguard?.endpoint}`).sort(); // eslint-disable-line @typescript-eslint/no-explicit-any
  const want = agents.slice(1).flatMap((o) => [
    `4 ${o.ready.subnet} ${o.host.underlayIp} wireguard 3/3 ${o.host.underlayIp}:51820`,
    `6 ${o.ready.ipv6!.subnet} ${o.host.underlayIpv6} wireguard 3/3 [${o.host.underlayIpv6}]:51821`,
  ]).sort();
  assert.equal(rows, want);
  for (const o of agents.slice(1)) assert.match(s.text, new RegExp(`${o.ready.ipv6!.subnet}\\s+${o.host.underlayIpv6}\\s+wireguard\\s+wireguard\\s+${o.ready.ipv6!.gateway}\\s+3/3`));
  console.log(s.text.split('\n').map((l) => `    ${l}`).join('\n'));
});

test('a lease deleted from etcd takes its peer off both devices', async () => {
  const all = await leases();
  const gone = leaseOf(all, agents[2]!.host);
  // Stop the agent first so it does not put its lease back.
  await lab.stop(agents[2]!.agent.proc, { signal: 'SIGKILL' });
  await lab.etcd!.client().delete().key(gone.key);
  for (const u of agents.slice(0, 2)) {
    await waitFor(`${u.host.name} to drop the IPv6 peer`, 5000, async () => !(await wgDump(lab, u.host, DEV6)).peers.some((p) => p.allowedIps.includes(gone.v6)));
    await waitFor(`${u.host.name} to drop the IPv4 peer`, 5000, async () => !(await wgDump(lab, u.host, 'weft-wg')).peers.some((p) => p.allowedIps.includes(gone.v4)));
  }
});

test.run();
