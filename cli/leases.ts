// `weft leases`: every subnet lease in etcd as a table (or JSON): subnet,
// public IP, backend, VTEP MAC and when it expires. Values that are not
// valid leases are listed with the reason, since an operator wants to see them.
import { Etcd3 } from 'etcd3';
import { decodeLeaseAttrs, parseLeaseKeySuffix } from '../subnet-manager/index.js';

export interface LeaseRow {
  key: string;
  subnet: string;
  publicIp: string;
  backend: string;
  vtepMac: string;
  /** Seconds left, or null for a reservation (no etcd lease). */
  ttlSeconds: number | null;
  error?: string;
}

export async function readLeaseRows(client: Etcd3, prefix: string): Promise<LeaseRow[]> {
  const dir = `${prefix.replace(/\/$/, '')}/subnets/`;
  const res = await client.getAll().prefix(dir).exec();
  const rows: LeaseRow[] = [];
  for (const kv of res.kvs) {
    const key = kv.key.toString();
    const row: LeaseRow = { key, subnet: key.slice(dir.length), publicIp: '', backend: '', vtepMac: '', ttlSeconds: null };
    try {
      const { subnet, ipv6Subnet } = parseLeaseKeySuffix(key.slice(dir.length));
      row.subnet = subnet.toString() + (ipv6Subnet ? ` ${ipv6Subnet.toString()}` : '');
      const a = decodeLeaseAttrs(kv.value.toString());
      row.publicIp = a.publicIP;
      row.backend = a.backendType;
      const d = a.backendData as { VtepMAC?: unknown } | null;
      row.vtepMac = d && typeof d === 'object' && typeof d.VtepMAC === 'string' ? d.VtepMAC : '';
    } catch (e) {
      row.error = (e as Error).message;
    }
    if (kv.lease !== '0') {
      const t = await client.leaseClient.leaseTimeToLive({ ID: kv.lease });
      row.ttlSeconds = Number(t.TTL);
    }
    rows.push(row);
  }
  return rows;
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

export async function listLeases(endpoints: string[], prefix: string, json: boolean): Promise<number> {
  const client = new Etcd3({ hosts: endpoints, dialTimeout: 3000 });
  try {
    const rows = await readLeaseRows(client, prefix).catch((e: Error) => {
      throw new Error(`cannot read leases from etcd at ${endpoints.join(',')}: ${e.message}`);
    });
    process.stdout.write(json ? JSON.stringify(rows, null, 2) + '\n' : rows.length ? formatLeaseTable(rows) + '\n' : `no leases under ${prefix}/subnets/\n`);
    return 0;
  } finally {
    client.close();
  }
}
