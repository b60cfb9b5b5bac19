// A remote host as the wireguard backend sees it, read from its lease
// (flannel's format): {"BackendType":"wireguard","BackendData":{"PublicKey":"<base64>","Port":51820}}.
// A lease without Port (older flannel) means this host's own listen port, as flannel reads it.
// A dual-stack network's IPv6 device (flannel's separate mode, flannel-wg-v6)
// reads the lease's IPv6 subnet, PublicIPv6 and BackendV6Data
// ({"PublicKey":"<base64>","Port":51821}) instead; a lease without an IPv6
// subnet is no peer of it.
import { show } from '../../lib/config-fields.js';
import { formatIp, parseIp, type IpFamily, type Prefix } from '../../lib/ip.js';
import type { WgEndpoint } from '../../netlink/index.js';
import type { Lease } from '../../subnet-manager/index.js';
import { decodeKey } from './key.js';

export class WireguardPeer {
  constructor(
    readonly subnet: Prefix,
    /** base64, as in the lease. */
    readonly publicKey: string,
    /** The lease's PublicIP and Port (IPv6 device: PublicIPv6 and BackendV6Data's Port). */
    readonly endpoint: WgEndpoint,
  ) {}
  equals(o: WireguardPeer): boolean {
    return this.subnet.equals(o.subnet) && this.publicKey === o.publicKey && this.endpoint.ip === o.endpoint.ip && this.endpoint.port === o.endpoint.port;
  }
}

export interface OwnIdentity {
  /** This host's PublicIP (the IPv6 device: its PublicIPv6). */
  readonly publicIp: string;
  /** base64 */
  readonly publicKey: string;
  readonly listenPort: number;
}

/** Turns a lease into a WireGuard peer of the device of `family`, or says why it cannot be one. */
export function parseWireguardPeer(lease: Lease, own: OwnIdentity, family: IpFamily = 4): { peer: WireguardPeer } | { error: string } | { none: true } {
  const a = lease.attrs;
  if (a.backendType !== 'wireguard') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "wireguard"` };
  if (family === 6 && !lease.ipv6Subnet) return { none: true };
  const field = family === 4 ? 'BackendData' : 'BackendV6Data';
  const d = family === 4 ? a.backendData : a.backendV6Data;
  const has = family === 4 ? '' : `the lease has IPv6 subnet ${lease.ipv6Subnet} but `;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return { error: `${has}${field} must be an object with PublicKey, got ${show(d ?? null)}` };
  const data = d as Record<string, unknown>;
  const key = typeof data.PublicKey === 'string' ? data.PublicKey : undefined;
  if (key === undefined || !decodeKey(key)) return { error: `${field}.PublicKey ${show(data.PublicKey)} is not a WireGuard public key (44 characters of base64)` };
  if (key === own.publicKey) return { error: `${field}.PublicKey is this host's own public key (a key file copied from this host?)` };
  const port = data.Port ?? 0;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return { error: `${field}.Port ${show(data.Port)} is not a UDP port` };
  let ip = a.publicIP;
  if (family === 6) {
    if (!a.publicIPv6) return { error: `${has}no PublicIPv6` };
    ip = formatIp(parseIp(a.publicIPv6).bytes); // as wg(8) and the kernel print it
    if (ip === own.publicIp) return { error: `PublicIPv6 ${a.publicIPv6} is this host's own address` };
  } else if (ip === own.publicIp) return { error: `PublicIP ${a.publicIP} is this host's own address` };
  const subnet = family === 4 ? lease.subnet : lease.ipv6Subnet!;
  return { peer: new WireguardPeer(subnet, key, { ip, port: port === 0 ? own.listenPort : port }) };
}
