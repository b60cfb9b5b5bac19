// Dual stack on VXLAN with the per-peer udp fallback: two weft hosts with
// {"Type": "vxlan", "Fallback": {"Type": "udp"}} and EnableIPv6. Both families
// start on their VXLAN devices; with VXLAN (UDP 8472, over IPv4 and IPv6)
// dropped between the two hosts, the pair moves into the TUN for both
// families (the IPv6 half follows the IPv4 half's probes) and pings over IPv4
// and IPv6 flow again through the udp path; the rules removed, both go back.
// iproute2 is the oracle for the route's device.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab } from '../../../../lab/lab.js';
import { pingAllPairs } from '../../../../lab/ping.js';
import { putNetworkConfig, startCluster, waitFor, type StartedAgent } from '../../../../lab/agent.js';
import type { LabContainer } from '../../../../lab/lab.js';

let lab: Lab;
let agents: StartedAgent[];
let containers: LabContainer[];
const v6 = () => containers.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6! }));

async function sh(ns: string, cmd: string, ...args: string[]): Promise<void> {
  const r = await lab.execIn(ns, cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns}: ${r.stderr}`);
}

/** The devices host a routes the other host's IPv4 and IPv6 subnets into. */
async function devs(a: StartedAgent, b: StartedAgent): Promise<string[]> {
  const r4 = (await lab.ipJson(a.host.ns, ['route', 'show', b.ready.subnet])) as Array<{ dev: string }>;
  const r6 = (await lab.ipJson(a.host.ns, ['-6', 'route', 'show', b.ready.ipv6!.subnet])) as Array<{ dev: string }>;
  // One route per family: a second one beside it (an IPv6 replace that added instead) shows as "+".
  return [r4.map((r) => r.dev).join('+') || 'none', r6.map((r) => r.dev).join('+') || 'none'];
}

/** Drops VXLAN (UDP 8472) to and from the other host, over both underlay families, in host a's namespace. */
async function dropVxlan(a: StartedAgent, b: StartedAgent, op: '-I' | '-D'): Promise<void> {
  for (const [cmd, peer] of [['iptables', b.host.underlayIp], ['ip6tables', b.host.underlayIpv6!]] as const) {
    await sh(a.host.ns, cmd, op, 'OUTPUT', '-p', 'udp', '-d', peer, '--dport', '8472', '-j', 'DROP');
    await sh(a.host.ns, cmd, op, 'INPUT', '-p', 'udp', '-s', peer, '--dport', '8472', '-j', 'DROP');
  }
}

test.before(async () => {
  lab = await Lab.create({ hosts: 2, ipv6: true });
  await putNetworkConfig(lab, {
    Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:244::/48',
    Backend: { Type: 'vxlan', VNI: 1, Port: 8472, Fallback: { Type: 'udp', Port: 8285 } },
  });
  ({ agents, containers } = await startCluster(lab));
});

test.after(async () => {
  await lab?.destroy();
});

test('both families start on VXLAN; the TUN has the IPv6 address but no network route', async () => {
  const [a, b] = agents;
  assert.equal(await devs(a!, b!), ['weft.1', 'weft-v6.1']);
  const addrs = (await lab.ipJson(a!.host.ns, ['-6', 'addr', 'show', 'dev', 'weft-tun', 'scope', 'global']))[0].addr_info.filter((x: { local?: string }) => x.local).map((x: { local: string }) => x.local);
  assert.equal(addrs, [a!.ready.ipv6!.subnet.replace(/\/64$/, '')]);
  await pingAllPairs(lab, containers);
  await pingAllPairs(lab, v6());
});

test('VXLAN dropped between the hosts: both families move into the TUN and ping over the udp path; back when it returns', async () => {
  const [a, b] = agents;
  await dropVxlan(a!, b!, '-I');
  await dropVxlan(b!, a!, '-I');
  try {
    for (const [x, y] of [[a!, b!], [b!, a!]]) {
      await waitFor(`${x.host.name} to route ${y.host.name} into the TUN`, 20_000, async () => JSON.stringify(await devs(x, y)) === JSON.stringify(['weft-tun', 'weft-tun']));
    }
    await pingAllPairs(lab, containers);
    await pingAllPairs(lab, v6());
  } finally {
    await dropVxlan(a!, b!, '-D');
    await dropVxlan(b!, a!, '-D');
  }
  for (const [x, y] of [[a!, b!], [b!, a!]]) {
    await waitFor(`${x.host.name} to route ${y.host.name} over VXLAN again`, 60_000, async () => JSON.stringify(await devs(x, y)) === JSON.stringify(['weft.1', 'weft-v6.1']))
      .catch(async (e) => { throw new Error(`${(e as Error).message}: now ${(await devs(x, y)).join(', ')}`); });
  }
  await pingAllPairs(lab, v6());
});

test.run();
