import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../../daemon/logger.js';
import { Prefix } from '../../../lib/ip.js';
import { OutOfSubnetsError, SubnetManager, parseNetworkConfig, type Lease } from '../../../subnet-manager/index.js';
import type { LeaseChange } from '../../../subnet-manager/lease-keeper.js';
import { type EtcdCluster, startEtcd } from '../../../lab/etcd.js';

const log = createLogger('silent');
let etcd: EtcdCluster;
const managers: SubnetManager[] = [];
const mk = (o: { ttlSeconds?: number; prefix?: string } = {}) => {
  const m = new SubnetManager({ endpoints: etcd.endpoints, logger: log, ...o });
  managers.push(m);
  return m;
};
const req = (ip: string, previousSubnet?: Prefix) => ({ publicIP: ip, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' }, ...(previousSubnet ? { previousSubnet } : {}) });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test.before(async () => { etcd = await startEtcd(); });
test.after(async () => {
  for (const m of managers) await m.close().catch(() => {});
  await etcd?.stop();
});

test('getNetworkConfig: a missing key names it and is retryable (agents wait for the config); stored config is parsed', async () => {
  const m = mk({ prefix: '/t0' });
  await m.getNetworkConfig().then(() => assert.unreachable(), (e) => {
    assert.is(e.code, 'ENOCONFIG');
    assert.is(e.retryable, true);
    assert.ok(e.message.includes('/t0/config'), e.message);
  });
  await etcd.client().put('/t0/config').value('{"Network":"10.9.0.0/16","SubnetLen":31}');
  await m.getNetworkConfig().then(() => assert.unreachable(), (e) => {
    assert.is(e.code, 'EBADCONFIG');
    assert.is(e.retryable, false);
    assert.match(e.message, /^\/t0\/config: SubnetLen must be at most 30, got 31/);
  });
  await etcd.client().put('/t0/config').value('{"Network":"10.9.0.0/16","Backend":{"Type":"udp"}}');
  const c = await m.getNetworkConfig();
  assert.is(String(c.network), '10.9.0.0/16');
  assert.is(c.backend.type, 'udp');
  assert.equal(c.backend.raw, { Type: 'udp' });
});

test('50 concurrent acquirers get 50 distinct subnets; the value is flannel JSON with a TTL lease', async () => {
  const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  const ms = Array.from({ length: 50 }, () => mk({ prefix: '/t1' }));
  const leases = await Promise.all(ms.map((m, i) => m.acquireLease(cfg, req(`192.0.2.${i + 1}`))));
  assert.is(new Set(leases.map((l) => String(l.subnet))).size, 50);
  for (const l of leases) assert.ok(cfg.network.containsNet(l.subnet) && l.subnet.prefixLen === 24 && l.subnet.ip >= cfg.subnetMin.ip);
  const c = etcd.client();
  const all = await c.getAll().prefix('/t1/subnets/').strings();
  assert.is(Object.keys(all).length, 50);
  assert.is(all[leases[0]!.key], '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}');
  const ttl = await c.leaseClient.leaseTimeToLive({ ID: leases[0]!.leaseId! });
  assert.ok(Number(ttl.TTL) > 86000, `TTL ${ttl.TTL}`);
  assert.ok(leases[0]!.expiration!.getTime() > Date.now() + 86000e3);
});

test('a 15-subnet space: 15 acquire, the 16th gets OutOfSubnetsError naming the range', async () => {
  const cfg = parseNetworkConfig('{"Network":"10.10.0.0/24","SubnetLen":28}');
  const m = mk({ prefix: '/t2' });
  const leases = await Promise.all(Array.from({ length: 15 }, (_, i) => m.acquireLease(cfg, req(`192.0.2.${i + 1}`))));
  assert.is(new Set(leases.map((l) => String(l.subnet))).size, 15);
  try {
    await m.acquireLease(cfg, req('192.0.2.99'));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, OutOfSubnetsError);
    assert.is((e as Error).message, 'out of subnets: all 15 /28 subnets between 10.10.0.16 and 10.10.0.240 are leased');
  }
});

test('restarted host gets its subnet back by PublicIP (value refreshed), and by previousSubnet after release', async () => {
  const cfg = parseNetworkConfig('{"Network":"10.20.0.0/16"}');
  const a = await mk({ prefix: '/t3' }).acquireLease(cfg, req('192.0.2.1'));
  const again = await mk({ prefix: '/t3' }).acquireLease(cfg, { ...req('192.0.2.1'), backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:02' } });
  assert.ok(again.subnet.equals(a.subnet));
  assert.is.not(again.leaseId, a.leaseId);
  assert.match((await etcd.client().get(a.key).string())!, /02:00:00:00:00:02/);
  const m = mk({ prefix: '/t3' });
  await m.releaseLease(again);
  assert.is(await etcd.client().get(a.key).string(), null);
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const l = await m.acquireLease(cfg, req('192.0.2.1', a.subnet));
    times.push(performance.now() - t0);
    assert.ok(l.subnet.equals(a.subnet), `round ${i}: got ${l.subnet}`);
    await m.releaseLease(l);
  }
  console.log(`  acquire (list + grant + txn), median of 20: ${median(times).toFixed(2)} ms`);
});

test('reservation (key without etcd lease) is never handed out, and is used as-is by its own PublicIP', async () => {
  const cfg = parseNetworkConfig('{"Network":"10.30.0.0/24","SubnetLen":28}');
  const c = etcd.client();
  await c.put('/t4/subnets/10.30.0.16-28').value('{"PublicIP":"192.0.2.200","PublicIPv6":null,"BackendType":"vxlan","BackendData":null}');
  const m = mk({ prefix: '/t4' });
  const got = await Promise.all(Array.from({ length: 14 }, (_, i) => m.acquireLease(cfg, req(`192.0.2.${i + 1}`, Prefix.parse('10.30.0.16/28')))));
  assert.not.ok(got.some((l) => String(l.subnet) === '10.30.0.16/28'));
  await m.acquireLease(cfg, req('192.0.2.50')).then(() => assert.unreachable(), (e) => assert.instance(e, OutOfSubnetsError));
  const own = await m.acquireLease(cfg, req('192.0.2.200'));
  assert.is(String(own.subnet), '10.30.0.16/28');
  assert.is(own.expiration, undefined);
  const r = await c.get('/t4/subnets/10.30.0.16-28').exec();
  assert.is(String(r.kvs[0]!.lease), '0', 'still no TTL');
  assert.match(r.kvs[0]!.value.toString(), /VtepMAC/, 'value refreshed');
  await m.releaseLease(own);
  assert.ok(await c.get('/t4/subnets/10.30.0.16-28').string(), 'release leaves a reservation alone');
});

test('short TTL: unrenewed lease disappears and a watcher sees removed; keepLease keeps it past its TTL', async () => {
  const cfg = parseNetworkConfig('{"Network":"10.40.0.0/16"}');
  const m = mk({ prefix: '/t5', ttlSeconds: 2 });
  const watcher = mk({ prefix: '/t5' });
  const ac = new AbortController();
  const removed: string[] = [];
  const w = watcher.watchLeases(cfg, { signal: ac.signal, onBatch: (b) => { for (const e of b.events) if (e.type === 'removed') removed.push(String(e.lease.subnet)); } });
  const dying = await m.acquireLease(cfg, req('192.0.2.1'));
  const kept = await m.acquireLease(cfg, req('192.0.2.2'));
  const keepAc = new AbortController();
  const changes: LeaseChange[] = [];
  const k = m.keepLease(kept, cfg, req('192.0.2.2'), { signal: keepAc.signal, onChange: (c) => { changes.push(c); } });
  const t0 = Date.now();
  while (!removed.includes(String(dying.subnet)) && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 100));
  assert.ok(removed.includes(String(dying.subnet)), 'watcher saw the expired lease removed');
  await new Promise((r) => setTimeout(r, Math.max(0, 5000 - (Date.now() - t0))));
  assert.ok(await etcd.client().get(kept.key).string(), 'kept lease still there after 2.5x its TTL');
  assert.not.ok(removed.includes(String(kept.subnet)));
  assert.is(changes.length, 0);
  // Its key deleted behind its back: the keeper puts the same subnet back and reports it.
  await etcd.client().delete().key(kept.key);
  const t1 = Date.now();
  while (changes.length === 0 && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 100));
  assert.is(changes.length, 1);
  assert.is(changes[0]!.kind, 'restored');
  assert.ok(changes[0]!.lease.subnet.equals(kept.subnet));
  assert.ok(await etcd.client().get(kept.key).string());
  keepAc.abort(); ac.abort();
  await k.done; await w;
});

test('dual stack, concurrent starters: no two leases share an IPv6 subnet (a key names both halves, so etcd\'s create-if-absent does not stop two hosts taking one)', async () => {
  // 12 IPv6 subnets for 10 hosts starting at once: each picks among the same few free ones.
  const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/48","IPv6SubnetMin":"fd00:10:244:1::","IPv6SubnetMax":"fd00:10:244:c::"}');
  const dual = (i: number) => ({ ...req(`192.0.2.${i}`), publicIPv6: `2001:db8::${i}` });
  for (let round = 0; round < 3; round++) {
    const prefix = `/t7-${round}`;
    const ms = Array.from({ length: 10 }, () => mk({ prefix }));
    const leases = await Promise.all(ms.map((m, i) => m.acquireLease(cfg, dual(i + 1))));
    assert.is(new Set(leases.map((l) => String(l.ipv6Subnet))).size, 10, leases.map((l) => l.key).join('\n'));
    // And etcd holds exactly those ten keys: the losers gave theirs up.
    const keys = Object.keys(await etcd.client().getAll().prefix(`${prefix}/subnets/`).strings()).sort();
    assert.equal(keys, leases.map((l) => l.key).sort());
  }
});

test('dual stack: independent IPv6 subnets in flannel\'s key and JSON; reuse keeps both halves; an IPv4-only lease is released for a dual-stack config; the previous pair is reused', async () => {
  const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/48"}');
  const dual = (ip: string, n: number) => ({ ...req(ip), publicIPv6: `2001:db8::${n}`, backendV6Data: { VNI: 1, VtepMAC: '0e:00:00:00:00:06' } });
  const m = mk({ prefix: '/t6' });
  const leases: Lease[] = [];
  for (let i = 1; i <= 8; i++) leases.push(await m.acquireLease(cfg, dual(`192.0.2.${i}`, i)));
  assert.is(new Set(leases.map((l) => String(l.ipv6Subnet))).size, 8);
  for (const l of leases) {
    assert.ok(l.ipv6Subnet && cfg.ipv6Network!.containsNet(l.ipv6Subnet) && l.ipv6Subnet.prefixLen === 64 && l.ipv6Subnet.ip >= cfg.ipv6SubnetMin!.ip);
    // Among the first 100 free from IPv6SubnetMin: with up to 7 taken before it, at most index 107.
    assert.ok(l.ipv6Subnet.ip - cfg.ipv6Network!.ip < 108n << 64n, `among the first 100 free from IPv6SubnetMin: ${l.ipv6Subnet}`);
    assert.ok(/(\d+\.\d+.\d+.\d+)-(\d+)&([a-f\d:]+)-(\d+)$/.test(l.key), l.key);
  }
  const all = await etcd.client().getAll().prefix('/t6/subnets/').strings();
  assert.is(all[leases[0]!.key], '{"PublicIP":"192.0.2.1","PublicIPv6":"2001:db8::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:00:06"}}');
  // Not derived from the IPv4 index: over 8 hosts, some pair's IPv6 index differs from its IPv4 index (1 in 100^8 that none does).
  const idx = (l: Lease) => [Number((l.subnet.ip - cfg.network.ip) >> 8n), Number((l.ipv6Subnet!.ip - cfg.ipv6Network!.ip) >> 64n)];
  assert.ok(leases.some((l) => idx(l)[0] !== idx(l)[1]));
  // Reuse by PublicIP keeps both halves.
  const again = await mk({ prefix: '/t6' }).acquireLease(cfg, dual('192.0.2.3', 3));
  assert.is(again.key, leases[2]!.key);
  // An IPv4-only lease of this PublicIP does not fit a dual-stack config: released, a new pair leased.
  const v4cfg = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
  const old = await mk({ prefix: '/t6b' }).acquireLease(v4cfg, req('192.0.2.50'));
  const up = await mk({ prefix: '/t6b' }).acquireLease(cfg, dual('192.0.2.50', 50));
  assert.ok(up.ipv6Subnet);
  assert.is((await etcd.client().get(old.key).string()), null);
  // The previous subnet file's pair is taken again when both halves are free.
  const prev = { v4: Prefix.parse('10.244.123.0/24'), v6: Prefix.parse('fd00:10:244:77::/64') };
  const p = await mk({ prefix: '/t6c' }).acquireLease(cfg, { ...dual('192.0.2.60', 60), previousSubnet: prev.v4, previousIpv6Subnet: prev.v6 });
  assert.equal([String(p.subnet), String(p.ipv6Subnet)], ['10.244.123.0/24', 'fd00:10:244:77::/64']);
});

test('dual stack: a lease that overlaps an older one (two hosts on one IPv6 subnet) is given up on reuse and after a put-back; the older is kept', async () => {
  const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/48"}');
  const dual = (n: number) => ({ ...req(`192.0.2.${n}`), publicIPv6: `2001:db8::${n}` });
  const value = (n: number) => JSON.stringify({ PublicIP: `192.0.2.${n}`, PublicIPv6: `2001:db8::${n}`, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' } });
  const key = (v4: string, v6: string) => `/t8/subnets/${v4}-24&${v6}-64`;
  const c = etcd.client();
  const withLease = async (k: string, n: number) => { await c.lease(60, { autoKeepAlive: false }).put(k).value(value(n)); };
  // Host 1's key first, then host 2's on the same IPv6 subnet (left by a version that did not check).
  const older = key('10.244.1.0', 'fd00:10:244:5::');
  const later = key('10.244.2.0', 'fd00:10:244:5::');
  await withLease(older, 1);
  await withLease(later, 2);
  const m = mk({ prefix: '/t8' });
  const two = await m.acquireLease(cfg, dual(2));
  assert.is.not(String(two.ipv6Subnet), 'fd00:10:244:5::/64', 'host 2 reused the later key');
  assert.is(await c.get(later).string(), null, 'the later key is given up');
  assert.is(await c.get(older).string(), value(1), 'the older is left alone');
  // Host 1 reuses its own: it is the older.
  assert.is((await m.acquireLease(cfg, dual(1))).key, older);

  // A kept lease whose key vanishes while another host leases its IPv6 subnet (one etcd transaction,
  // so the rival is older than the put-back): the keeper puts it back, sees the rival, moves.
  const kept = await m.acquireLease(cfg, dual(3));
  const ac = new AbortController();
  const changes: LeaseChange[] = [];
  const k = m.keepLease(kept, cfg, dual(3), { signal: ac.signal, onChange: (ch) => { changes.push(ch); } });
  const rival = key('10.244.200.0', String(kept.ipv6Subnet).replace('/64', ''));
  await c.if(kept.key, 'Version', '>', 0).then(c.delete().key(kept.key), c.put(rival).value(value(4))).commit();
  const t0 = Date.now();
  while (changes.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  assert.equal(changes.map((ch) => ch.kind), ['moved']);
  assert.match(changes[0]!.reason, rival);
  const moved = changes[0]!.lease;
  assert.is.not(String(moved.ipv6Subnet), String(kept.ipv6Subnet));
  assert.is(await c.get(kept.key).string(), null, 'the put-back key is given up');
  assert.is(await c.get(moved.key).string(), value(3));
  assert.is(await c.get(rival).string(), value(4));
  ac.abort();
  await k.done;
});

test.run();
