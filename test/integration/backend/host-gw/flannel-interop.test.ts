// host-gw interop: weft nodes and a hand-built flannel-style host-gw node in
// one network. The flannel node is what flannel's host-gw leaves behind: a
// lease written with etcdctl in flannel's exact format (a TTL lease, no
// BackendData), a bridge with its subnet's .1, and one `ip route add <subnet>
// via <PublicIP> dev eth0` per weft node (proto boot, flannel's default).
// Containers ping each other both ways.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer } from '../../../../lab/lab.js';
import { ping } from '../../../../lab/ping.js';
import { attachContainer, PREFIX, putNetworkConfig, startAgent, waitFor, waitReady, weftRoutes, weftStatus, type StartedAgent } from '../../../../lab/agent.js';

const FLANNEL_SUBNET = '10.244.77.0/24';
let lab: Lab;
let weft: StartedAgent[];
const weftContainers: LabContainer[] = [];
let flannelContainer: LabContainer;

/** etcdctl (the v3 API) inside the etcd host; rejects on a non-zero exit. */
async function etcdctl(...args: string[]): Promise<string> {
  const r = await lab.execIn(lab.etcdNs!, 'etcdctl', ['--endpoints', lab.etcd!.labEndpoints[0]!, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test.before(async () => {
  lab = await Lab.create({ hosts: 3 });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'host-gw' } });
  // h3 is flannel's: its lease as flannel's host-gw RegisterNetwork writes it, under an etcd lease (TTL) like flannel's.
  const h3 = lab.host(3);
  const leaseId = /lease ([0-9a-f]+) granted/.exec(await etcdctl('lease', 'grant', '600'))![1]!;
  await etcdctl('put', `--lease=${leaseId}`, `${PREFIX}/subnets/10.244.77.0-24`, `{"PublicIP":"${h3.underlayIp}","PublicIPv6":null,"BackendType":"host-gw"}`);
  await lab.execIn(h3.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  flannelContainer = await lab.addContainer(h3, { bridge: 'cni0', subnet: FLANNEL_SUBNET, gateway: '10.244.77.1', mtu: 1500 });

  weft = [];
  for (const h of [lab.host(1), lab.host(2)]) {
    const agent = startAgent(lab, h);
    const u = { host: h, agent, ready: await waitReady(lab, agent) };
    weft.push(u);
    weftContainers.push(await attachContainer(lab, h, u.ready));
  }
  // flannel's side of the routes, by hand, from the leases the weft nodes wrote.
  for (const u of weft) {
    const r = await lab.execIn(h3.ns, 'ip', ['route', 'add', u.ready.subnet, 'via', u.host.underlayIp, 'dev', 'eth0']);
    assert.is(r.code, 0, r.stderr);
  }
});

test.after(async () => {
  await lab?.destroy();
});

test('the weft nodes route the flannel node\'s subnet via its PublicIP, with weft\'s protocol', async () => {
  for (const u of weft) {
    await waitFor(`${u.host.name} to route ${FLANNEL_SUBNET}`, 3000, async () => (await weftRoutes(lab, u.host.ns)).includes(`${FLANNEL_SUBNET} via ${lab.host(3).underlayIp} dev eth0`));
  }
  // Its own routes (proto boot, flannel's) are flannel's: weft has none there and touches none.
  assert.equal(await weftRoutes(lab, lab.host(3).ns), []);
});

test('weft containers and the flannel node\'s container ping each other both ways', async () => {
  for (const c of weftContainers) {
    const there = await ping(c.ns, flannelContainer.ip, { count: 3, intervalMs: 200, timeoutS: 2 });
    assert.is(there.received, 3, `${c.name} -> flannel ${flannelContainer.ip}: ${there.output}`);
    const back = await ping(flannelContainer.ns, c.ip, { count: 3, intervalMs: 200, timeoutS: 2 });
    assert.is(back.received, 3, `flannel -> ${c.name} ${c.ip}: ${back.output}`);
  }
  const between = await ping(weftContainers[0]!.ns, weftContainers[1]!.ip, { count: 2, intervalMs: 200, timeoutS: 2 });
  assert.is(between.received, 2);
});

test('weft status on a weft node lists the flannel node as a host-gw peer on the direct path', async () => {
  const { status } = await weftStatus(lab, weft[0]!.agent);
  const f = status.peers.find((p: { subnet: string }) => p.subnet === FLANNEL_SUBNET);
  assert.equal([f.backend, f.path, f.reachable], ['host-gw', 'direct', true]);
});

test.run();
