// Routes weft owns: every route weftd installs carries its route protocol
// (87 by default, --route-protocol), so on start it removes the stale ones an
// earlier run left (a peer that left while weftd was down) and never touches a
// route it did not install: another protocol, or another overlay's Network.
// An older weft's proto boot routes on the VXLAN device are adopted and
// re-stamped without a lost ping; the udp backend's Network route carries it too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer } from '../../../lab/lab.js';
import { startPinger } from '../../../lab/ping.js';
import { attachContainer, putNetworkConfig, restartAgent, startAgent, waitReady, weftRoutes, type AgentReady, type LabAgent } from '../../../lab/agent.js';

let lab: Lab;

/** Every main-table route of ns as `<dst> via <gw> dev <dev> proto <proto>`. */
async function allRoutes(ns: string): Promise<string[]> {
  const rs = (await lab.ipJson(ns, ['route', 'show'])) as Array<{ dst: string; gateway?: string; dev: string; protocol?: string }>;
  return rs.map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev} proto ${r.protocol ?? 'boot'}`);
}

/** weftd for one overlay of the lab: its own etcd prefix and bridge (one overlay runs at a time). */
async function overlay(prefix: string, network: string, backend: Record<string, unknown>, hosts: number[], extra: string[] = []): Promise<Array<{ agent: LabAgent; ready: AgentReady }>> {
  await putNetworkConfig(lab, { Network: network, SubnetMax: network.replace(/\.0\.0\/16$/, '.199.0'), Backend: backend }, prefix);
  const out = [];
  for (const i of hosts) {
    const h = lab.host(i);
    const agent = startAgent(lab, h, ['--etcd-prefix', prefix, '--bridge', `br-${prefix.slice(1)}`, ...extra], `weftd-${h.name}-${prefix.slice(1)}`);
    out.push({ agent, ready: await waitReady(lab, agent) });
  }
  return out;
}

test.before(async () => {
  lab = await Lab.create({ hosts: 2 });
});

test.after(async () => {
  await lab?.destroy();
});

test('on start, a stale weft route is removed; routes with another protocol, or outside the Network, stay', async () => {
  const h1 = lab.host(1);
  for (const r of [
    ['10.244.250.0/24', 'via', '192.0.2.77', 'dev', 'eth0', 'proto', '87'], // left by an earlier run for a host that is gone
    ['10.244.251.0/24', 'via', '192.0.2.78', 'dev', 'eth0', 'proto', 'static'], // by hand
    ['10.244.252.0/24', 'via', '192.0.2.79', 'dev', 'eth0'], // by hand, proto boot (iproute2's default, and flannel's)
    ['10.99.0.0/16', 'via', '192.0.2.80', 'dev', 'eth0', 'proto', '87'], // another overlay's Network
  ]) {
    const x = await lab.execIn(h1.ns, 'ip', ['route', 'add', ...r]);
    assert.is(x.code, 0, x.stderr);
  }
  const [a1, a2] = await overlay('/hg', '10.244.0.0/16', { Type: 'host-gw' }, [1, 2]);
  assert.equal(await weftRoutes(lab, h1.ns), ['10.99.0.0/16 via 192.0.2.80 dev eth0', `${a2!.ready.subnet} via 192.0.2.12 dev eth0`].sort());
  const all = await allRoutes(h1.ns);
  assert.ok(all.includes('10.244.251.0/24 via 192.0.2.78 dev eth0 proto static'), all.join('\n'));
  assert.ok(all.includes('10.244.252.0/24 via 192.0.2.79 dev eth0 proto boot'), all.join('\n'));
  assert.not.ok(all.some((r) => r.startsWith('10.244.250.0/24')), all.join('\n'));
  for (const a of [a1!, a2!]) await lab.stop(a.agent.proc, { signal: 'SIGTERM' });
});

test('upgrade: an older weft\'s proto boot routes on the VXLAN device are re-stamped (no lost ping), a stale one removed', async () => {
  const [a1, a2] = await overlay('/up', '10.245.0.0/16', { Type: 'vxlan' }, [1, 2]);
  const c1: LabContainer = await attachContainer(lab, lab.host(1), a1!.ready, 'br-up');
  const c2: LabContainer = await attachContainer(lab, lab.host(2), a2!.ready, 'br-up');
  const h1 = lab.host(1);
  await lab.stop(a1!.agent.proc, { signal: 'SIGTERM' });
  // What the weft before route protocols left: its routes on weft.1 are proto boot, and one of them is stale.
  const s2 = a2!.ready.subnet;
  for (const r of [
    ['replace', s2, 'via', s2.replace(/\/24$/, ''), 'dev', 'weft.1', 'onlink', 'proto', 'boot'],
    ['add', '10.245.250.0/24', 'via', '10.245.250.0', 'dev', 'weft.1', 'onlink'],
  ]) {
    const x = await lab.execIn(h1.ns, 'ip', ['route', ...r]);
    assert.is(x.code, 0, x.stderr);
  }
  const pinger = startPinger(c1.ns, c2.ip, 10);
  await new Promise((r) => setTimeout(r, 300));
  await restartAgent(lab, a1!.agent);
  await waitReady(lab, a1!.agent);
  await new Promise((r) => setTimeout(r, 500));
  const s = await pinger.stop();
  assert.ok(s.sent > 50, `sent ${s.sent}`);
  assert.is(s.lost, 0, `lost ${s.lost} of ${s.sent}: ${s.lostSeqs.join(',')}`);
  const onDev = (await allRoutes(h1.ns)).filter((r) => r.includes('dev weft.1'));
  assert.equal(onDev, [`${s2} via ${s2.replace(/\/24$/, '')} dev weft.1 proto 87`]);
  // The host-gw overlay's routes (10.244.0.0/16, same protocol) are not this overlay's to touch.
  assert.ok((await weftRoutes(lab, h1.ns)).some((r) => r.startsWith('10.244.') && r.includes('via 192.0.2.12')));
  for (const a of [a1!, a2!]) await lab.stop(a.agent.proc, { signal: 'SIGTERM' });
});

test('the udp backend\'s Network route into the TUN carries the protocol; --route-protocol changes it', async () => {
  const [u] = await overlay('/udp', '10.246.0.0/16', { Type: 'udp' }, [2], ['--route-protocol', '123', '--tun-device', 'weft-tun']);
  assert.ok((await weftRoutes(lab, lab.host(2).ns, 123)).includes('10.246.0.0/16 dev weft-tun'));
  await lab.stop(u!.agent.proc, { signal: 'SIGTERM' });
});

test.run();
