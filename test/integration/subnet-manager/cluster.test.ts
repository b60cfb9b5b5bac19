import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../../daemon/logger.js';
import { SubnetManager, parseNetworkConfig } from '../../../subnet-manager/index.js';
import { type EtcdCluster, startEtcd } from '../../../lab/etcd.js';

// Acquired subnets stay below 10.244.200.0, where the test writes leases by hand.
const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMax":"10.244.199.0"}');
const P = '/coreos.com/network/subnets/';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, f: () => boolean, ms = 15000) {
  const t0 = Date.now();
  while (!f()) { if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`); await sleep(20); }
}

let etcd: EtcdCluster;
test.before(async () => { etcd = await startEtcd({ members: 3 }); });
test.after(async () => { await etcd?.stop(); });

test('3 members: killing the first endpoint\'s member, acquire and watch continue; a lease written meanwhile is seen', async () => {
  const m = new SubnetManager({ endpoints: etcd.endpoints, logger: createLogger('silent') });
  const ac = new AbortController();
  const set = new Map<string, string>();
  const w = m.watchLeases(cfg, { signal: ac.signal, onBatch: (b) => { for (const e of b.events) e.type === 'added' ? set.set(String(e.lease.subnet), e.lease.attrs.publicIP) : set.delete(String(e.lease.subnet)); } });
  const other = new Etcd3({ hosts: [etcd.members[2]!.endpoint] });
  try {
    const a = await m.acquireLease(cfg, { publicIP: '192.0.2.1', backendType: 'vxlan', backendData: null });
    await until('own acquire seen', () => set.has(String(a.subnet)));
    for (const victim of [0, 1]) {
      await etcd.members[victim]!.kill('SIGKILL');
      // Written through a surviving member while this one is down.
      await other.put(P + `10.244.${200 + victim}.0-24`).value(`{"PublicIP":"192.0.2.${200 + victim}","PublicIPv6":null,"BackendType":"vxlan","BackendData":null}`);
      const l = await m.acquireLease(cfg, { publicIP: `192.0.2.${10 + victim}`, backendType: 'vxlan', backendData: null });
      await until(`lease written while member ${victim} down`, () => set.has(`10.244.${200 + victim}.0/24`) && set.has(String(l.subnet)));
      await etcd.members[victim]!.restart();
    }
    assert.is(set.size, 5);
  } finally {
    ac.abort(); await w; other.close(); await m.close();
  }
});

test.run();
