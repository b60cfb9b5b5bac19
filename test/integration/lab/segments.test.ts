// The lab's two-segments topology: segment a (192.0.2.0/24) and b
// (198.51.100.0/24) joined by a router namespace; etcd on a, reachable from
// both; moveHost() re-plugs a host onto the other segment keeping its
// PublicIP. The IP TTL of the replies tells direct from routed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab } from '../../../lab/lab.js';
import { moveHost } from '../../../lab/segments.js';

let lab: Lab;

/** The TTL of an echo reply from ip, as seen in ns (64: same segment; 63: one router away). */
async function replyTtl(ns: string, ip: string): Promise<number> {
  const r = await lab.execIn(ns, 'ping', ['-n', '-c', '1', '-W', '2', ip]);
  const ttl = /ttl=(\d+)/.exec(r.stdout)?.[1];
  if (!ttl) throw new Error(`no reply from ${ip} in ${ns}: ${r.stdout}${r.stderr}`);
  return Number(ttl);
}

test.before(async () => {
  lab = await Lab.create({ hosts: 4, topology: 'two-segments' });
});

test.after(async () => {
  await lab?.destroy();
});

test('half the hosts on each segment, the router between them, etcd answering from segment b', async () => {
  assert.equal(lab.hosts.map((h) => `${h.name} ${h.segment} ${h.underlayIp}`), ['h1 a 192.0.2.11', 'h2 a 192.0.2.12', 'h3 b 198.51.100.13', 'h4 b 198.51.100.14']);
  assert.equal(lab.router!.ips, { a: '192.0.2.1', b: '198.51.100.1' });
  const r = await lab.execIn(lab.host(4).ns, 'etcdctl', ['--endpoints', lab.etcd!.labEndpoints[0]!, 'endpoint', 'health'], { timeoutMs: 10_000 });
  assert.is(r.code, 0, r.stderr);
  const ports = (await lab.ipJson(lab.ulNs, ['link', 'show', 'master', 'ul1'])) as Array<{ ifname: string }>;
  assert.equal(ports.map((p) => p.ifname).sort(), ['u-h3', 'u-h4', 'u-rt-b']);
});

test('same segment is one hop, across the router two', async () => {
  assert.is(await replyTtl(lab.host(1).ns, '192.0.2.12'), 64);
  assert.is(await replyTtl(lab.host(1).ns, '198.51.100.13'), 63);
  assert.is(await replyTtl(lab.host(4).ns, '192.0.2.11'), 63);
});

test('moveHost: h2 on segment b keeps its PublicIP; its old segment reaches it through the router, its new one directly', async () => {
  await moveHost(lab, lab.host(2), 'b');
  assert.is(lab.host(2).segment, 'b');
  assert.is(await replyTtl(lab.host(1).ns, '192.0.2.12'), 63);
  assert.is(await replyTtl(lab.host(3).ns, '192.0.2.12'), 64);
  assert.is(await replyTtl(lab.etcdNs!, '192.0.2.12'), 63);
  const addrs = (await lab.ipJson(lab.host(2).ns, ['-4', 'addr', 'show', 'eth0'])) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
  assert.equal(addrs[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`).sort(), ['192.0.2.12/32', '198.51.100.12/24']);
});

test.run();
