// The bench's bulk transactions (bench/etcd-bulk.ts) against a real etcd: over
// a member's unix socket and over TCP, what they write is what etcd3 reads
// back, at the revision they report; etcd's refusal names its reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Etcd3 } from 'etcd3';
import { type EtcdCluster, startEtcd } from '../../../lab/etcd.js';
import { EtcdBulk } from '../../../bench/etcd-bulk.js';

const P = '/weft-bulk-test/';
let etcd: EtcdCluster;
let client: Etcd3;
const bulks: EtcdBulk[] = [];

const puts = (from: number, n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ key: `${P}${tag}/${String(from + i).padStart(5, '0')}`, value: JSON.stringify({ k: from + i, tag, text: 'ü'.repeat(i % 7) }) }));

test.before(async () => {
  etcd = await startEtcd({ unixSocket: true });
  client = etcd.client();
});

test.after(async () => {
  for (const b of bulks) b.close();
  await etcd?.stop();
});

test('1000 puts in one transaction over the unix socket: all there, at the revision reported', async () => {
  const m = etcd.members[0]!;
  assert.ok(m.socketPath, 'unixSocket mode gives the member a socket');
  const bulk = new EtcdBulk(m);
  bulks.push(bulk);
  const want = puts(0, 1000, 'sock');
  const revision = await bulk.txn(want);
  const got = await client.getAll().prefix(`${P}sock/`).exec();
  assert.is(Number(got.header.revision), revision);
  assert.is(got.kvs.length, 1000);
  for (const [i, kv] of got.kvs.entries()) {
    assert.is(kv.key.toString(), want[i]!.key);
    assert.is(kv.value.toString(), want[i]!.value);
    assert.is(Number(kv.mod_revision), revision);
  }
});

test('transactions encoded ahead (as a burst\'s are) in flight together over TCP: each its own revision, every put there', async () => {
  const bulk = new EtcdBulk({ endpoint: etcd.members[0]!.endpoint, socketPath: undefined });
  bulks.push(bulk);
  const encoded = [0, 1, 2, 3].map((k) => EtcdBulk.encode(puts(k * 300, 300, 'tcp')));
  assert.is(Number(await client.getAll().prefix(`${P}tcp/`).count()), 0, 'encoding sends nothing');
  const revs = await Promise.all(encoded.map((t) => bulk.txn(t)));
  assert.is(new Set(revs).size, 4);
  assert.is(Number((await client.getAll().prefix(`${P}tcp/`).count())), 1200);
});

test('deletes in one transaction: those keys gone, the others kept, at the revision reported', async () => {
  const bulk = new EtcdBulk(etcd.members[0]!);
  bulks.push(bulk);
  const want = puts(0, 500, 'del');
  await bulk.txn(want);
  const revision = await bulk.txn(want.slice(0, 400).map((p) => ({ key: p.key, delete: true as const })));
  const got = await client.getAll().prefix(`${P}del/`).exec();
  assert.is(Number(got.header.revision), revision);
  assert.equal(got.kvs.map((kv) => kv.key.toString()), want.slice(400).map((p) => p.key));
});

test("etcd's refusal (more puts than --max-txn-ops) is an error with gRPC's status and etcd's reason", async () => {
  const bulk = new EtcdBulk(etcd.members[0]!);
  bulks.push(bulk);
  const ops = puts(0, 1001, 'toomany');
  for (const t of [ops, EtcdBulk.encode(ops)]) {
    try {
      await bulk.txn(t);
      assert.unreachable('etcd took 1001 puts');
    } catch (e) {
      assert.match((e as Error).message, /^etcd unix:\S+ Txn of 1001 puts: gRPC status 3 \(etcdserver: too many operations in txn request\)$/);
    }
  }
  assert.is(Number(await client.getAll().prefix(`${P}toomany/`).count()), 0);
});

test('a URL that is not plain http is refused before connecting', () => {
  assert.throws(() => new EtcdBulk({ endpoint: 'https://127.0.0.1:2379', socketPath: undefined }), /plain HTTP\/2 to the lab's etcd, not "https:\/\/127.0.0.1:2379"/);
});

test.run();
