// Dual stack on the udp backend, end to end: three hosts on a dual-stack
// underlay, h1 and h2 on the native engine (h1 with offloads), h3 on the
// dgram engine. One TUN per host carries both families (IPv6 over the IPv4
// underlay, one datagram per inner packet). Real pings over both families
// (native <-> dgram included), a sha256-checked 10 MB TCP transfer over IPv6
// on the native engine with offloads, ICMPv6 no route from the TUN's IPv6
// address for an address outside every subnet (both engines), ICMP and ICMPv6
// time exceeded from the TUN for a TTL that runs out there, and a forged
// datagram with a spoofed inner IPv6 source dropped and counted.
// Counters are read as an operator would: SIGUSR1 makes weftd log "stats".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer, type LabHost } from '../../../../lab/lab.js';
import { ping, pingAllPairs } from '../../../../lab/ping.js';
import { checkedTransfer } from '../../../../lab/transfer.js';
import { forwarderStats, putNetworkConfig, startCluster, waitFor, type LabAgent, type StartedAgent } from '../../../../lab/agent.js';

const TUN = 'weft-tun';
const PORT = 8285;
const IPV6_NETWORK = 'fd00:10:244::/48';

let lab: Lab;
let agents: StartedAgent[];
let containers: LabContainer[];
const v6 = (cs: LabContainer[]) => cs.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6! }));

const stats = (a: LabAgent) => forwarderStats(lab, a);

test.before(async () => {
  lab = await Lab.create({ hosts: 3, ipv6: true });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: IPV6_NETWORK, Backend: { Type: 'udp', Port: PORT } });
  const argsFor = (h: LabHost) => (h.index === 3 ? ['--udp-engine', 'dgram'] : h.index === 2 ? ['--udp-offload=false'] : []);
  ({ agents, containers } = await startCluster(lab, { argsFor }));
});

test.after(async () => {
  await lab?.destroy();
});

test('the TUN holds <v6 subnet>::/128 and routes IPv6Network, proto 87; the lease has the IPv6 subnet and PublicIPv6', async () => {
  for (const u of agents) {
    const sn6 = u.ready.ipv6!.subnet;
    const addrs = (await lab.ipJson(u.host.ns, ['-6', 'addr', 'show', 'dev', TUN, 'scope', 'global']))[0].addr_info.filter((a: { local?: string }) => a.local).map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
    assert.equal(addrs, [`${sn6.replace(/\/64$/, '')}/128`]);
    const routes = (await lab.ipJson(u.host.ns, ['-6', 'route', 'show', 'dev', TUN, 'proto', '87'])) as Array<{ dst: string }>;
    assert.equal(routes.map((r) => r.dst), [IPV6_NETWORK]);
  }
  const all = await lab.etcd!.client().getAll().prefix('/coreos.com/network/subnets/').strings();
  for (const [key, value] of Object.entries(all)) {
    assert.match(key, /\d+-24&fd00:10:244:[0-9a-f]+::-64$/);
    const j = JSON.parse(value) as Record<string, unknown>;
    assert.equal(Object.keys(j).slice(0, 3), ['PublicIP', 'PublicIPv6', 'BackendType']);
    assert.is(j.BackendType, 'udp');
    assert.is(j.BackendData ?? null, null, 'flannel\'s udp backend publishes no BackendData');
    assert.not.ok('BackendV6Data' in j, 'nor BackendV6Data');
    assert.is(j.PublicIPv6, agents.find((u) => u.host.underlayIp === j.PublicIP)!.host.underlayIpv6);
  }
});

test('every container pings every other over IPv4 and over IPv6 (native <-> native, native <-> dgram)', async () => {
  const before = await stats(agents[0]!.agent);
  await pingAllPairs(lab, containers);
  await pingAllPairs(lab, v6(containers));
  const after = await stats(agents[0]!.agent);
  assert.ok(after.rxPackets - before.rxPackets >= 16, `h1 rx ${before.rxPackets} -> ${after.rxPackets}`);
  assert.is(after.drops.spoofed_source - before.drops.spoofed_source, 0);
  assert.is(after.drops.wrong_destination - before.drops.wrong_destination, 0);
});

test('10 MB of TCP over IPv6 arrives intact (sha256): native with offloads -> native, native -> dgram', async () => {
  const [a, b, c] = v6(containers);
  const before = await stats(agents[0]!.agent);
  const r = await checkedTransfer(lab, a!, b!, { bytes: 10 * 1024 * 1024, port: 7306 });
  assert.is(r.receivedBytes, r.bytes);
  assert.is(r.receivedSha, r.sentSha);
  const after = await stats(agents[0]!.agent);
  assert.ok(after.offload.tsoReads > before.offload.tsoReads, `TSO6 reads were split: ${before.offload.tsoReads} -> ${after.offload.tsoReads}`);
  const r2 = await checkedTransfer(lab, a!, c!, { bytes: 2 * 1024 * 1024, port: 7307 });
  assert.is(r2.receivedSha, r2.sentSha);
});

test('an IPv6 destination outside every subnet gets ICMPv6 no route from the TUN\'s IPv6 address, counted as no_route (both engines)', async () => {
  for (const i of [0, 2]) {
    const u = agents[i]!;
    const c = containers[i]!;
    const before = await stats(u.agent);
    const r = await ping(c.ns, 'fd00:10:244:fa::9', { count: 2, intervalMs: 200, timeoutS: 1 });
    assert.is(r.received, 0);
    const tun6 = u.ready.ipv6!.subnet.replace(/\/64$/, '');
    assert.match(r.output, new RegExp(`From ${tun6.replace(/\./g, '\\.')}.*icmp_seq=1 Destination unreachable: No route`), r.output);
    const after = await stats(u.agent);
    assert.is(after.drops.no_route - before.drops.no_route, 2, u.host.name);
    assert.is(after.icmpSent - before.icmpSent, 2, u.host.name);
  }
});

test('a TTL (hop limit) that runs out at the forwarder gets ICMP time exceeded from the TUN\'s address, counted as ttl (both engines, both families)', async () => {
  // TTL 2: the host's kernel forwards the echo from the bridge into the TUN with TTL 1; the forwarder,
  // a router's hop as flannel's is, may not send it on.
  for (const i of [0, 2]) {
    const u = agents[i]!;
    const c = containers[i]!;
    const peer = containers[(i + 1) % 3]!;
    for (const [family, dst, from, said] of [
      [4, peer.ip, u.ready.subnet.replace(/\/24$/, ''), 'Time to live exceeded'],
      [6, peer.ipv6!, u.ready.ipv6!.subnet.replace(/\/64$/, ''), 'Time exceeded: Hop limit'],
    ] as const) {
      const before = await stats(u.agent);
      const r = await ping(c.ns, dst, { count: 2, intervalMs: 200, timeoutS: 1, ttl: 2 });
      assert.is(r.received, 0, r.output);
      assert.match(r.output, new RegExp(`From ${from.replace(/\./g, '\\.')}.*icmp_seq=1 ${said}`), r.output);
      const after = await stats(u.agent);
      assert.is(after.drops.ttl - before.drops.ttl, 2, `${u.host.name} IPv${family}`);
      assert.is(after.icmpSent - before.icmpSent, 2, `${u.host.name} IPv${family}`);
      // Three hops on the way (this host, its forwarder, the peer's host): TTL 4 gets there.
      assert.is((await ping(c.ns, dst, { count: 1, timeoutS: 2, ttl: 4 })).received, 1, `${u.host.name} IPv${family} with TTL 4`);
    }
  }
});

test('a datagram from a peer with an inner IPv6 source outside its IPv6 subnet is dropped and counted as spoofed_source', async () => {
  const target = containers[0]!;
  const h2 = agents[1]!.host;
  const inH2 = agents[1]!.ready.ipv6!.subnet.replace(/::\/64$/, '::77');
  const inH3 = agents[2]!.ready.ipv6!.subnet.replace(/::\/64$/, '::77');
  const listener = lab.spawnIn(target.ns, process.execPath, ['-e', `
    const s = require('dgram').createSocket('udp6');
    s.on('message', (m, r) => console.log('GOT ' + r.address + ' ' + m.toString()));
    s.bind(9999, '${target.ipv6}', () => console.log('LISTENING'));
    setTimeout(() => process.exit(0), 30000);`], { logName: 'udp6-listener' });
  await waitFor('the listener', 5000, () => lab.readLog(listener).includes('LISTENING'));
  // From h2's underlay address to h1's forwarder: an IPv6/UDP packet src -> the container, `text` inside.
  const forge = async (src: string, text: string, count: number) => {
    const r = await lab.execIn(h2.ns, process.execPath, ['-e', `
      const { ipNumber } = { ipNumber: (s) => { const [a, b] = s.split('::'); const h = (x) => x ? x.split(':').map((w) => parseInt(w, 16)) : [];
        const l = h(a), r = h(b); const w = [...l, ...Array(8 - l.length - r.length).fill(0), ...r]; const out = Buffer.alloc(16); w.forEach((x, i) => out.writeUInt16BE(x, 2 * i)); return out; } };
      const data = Buffer.from(${JSON.stringify(text)});
      const udp = Buffer.alloc(8); udp.writeUInt16BE(4444, 0); udp.writeUInt16BE(9999, 2); udp.writeUInt16BE(8 + data.length, 4);
      const h = Buffer.alloc(40); h[0] = 0x60; h.writeUInt16BE(8 + data.length, 4); h[6] = 17; h[7] = 64;
      ipNumber('${src}').copy(h, 8); ipNumber('${target.ipv6}').copy(h, 24);
      let sum = 17 + 8 + data.length; const body = Buffer.concat([udp, data]);
      for (let i = 8; i < 40; i += 2) sum += h.readUInt16BE(i);
      for (let i = 0; i < body.length; i += 2) sum += (body[i] << 8) | (body[i + 1] ?? 0);
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      body.writeUInt16BE((~sum & 0xffff) || 0xffff, 6);
      const pkt = Buffer.concat([h, body]);
      const s = require('dgram').createSocket('udp4');
      s.bind(0, '${h2.underlayIp}', async () => {
        for (let i = 0; i < ${count}; i++) await new Promise((r) => s.send(pkt, ${PORT}, '${lab.host(1).underlayIp}', r));
        s.close();
      });`]);
    assert.is(r.code, 0, r.stderr);
  };
  const before = await stats(agents[0]!.agent);
  await forge(inH3, 'FORGED-SPOOFED6', 3);
  await forge(inH2, 'GENUINE6', 1);
  await waitFor('the genuine datagram', 3000, () => lab.readLog(listener).includes('GENUINE6'));
  await new Promise((r) => setTimeout(r, 300));
  const got = lab.readLog(listener);
  assert.match(got, new RegExp(`GOT ${inH2} GENUINE6`));
  assert.not.match(got, /FORGED/, `a spoofed datagram reached the container:\n${got}`);
  const after = await stats(agents[0]!.agent);
  assert.is(after.drops.spoofed_source - before.drops.spoofed_source, 3);
  const p = (f: any) => f.peers[`${h2.underlayIp}:${PORT}`].drops.spoofed_source;
  assert.is(p(after) - p(before), 3, 'charged to the peer it came from');
  await lab.stop(listener);
});

test.run();
