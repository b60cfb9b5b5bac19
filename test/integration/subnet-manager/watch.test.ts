import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../../daemon/logger.js';
import { Prefix } from '../../../lib/ip.js';
import { SubnetManager, decodeLeaseAttrs, parseNetworkConfig, type LeaseBatch } from '../../../subnet-manager/index.js';
import { type EtcdCluster, compact, startEtcd } from '../../../lab/etcd.js';
import { watchResponsesDecoded } from '../../../subnet-manager/watch-decode.js';

const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
const P = '/coreos.com/network/subnets/';
// Each lease its own VtepMAC (derived from its PublicIP): two leases sharing one are a conflict.
const macOf = (ip: string) => '02:00:' + ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':');
const val = (ip: string) => `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${macOf(ip)}"}}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let etcd: EtcdCluster;
let direct: Etcd3; // bypasses the relay
const cleanups: (() => Promise<unknown> | void)[] = [];

/** A watcher that mirrors the lease set as a consumer would (replace by subnet). */
function mirror(m: SubnetManager, ownSubnet?: string) {
  const ac = new AbortController();
  const set = new Map<string, string>();
  const batches: LeaseBatch[] = [];
  const seenAt = new Map<string, number>();
  const done = m.watchLeases(cfg, {
    signal: ac.signal,
    ...(ownSubnet ? { own: { key: P + ownSubnet.replace('/', '-'), subnet: Prefix.parse(ownSubnet), attrs: decodeLeaseAttrs(val('192.0.2.9')) } } : {}),
    onBatch: async (b) => {
      batches.push(b);
      for (const e of b.events) {
        const k = String(e.lease.subnet);
        if (e.type === 'added') { set.set(k, e.lease.attrs.publicIP); seenAt.set(k, performance.now()); } else set.delete(k);
      }
    },
  });
  cleanups.push(async () => { ac.abort(); await done; });
  return { set, batches, seenAt, stop: async () => { ac.abort(); await done; } };
}

async function until(what: string, f: () => boolean, ms = 10000) {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const mgr = () => {
  const m = new SubnetManager({ endpoints: etcd.endpoints, logger: createLogger('silent') });
  cleanups.push(() => m.close());
  return m;
};

test.before(async () => {
  etcd = await startEtcd({ unixSocket: true });
  direct = new Etcd3({ hosts: etcd.labEndpoints });
});
test.after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  direct?.close();
  await etcd?.stop();
});

test('snapshot first (even empty), own lease filtered, garbage skipped and counted, good leases delivered; put->onBatch latency', async () => {
  const warns: string[] = [];
  const m = new SubnetManager({ endpoints: etcd.endpoints, logger: createLogger('warn', {}, (l) => warns.push(l)) });
  cleanups.push(() => m.close());
  const w = mirror(m, '10.244.9.0/24');
  await until('snapshot', () => w.batches.length === 1);
  assert.equal(w.batches[0], { snapshot: true, events: [] });
  await direct.put(P + '10.244.1.0-24').value(val('192.0.2.1'));
  await direct.put(P + '10.244.9.0-24').value(val('192.0.2.9')); // own
  await direct.put(P + '10.244.2.0-24').value('{not json');
  await direct.put(P + '10.245.0.0-24').value(val('192.0.2.3')); // outside Network
  await direct.put(P + 'banana').value(val('192.0.2.4'));
  await direct.put(P + '10.244.1.0-24').value('{"PublicIP":42}'); // good key turned bad: keeps last good value
  await direct.put(P + '10.244.5.0-24').value(val('192.0.2.5'));
  await until('good leases', () => w.set.has('10.244.5.0/24'));
  assert.equal([...w.set.entries()].sort(), [['10.244.1.0/24', '192.0.2.1'], ['10.244.5.0/24', '192.0.2.5']]);
  // The watch's responses came through weft's decoder (watch-decode.ts), not protobufjs.
  assert.ok(watchResponsesDecoded() >= 7, `decoded ${watchResponsesDecoded()}`);
  assert.is(m.stats.invalidLeases, 4);
  assert.ok(warns.some((l) => l.includes(P + '10.245.0.0-24') && l.includes('outside Network')), warns.join('\n'));
  assert.ok(warns.some((l) => l.includes(P + '10.244.1.0-24') && l.includes('last good value')));
  // A fresh watcher's snapshot agrees.
  const w2 = mirror(m);
  await until('second snapshot', () => w2.batches.length >= 1);
  assert.ok(w2.batches[0]!.snapshot);
  // 10.244.1.0-24 now holds garbage and this watcher never saw a good value for it.
  assert.equal([...w2.set.keys()].sort(), ['10.244.5.0/24', '10.244.9.0/24']);

  const lat: number[] = [];
  for (let i = 0; i < 20; i++) {
    const k = `10.244.${100 + i}.0/24`;
    const t0 = performance.now();
    await direct.put(P + `10.244.${100 + i}.0-24`).value(val(`192.0.2.${100 + i}`));
    await until(k, () => w.seenAt.has(k));
    lat.push(w.seenAt.get(k)! - t0);
  }
  console.log(`  put -> onBatch latency, median of 20: ${median(lat).toFixed(2)} ms`);
  await direct.delete().key(P + '10.244.5.0-24');
  await until('removed', () => !w.set.has('10.244.5.0/24'));
  await w.stop(); await w2.stop();
  await direct.delete().prefix(P);
});

test('watcher cut off while history is compacted past its revision re-lists and diffs (no mass removal)', async () => {
  await direct.put(P + '10.244.1.0-24').value(val('192.0.2.1'));
  await direct.put(P + '10.244.2.0-24').value(val('192.0.2.2'));
  const m = mgr();
  const w = mirror(m);
  await until('snapshot', () => w.set.size === 2);
  etcd.pauseRelay();
  await sleep(300);
  await direct.delete().key(P + '10.244.1.0-24');
  await direct.put(P + '10.244.3.0-24').value(val('192.0.2.3'));
  await direct.put(P + '10.244.2.0-24').value(val('192.0.2.22'));
  await compact(direct);
  const before = w.batches.length;
  etcd.resumeRelay();
  await until('resync', () => m.stats.watchResyncs >= 1 && w.set.size === 2 && w.set.has('10.244.3.0/24'), 15000);
  assert.equal([...w.set.entries()].sort(), [['10.244.2.0/24', '192.0.2.22'], ['10.244.3.0/24', '192.0.2.3']]);
  const resyncBatch = w.batches.slice(before).find((b) => b.events.length > 0)!;
  assert.is(resyncBatch.snapshot, false);
  assert.equal(resyncBatch.events.map((e) => `${e.type} ${e.lease.subnet}`).sort(), ['added 10.244.2.0/24', 'added 10.244.3.0/24', 'removed 10.244.1.0/24']);
  assert.ok(m.stats.reconnects >= 1);
  // Still watching after the resync.
  await direct.put(P + '10.244.4.0-24').value(val('192.0.2.4'));
  await until('post-resync event', () => w.set.has('10.244.4.0/24'));
  await w.stop();
  await direct.delete().prefix(P);
});

test('etcd down for 10 s and back: the watch resumes and sees every lease written after the restart', async () => {
  const m = mgr();
  const w = mirror(m);
  await until('snapshot', () => w.batches.length >= 1);
  await direct.put(P + '10.244.1.0-24').value(val('192.0.2.1'));
  await until('first', () => w.set.has('10.244.1.0/24'));
  await etcd.members[0]!.kill('SIGKILL');
  await sleep(10_000);
  await etcd.members[0]!.restart();
  const c = new Etcd3({ hosts: etcd.labEndpoints });
  try {
    for (let i = 0; i < 10; i++) await c.put(P + `10.244.${10 + i}.0-24`).value(val(`192.0.2.${10 + i}`));
    await c.delete().key(P + '10.244.1.0-24');
  } finally { c.close(); }
  await until('all ten after restart', () => w.set.size === 10 && !w.set.has('10.244.1.0/24'), 15000);
  assert.ok(m.stats.reconnects >= 1, `reconnects ${m.stats.reconnects}`);
  // Acquire works again too.
  const l = await m.acquireLease(cfg, { publicIP: '192.0.2.77', backendType: 'vxlan', backendData: null });
  await until('own acquire seen', () => w.set.get(String(l.subnet)) === '192.0.2.77');
  await w.stop();
});

test('reconnect() (our source address moved): the running watch resumes on a new connection and misses nothing; requests work', async () => {
  await direct.delete().prefix(P);
  const m = mgr();
  const w = mirror(m);
  await until('snapshot', () => w.batches.length >= 1);
  await direct.put(P + '10.244.31.0-24').value(val('192.0.2.31'));
  await until('first', () => w.set.has('10.244.31.0/24'));
  const before = m.stats.reconnects;
  m.reconnect('test');
  // Written at once, while the watch starts again: seen through the resumed watch.
  await direct.put(P + '10.244.32.0-24').value(val('192.0.2.32'));
  await until('the lease written after reconnect()', () => w.set.has('10.244.32.0/24'));
  assert.is(m.stats.reconnects, before + 1, 'the watch resumed once');
  const l = await m.acquireLease(cfg, { publicIP: '192.0.2.78', backendType: 'vxlan', backendData: null });
  await until('own acquire seen', () => w.set.get(String(l.subnet)) === '192.0.2.78');
  assert.is(w.set.size, 3);
  await w.stop();
});

test.run();
