// The udp backend over an IPv6 underlay ("Backend": {"Type": "udp", "Underlay": "ipv6"}):
// four dual-stack hosts (underlay 192.0.2.0/24 + 2001:db8::/64), h1 and h2 on the native
// engine with offloads, h3 on the dgram engine, all three sending to the peers' PublicIPv6;
// h4 (native) with --udp-underlay ipv4 sends to the peers' PublicIP: the mixed pairs. Every
// host receives both families on one [::] socket. Real pings over both inner families between
// every pair (native <-> dgram and the mixed pairs included), a sha256-checked 10 MB TCP
// transfer over the IPv6 underlay with offloads on (UDP_SEGMENT sends and UDP_GRO receives
// on the AF_INET6 sockets), and an oracle apart from weft that the datagrams really travel
// over the family each sender chose: ip6tables/iptables counting rules in h1's INPUT chain
// per source underlay address, plus `ss` showing the forwarder's socket on [::]. A lease
// without PublicIPv6 is skipped by the IPv6 senders with a reason naming it; the others keep
// working. kill -9 + restart of an IPv6 sender resumes its [::] sockets from the fd holder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer, type LabHost } from '../../../../lab/lab.js';
import { pingAllPairs } from '../../../../lab/ping.js';
import { checkedTransfer } from '../../../../lab/transfer.js';
import { forwarderStats, logRecords, putNetworkConfig, restartAgent, startCluster, waitFor, waitReady, type StartedAgent } from '../../../../lab/agent.js';

const TUN = 'weft-tun';
const PORT = 8285;
const IPV6_NETWORK = 'fd00:10:244::/48';

let lab: Lab;
let agents: StartedAgent[];
let containers: LabContainer[];
const v6 = (cs: LabContainer[]) => cs.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6! }));

test.before(async () => {
  lab = await Lab.create({ hosts: 4, ipv6: true });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: IPV6_NETWORK, Backend: { Type: 'udp', Port: PORT, Underlay: 'ipv6' } });
  const argsFor = (h: LabHost) => (h.index === 3 ? ['--udp-engine', 'dgram'] : h.index === 4 ? ['--udp-underlay', 'ipv4'] : []);
  ({ agents, containers } = await startCluster(lab, { argsFor }));
  // The oracle: h1 counts the datagrams to its port by source underlay address, per family.
  const h1 = lab.host(1);
  for (const h of agents.slice(1).map((a) => a.host)) {
    for (const [tool, src] of [['iptables', h.underlayIp], ['ip6tables', h.underlayIpv6!]] as const) {
      const r = await lab.execIn(h1.ns, tool, ['-w', '-A', 'INPUT', '-p', 'udp', '--dport', String(PORT), '-s', src]);
      assert.is(r.code, 0, r.stderr);
    }
  }
});

test.after(async () => {
  await lab?.destroy();
});

/** Packets h1's counting rules saw, by source underlay address. */
async function counted(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const r = await lab.execIn(lab.host(1).ns, tool, ['-c', '-t', 'filter']);
    for (const line of r.stdout.split('\n')) {
      // [5:420] -A INPUT -s 2001:db8::12/128 -p udp -m udp --dport 8285
      const m = /^\[(\d+):\d+\] -A INPUT -s (\S+?)\/\d+ -p udp -m udp --dport (\d+)$/.exec(line);
      if (m && Number(m[3]) === PORT) out.set(m[2]!, Number(m[1]));
    }
  }
  return out;
}

test('the TUN MTU is the underlay\'s - 48 on the IPv6 senders, - 28 on the IPv4 one; the forwarder\'s socket is bound to [::]', async () => {
  for (const u of agents) {
    const link = (await lab.ipJson(u.host.ns, ['link', 'show', 'dev', TUN]))[0] as { mtu: number };
    const eth = (await lab.ipJson(u.host.ns, ['link', 'show', 'dev', 'eth0']))[0] as { mtu: number };
    assert.is(link.mtu, eth.mtu - (u.host.index === 4 ? 28 : 48), u.host.name);
    assert.is(u.ready.mtu, link.mtu, `${u.host.name}: the containers get the TUN's MTU`);
    const ss = await lab.execIn(u.host.ns, 'ss', ['-u', '-a', '-n', '-H', 'sport', '=', `:${PORT}`]);
    assert.match(ss.stdout, new RegExp(`\\[::\\]:${PORT}|\\*:${PORT}`), `${u.host.name}: ${ss.stdout}`);
  }
  const started = logRecords(lab, agents[0]!.agent).find((r) => r.msg === 'forwarder started');
  assert.is(started?.listen, `[::]:${PORT}`);
  assert.is(started?.sendsOver, 'ipv6');
});

test('every container pings every other over IPv4 and IPv6; the datagrams travel over the family each sender chose', async () => {
  const before = await counted();
  await pingAllPairs(lab, containers);
  await pingAllPairs(lab, v6(containers));
  const after = await counted();
  const d = (a: string) => (after.get(a) ?? 0) - (before.get(a) ?? 0);
  for (const h of agents.slice(1).map((a) => a.host)) {
    const [v4n, v6n] = [d(h.underlayIp), d(h.underlayIpv6!)];
    if (h.index === 4) {
      assert.ok(v4n >= 4 && v6n === 0, `h4 sends over IPv4: ${v4n} over IPv4, ${v6n} over IPv6`);
    } else {
      assert.ok(v6n >= 4 && v4n === 0, `${h.name} sends over IPv6: ${v6n} over IPv6, ${v4n} over IPv4`);
    }
  }
  const s = await forwarderStats(lab, agents[0]!.agent);
  assert.is(s.drops.unknown_peer + s.drops.spoofed_source + s.drops.send_error, 0, JSON.stringify(s.drops));
  // Peers are named by their PublicIP, whichever family their datagrams came over.
  for (const u of agents.slice(1)) assert.ok(s.peers[`${u.host.underlayIp}:${PORT}`].rxPackets > 0, u.host.name);
});

test('10 MB of TCP over the IPv6 underlay arrives intact (sha256), both inner families, with UDP GSO/GRO on the IPv6 sockets', async () => {
  const [a, b] = containers;
  const before = [await forwarderStats(lab, agents[0]!.agent), await forwarderStats(lab, agents[1]!.agent)];
  const r = await checkedTransfer(lab, a!, b!, { bytes: 10 * 1024 * 1024, port: 7316 });
  assert.is(r.receivedBytes, r.bytes);
  assert.is(r.receivedSha, r.sentSha);
  const [a6, b6] = v6(containers);
  const r6 = await checkedTransfer(lab, a6!, b6!, { bytes: 10 * 1024 * 1024, port: 7317 });
  assert.is(r6.receivedSha, r6.sentSha);
  const after = [await forwarderStats(lab, agents[0]!.agent), await forwarderStats(lab, agents[1]!.agent)];
  assert.ok(after[0].offload.gsoSends > before[0].offload.gsoSends, `h1 sent UDP_SEGMENT messages: ${JSON.stringify(after[0].offload)}`);
  assert.is(after[0].offload.gsoFallbacks, before[0].offload.gsoFallbacks, 'no UDP_SEGMENT send was refused');
  assert.ok(after[1].offload.groReceives > before[1].offload.groReceives, `h2 received UDP_GRO messages: ${JSON.stringify(after[1].offload)}`);
  // Mixed: h4 (over IPv4) -> h3 (dgram, over IPv6) and back.
  const r3 = await checkedTransfer(lab, containers[3]!, containers[2]!, { bytes: 2 * 1024 * 1024, port: 7318 });
  assert.is(r3.receivedSha, r3.sentSha);
});

test('a lease without PublicIPv6 is skipped by the IPv6 senders, naming it; the IPv4 sender takes it; the others keep working', async () => {
  // Both halves free: a lease on a host's IPv6 subnet is a conflict, skipped by every host.
  const taken = new Set(agents.flatMap((u) => [u.ready.subnet, u.ready.ipv6?.subnet]));
  const n = [...Array(200).keys()].map((i) => 40 + i).find((i) => !taken.has(`10.244.${i}.0/24`) && !taken.has(`fd00:10:244:${i.toString(16)}::/64`))!;
  const key = `/coreos.com/network/subnets/10.244.${n}.0-24&fd00:10:244:${n.toString(16)}::-64`;
  const c = lab.etcd!.client();
  await c.put(key).value(JSON.stringify({ PublicIP: '192.0.2.200', PublicIPv6: null, BackendType: 'udp' }));
  try {
    const skipped = (i: number) => logRecords(lab, agents[i]!.agent).find((r) => r.msg === 'skipping peer lease' && r.key === key);
    await waitFor('h1 skipping the lease', 10_000, () => skipped(0) !== undefined);
    assert.match(String(skipped(0)!.reason), /PublicIPv6 null is not an IPv6 address.*IPv6 underlay/);
    await waitFor('h4 adding it', 10_000, () => logRecords(lab, agents[3]!.agent).some((r) => r.msg === 'peer added' && r.subnet === `10.244.${n}.0/24`));
    assert.is(skipped(3), undefined, 'h4 sends over IPv4: the lease is a peer to it');
    await pingAllPairs(lab, v6(containers));
  } finally {
    await c.delete().key(key);
  }
});

test('kill -9 + restart of h1: the new weftd resumes its [::] sockets from the fd holder and adopts them; pings over IPv6 go on', async () => {
  const a = agents[0]!.agent;
  await lab.stop(a.proc, { signal: 'SIGKILL' });
  await restartAgent(lab, a);
  await waitFor('the new weftd to resume', 10_000, () => logRecords(lab, a).some((r) => r.msg === 'resumed the data path from saved state, before etcd'));
  await waitReady(lab, a);
  assert.ok(logRecords(lab, a).some((r) => r.msg === 'adopted the data path resumed from saved state'), 'the backend adopted what resumed');
  await pingAllPairs(lab, v6(containers).slice(0, 2));
  await pingAllPairs(lab, [containers[0]!, containers[3]!]);
});

test.run();
