// The CLI's way to etcd: the same --etcd-* flags as weftd, through the
// SubnetManager's Registry (never a raw client), with a silent logger and one
// attempt per request: an operator waits ~3 s, not ~10 s, to hear etcd is down.
import type { EtcdFlags } from '../daemon/etcd-flags.js';
import { etcdOptionsFrom } from '../daemon/etcd-flags.js';
import { nullLogger } from '../lib/log.js';
import { SubnetManager } from '../subnet-manager/index.js';

/** Runs fn with a SubnetManager for the flags' etcd, closing it afterwards. */
export async function withSubnetManager<T>(f: EtcdFlags, fn: (sm: SubnetManager) => Promise<T>): Promise<T> {
  const sm = new SubnetManager({ endpoints: [...f.etcdEndpoints], prefix: f.etcdPrefix, logger: nullLogger, etcdOptions: etcdOptionsFrom(f), failFast: true });
  try {
    return await fn(sm);
  } finally {
    await sm.close();
  }
}
