// Listing and watch responses larger than gRPC's default 4 MiB receive limit:
// many leases (about 28,000 of flannel's size, here 2600 with a large
// BackendData) come in one range response, and a watcher that resumes from a
// revision before them gets them in one watch response. Both must arrive (not
// fail, nor retry the same request forever).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Etcd3 } from 'etcd3';
import { type EtcdCluster, startEtcd } from '../../../lab/etcd.js';
import { Registry } from '../../../subnet-manager/registry.js';

const P = '/coreos.com/network/subnets/';
const N = 2600;
const PAD = 'x'.repeat(2000);
const keyOf = (k: number) => `${P}10.${1 + (k >> 8)}.${k & 255}.0-24`;
const val = (k: number) => JSON.stringify({ PublicIP: `198.18.${k >> 8}.${k & 255}`, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01', Pad: PAD } });

let etcd: EtcdCluster;
let direct: Etcd3;
let reg: Registry;
let before = 0;

test.before(async () => {
  etcd = await startEtcd({ unixSocket: true });
  direct = new Etcd3({ hosts: etcd.labEndpoints });
  before = Number((await direct.get('nothing').exec()).header.revision);
  // 500 puts of ~2 KB per transaction: under etcd's 1.5 MiB request limit.
  for (let i = 0; i < N; i += 500) {
    const success = [];
    for (let k = i; k < Math.min(N, i + 500); k++) success.push({ request_put: { key: Buffer.from(keyOf(k)), value: Buffer.from(val(k)) } });
    await direct.kv.txn({ compare: [], success, failure: [] });
  }
  reg = new Registry({ endpoints: etcd.endpoints, prefix: '/coreos.com/network' });
});

test.after(async () => {
  reg?.close();
  direct?.close();
  await etcd?.stop();
});

test(`a listing of ${N} leases of ~2 KB (over 4 MiB) arrives whole`, async () => {
  const l = await reg.listSubnets();
  assert.is(l.kvs.length, N);
  assert.ok(l.kvs.reduce((n, kv) => n + kv.key.length + kv.value.length, 0) > 4 * 2 ** 20);
});

test('a watch from a revision before them gets every event (one response over 4 MiB)', async () => {
  let events = 0;
  let failure: unknown;
  const w = reg.watchSubnets(before + 1, {
    connected: () => {},
    data: (evs) => { events += evs.length; },
    disconnected: (err) => { failure = err; },
    canceled: (err) => { failure = err; },
  });
  const t0 = Date.now();
  while (events < N && failure === undefined && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 20));
  await w.cancel();
  assert.is(failure, undefined, String(failure));
  assert.is(events, N);
});

test.run();
