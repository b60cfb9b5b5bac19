// A remote host as the wireguard backend sees it, read from its lease
// (flannel's format): {"BackendType":"wireguard","BackendData":{"PublicKey":"<base64>","Port":51820}}.
// A lease without Port (older flannel) means this host's own listen port, as flannel reads it.
import { show } from '../../lib/config-fields.js';
import type { Prefix } from '../../lib/ip.js';
import type { WgEndpoint } from '../../netlink/index.js';
import type { Lease } from '../../subnet-manager/index.js';
import { decodeKey } from './key.js';

export class WireguardPeer {
  constructor(
    readonly subnet: Prefix,
    /** base64, as in the lease. */
    readonly publicKey: string,
    /** The lease's PublicIP and Port. */
    readonly endpoint: WgEndpoint,
  ) {}
  equals(o: WireguardPeer): boolean {
    return this.subnet.equals(o.subnet) && this.publicKey === o.publicKey && this.endpoint.ip === o.endpoint.ip && this.endpoint.port === o.endpoint.port;
  }
}

export interface OwnIdentity {
  readonly publicIp: string;
  /** base64 */
  readonly publicKey: string;
  readonly listenPort: number;
}

/** Turns a lease into a WireGuard peer, or says why it cannot be one. */
export function parseWireguardPeer(lease: Lease, own: OwnIdentity): { peer: WireguardPeer } | { error: string } {
  const a = lease.attrs;
  if (a.backendType !== 'wireguard') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "wireguard"` };
  const d = a.backendData;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return { error: `BackendData must be an object with PublicKey, got ${show(d)}` };
  const data = d as Record<string, unknown>;
  const key = typeof data.PublicKey === 'string' ? data.PublicKey : undefined;
  if (key === undefined || !decodeKey(key)) return { error: `BackendData.PublicKey ${show(data.PublicKey)} is not a WireGuard public key (44 characters of base64)` };
  if (key === own.publicKey) return { error: `BackendData.PublicKey is this host's own public key (a key file copied from this host?)` };
  const port = data.Port ?? 0;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return { error: `BackendData.Port ${show(data.Port)} is not a UDP port` };
  if (a.publicIP === own.publicIp) return { error: `PublicIP ${a.publicIP} is this host's own address` };
  return { peer: new WireguardPeer(lease.subnet, key, { ip: a.publicIP, port: port === 0 ? own.listenPort : port }) };
}
