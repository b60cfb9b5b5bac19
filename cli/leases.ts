// `weft leases`: every subnet lease in etcd as a table (or JSON): subnet,
// public IP, backend, VTEP MAC and when it expires. Values that are not
// valid leases are listed with the reason, since an operator wants to see them.
import { checkEtcdFlags, ENV_PREFIX, ETCD_FLAGS, type EtcdFlags } from '../daemon/etcd-flags.js';
import type { Command } from '../lib/flags.js';
import { nullLogger } from '../lib/log.js';
import { decodeLeaseAttrs, LeaseTable, leaseFromKV, parseLeaseKeySuffix, type Registry, type SubnetManager } from '../subnet-manager/index.js';
import type { LeaseConflict } from '../subnet-manager/lease-claims.js';
import { withSubnetManager } from './etcd.js';

export interface LeaseRow {
  key: string;
  subnet: string;
  publicIp: string;
  backend: string;
  vtepMac: string;
  /** A dual-stack lease's IPv6 half: its IPv6 subnet, PublicIPv6 and BackendV6Data's VtepMAC ('' when none). */
  ipv6?: { subnet: string; publicIp: string; vtepMac: string };
  /** Seconds left, or null for a reservation (no etcd lease). */
  ttlSeconds: number | null;
  error?: string;
}

/** Every key under <prefix>/subnets/ as a row; the TTLs of their etcd leases read together. */
export async function readLeaseRows(reg: Registry): Promise<LeaseRow[]> {
  const { kvs } = await reg.listSubnets();
  const ttls = await reg.leaseTtls(kvs.map((kv) => kv.leaseId));
  return kvs.map((kv) => {
    const suffix = kv.key.slice(reg.subnetsPrefix.length);
    const ttl = ttls.get(kv.leaseId);
    const row: LeaseRow = { key: kv.key, subnet: suffix, publicIp: '', backend: '', vtepMac: '', ttlSeconds: ttl ?? null };
    try {
      const { subnet, ipv6Subnet } = parseLeaseKeySuffix(suffix);
      row.subnet = subnet.toString() + (ipv6Subnet ? ` ${ipv6Subnet.toString()}` : '');
      const a = decodeLeaseAttrs(kv.value);
      row.publicIp = a.publicIP;
      row.backend = a.backendType;
      const mac = (d: unknown) => (d && typeof d === 'object' && typeof (d as { VtepMAC?: unknown }).VtepMAC === 'string' ? (d as { VtepMAC: string }).VtepMAC : '');
      row.vtepMac = mac(a.backendData);
      if (ipv6Subnet) row.ipv6 = { subnet: ipv6Subnet.toString(), publicIp: a.publicIPv6 ?? '', vtepMac: mac(a.backendV6Data) };
    } catch (e) {
      row.error = (e as Error).message;
    }
    return row;
  });
}

/**
 * The leases weftd on the host holding `ownSubnet` skips for a conflict (a VtepMAC, a
 * PublicIP with its backend, or a subnet another lease or this host holds), judged as
 * weftd judges a fresh listing: older keys keep their claims.
 */
export async function readLeaseConflicts(sm: SubnetManager, ownSubnet: string): Promise<LeaseConflict[]> {
  const cfg = await sm.getNetworkConfig();
  const reg = sm.registry;
  const { kvs } = await reg.listSubnets();
  const ownKv = kvs.find((kv) => {
    try { return parseLeaseKeySuffix(kv.key.slice(reg.subnetsPrefix.length)).subnet.toString() === ownSubnet; } catch { return false; }
  });
  const own = ownKv && leaseFromKV(cfg, reg.subnetsPrefix, ownKv);
  const table = new LeaseTable(cfg, reg.subnetsPrefix, nullLogger, own && typeof own !== 'string' ? { own } : {});
  table.resync(kvs);
  return table.conflicts();
}

function human(s: number | null): string {
  if (s === null) return 'never (reserved)';
  if (s < 0) return 'expired';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function formatLeaseTable(rows: LeaseRow[]): string {
  const head = ['SUBNET', 'PUBLIC IP', 'BACKEND', 'VTEP MAC', 'EXPIRES IN'];
  const body = rows.map((r) => (r.error ? [r.subnet, `invalid: ${r.error}`, '', '', human(r.ttlSeconds)] : [r.subnet, r.publicIp, r.backend, r.vtepMac || '-', human(r.ttlSeconds)]));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export async function listLeases(etcd: EtcdFlags, json: boolean): Promise<number> {
  const rows = await withSubnetManager(etcd, (sm) => readLeaseRows(sm.registry)).catch((e: Error) => {
    throw new Error(`cannot read leases from etcd at ${etcd.etcdEndpoints.join(',')}: ${e.message}`);
  });
  process.stdout.write(json ? JSON.stringify(rows, null, 2) + '\n' : rows.length ? formatLeaseTable(rows) + '\n' : `no leases under ${etcd.etcdPrefix}/subnets/\n`);
  return 0;
}

export const leasesCommand: Command = {
  flags: {
    command: 'weft leases',
    about: 'Every subnet lease in etcd: subnet, public IP, backend, VTEP MAC and expiry.',
    envPrefix: ENV_PREFIX,
    flags: [...ETCD_FLAGS, { name: 'json', kind: 'bool', env: false, help: 'print JSON instead of a table' }],
  },
  run: (p) => {
    checkEtcdFlags(p.values);
    return listLeases(p.values as unknown as EtcdFlags, p.values.json === true);
  },
};
