// The VTEP MAC must survive restarts of the agent and of the host, or every
// peer's neighbour and FDB entries for this host would go stale. It is
// derived from what identifies this VTEP in the cluster: its public IP and
// the VNI (and the etcd prefix, so two overlays on one host differ), plus a
// per-host random salt kept in --state-dir, so that two hosts deriving it
// from the same public IP (behind one NAT) do not collide. An empty salt is
// the derivation of weft before the salt (kept by upgraded hosts).
import { createHash } from 'node:crypto';

export function stableVtepMac(publicIp: string, vni: number, prefix: string, salt = ''): string {
  const h = createHash('sha256').update(`weft-vtep\0${prefix}\0${publicIp}\0${vni}${salt ? `\0${salt}` : ''}`).digest();
  // Locally administered (bit 1 set), unicast (bit 0 clear).
  h[0] = (h[0]! & 0xfc) | 0x02;
  return Array.from(h.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A MAC a peer may use as its VTEP address: well-formed, unicast, not all zeros. */
export function validVtepMac(mac: unknown): mac is string {
  if (typeof mac !== 'string') return false;
  const m = mac.toLowerCase();
  if (!MAC_RE.test(m)) return false;
  if (m === '00:00:00:00:00:00') return false;
  return (parseInt(m.slice(0, 2), 16) & 1) === 0;
}
