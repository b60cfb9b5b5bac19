// How weftd and the weft CLI reach etcd: the --etcd-* flags (one definition
// for both, each also WEFTD_ETCD_* in the environment) and the client options
// they make (TLS files read here, so a missing file names its flag).
import { readFileSync } from 'node:fs';
import { ConfigError, UsageError } from '../lib/errors.js';
import type { FlagDef } from '../lib/flags.js';

export const ENV_PREFIX = 'WEFTD_';

const url = (v: string) => {
  for (const part of v.split(',')) {
    let u: URL;
    try {
      u = new URL(part);
    } catch {
      return `"${part}" is not a URL like http://127.0.0.1:2379`;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return `"${part}" must use http:// or https://`;
  }
  return undefined;
};

export const ETCD_FLAGS: readonly FlagDef[] = [
  { name: 'etcd-endpoints', key: 'etcdEndpoints', kind: 'list', def: 'http://127.0.0.1:2379', check: url, help: 'comma-separated etcd client URLs' },
  { name: 'etcd-prefix', key: 'etcdPrefix', kind: 'string', def: '/coreos.com/network', check: (v) => (v.startsWith('/') ? undefined : 'must start with "/"'), help: 'etcd key prefix of the network config and leases' },
  { name: 'etcd-cafile', key: 'etcdCaFile', kind: 'string', help: 'CA certificate to verify etcd (TLS)' },
  { name: 'etcd-certfile', key: 'etcdCertFile', kind: 'string', help: 'client certificate for etcd (TLS)' },
  { name: 'etcd-keyfile', key: 'etcdKeyFile', kind: 'string', help: 'client key for etcd (TLS)' },
  { name: 'etcd-username', key: 'etcdUsername', kind: 'string', help: 'etcd user name' },
  { name: 'etcd-password', key: 'etcdPassword', kind: 'string', help: 'etcd password' },
];

export interface EtcdFlags {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly etcdCaFile?: string;
  readonly etcdCertFile?: string;
  readonly etcdKeyFile?: string;
  readonly etcdUsername?: string;
  readonly etcdPassword?: string;
}

/** The pairs that only make sense together; throws UsageError. */
export function checkEtcdFlags(v: Readonly<Record<string, unknown>>): void {
  if ((v.etcdCertFile === undefined) !== (v.etcdKeyFile === undefined)) throw new UsageError('--etcd-certfile and --etcd-keyfile must be given together');
  if ((v.etcdUsername === undefined) !== (v.etcdPassword === undefined)) throw new UsageError('--etcd-username and --etcd-password must be given together');
}

/** Options for the etcd client (SubnetManagerOptions.etcdOptions): TLS credentials and auth. */
export function etcdOptionsFrom(cfg: EtcdFlags): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new ConfigError(`${flag} ${path}: ${(e as Error).message}`);
    }
  };
  if (cfg.etcdCaFile || cfg.etcdCertFile) {
    o.credentials = {
      rootCertificate: cfg.etcdCaFile ? read('--etcd-cafile', cfg.etcdCaFile) : undefined,
      certChain: cfg.etcdCertFile ? read('--etcd-certfile', cfg.etcdCertFile) : undefined,
      privateKey: cfg.etcdKeyFile ? read('--etcd-keyfile', cfg.etcdKeyFile) : undefined,
    };
  }
  if (cfg.etcdUsername) o.auth = { username: cfg.etcdUsername, password: cfg.etcdPassword };
  return o;
}
