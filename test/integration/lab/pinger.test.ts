// The ping helpers count what they should: a 2 s pinger at 10 ms between
// same-host containers sends ~200 and loses none; towards an address nobody
// holds it loses them all; ping() parses iputils output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withLab } from '../../../lab/lab.js';
import { parsePing, ping, startPinger } from '../../../lab/ping.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('parsePing reads replies, loss, errors and rtt', () => {
  const ok = parsePing(`PING 10.244.1.3 (10.244.1.3) 56(84) bytes of data.
64 bytes from 10.244.1.3: icmp_seq=1 ttl=64 time=0.333 ms
64 bytes from 10.244.1.3: icmp_seq=3 ttl=64 time=0.058 ms

--- 10.244.1.3 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms
rtt min/avg/max/mdev = 0.058/0.195/0.333/0.137 ms
`);
  assert.equal([ok.sent, ok.received, ok.lossPct, ok.rttAvgMs, ok.rtts], [3, 2, 33.3333, 0.195, [0.333, 0.058]]);
  const bad = parsePing(`From 10.244.1.1 icmp_seq=1 Destination Host Unreachable

--- 10.244.2.2 ping statistics ---
2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1020ms
`);
  assert.equal([bad.sent, bad.received, bad.lossPct, bad.rtts], [2, 0, 100, []]);
  assert.ok(Number.isNaN(bad.rttAvgMs));
  assert.throws(() => parsePing('ping: connect: Network is unreachable'), /no statistics/);
});

test('pinger: 2 s at 10 ms between same-host containers, ~200 sent, none lost; to a silent address, all lost', async () => {
  await withLab({ hosts: 1, etcd: false }, async (lab) => {
    const h = lab.hosts[0]!;
    const conf = { bridge: 'wtest0', subnet: '10.244.5.0/24', gateway: '10.244.5.1', mtu: 1500 };
    const a = await lab.addContainer(h, conf);
    const b = await lab.addContainer(h, conf);
    assert.is((await ping(a.ns, b.ip, { count: 1, intervalMs: 10 })).received, 1); // ARP warmed, path up

    // 10.244.5.200: a permanent neighbour with a MAC nobody has, so frames vanish silently;
    // 10.244.5.201: no neighbour answers ARP, so ping backs off (a few sends only).
    await lab.execIn(a.ns, 'ip', ['neigh', 'add', '10.244.5.200', 'lladdr', '02:00:00:00:00:01', 'dev', 'eth0', 'nud', 'permanent']);
    const good = startPinger(a.ns, b.ip, 10);
    const silent = startPinger(a.ns, '10.244.5.200', 10);
    const noArp = startPinger(a.ns, '10.244.5.201', 10);
    await sleep(2000);
    const [g, s, n] = await Promise.all([good.stop(), silent.stop(), noArp.stop()]);
    assert.ok(g.sent >= 180 && g.sent <= 210, `sent ${g.sent}`);
    assert.is(g.lost, 0, `lost seqs ${g.lostSeqs.join(',')}`);
    assert.is(g.received, g.sent);
    assert.is(g.errors, 0);
    assert.ok(s.sent >= 180 && s.sent <= 210, `silent sent ${s.sent}`);
    assert.is(s.received, 0);
    assert.is(s.lost, s.sent);
    assert.equal(s.lostSeqs.slice(0, 3), [1, 2, 3]);
    assert.ok(n.sent > 0 && n.lost === n.sent, `no-ARP: sent ${n.sent} lost ${n.lost}`);
    assert.is(await good.stop(), g, 'stop() is idempotent');
    assert.is(lab.runningProcesses.length, 0);
  });
});

test('ping to an unroutable destination reports total loss instead of throwing', async () => {
  await withLab({ hosts: 1, etcd: false, defaultRoute: false }, async (lab) => {
    const r = await ping(lab.hosts[0]!.ns, '10.244.9.9', { count: 1, timeoutS: 1 });
    assert.is(r.received, 0);
    assert.is(r.lossPct, 100);
    const routes = await lab.ipJson<unknown[]>(lab.hosts[0]!.ns, ['route', 'show', 'default']);
    assert.equal(routes, []);
  });
});

test.run();
