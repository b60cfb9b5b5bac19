// A remote host as the host-gw backend sees it: its subnet and the PublicIP
// its subnet is routed via. flannel reads nothing else from a host-gw lease
// (BackendData, if any, is ignored).
import { formatIp, isIp, parseIp, type DualAddress, type IpFamily, type Prefix } from '../../lib/ip.js';
import type { Lease } from '../../subnet-manager/index.js';

export class HostGwPeer {
  constructor(
    readonly subnet: Prefix,
    readonly publicIp: string,
  ) {}
  equals(o: HostGwPeer): boolean {
    return this.subnet.equals(o.subnet) && this.publicIp === o.publicIp;
  }
}

/** Turns a lease into a host-gw peer, or says why it cannot be one. `own` is this host's public address. */
export function parseHostGwPeer(lease: Lease, own: DualAddress, family: IpFamily = 4): { peer: HostGwPeer } | { error: string } | { none: true } {
  const a = lease.attrs;
  if (a.backendType !== 'host-gw') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "host-gw"` };
  if (family === 6) {
    // Dual stack: <peer IPv6 subnet> via <PublicIPv6>; a peer without an IPv6 subnet has no IPv6 route (flannel skips it too).
    if (!lease.ipv6Subnet) return { none: true };
    if (!a.publicIPv6) return { error: `the lease has IPv6 subnet ${lease.ipv6Subnet} but no PublicIPv6` };
    const gw = formatIp(parseIp(a.publicIPv6).bytes);
    if (gw === own.v6) return { error: `PublicIPv6 ${a.publicIPv6} is this host's own address` };
    return { peer: new HostGwPeer(lease.ipv6Subnet, gw) };
  }
  if (!isIp(a.publicIP, 4) || a.publicIP === '0.0.0.0') return { error: `PublicIP ${JSON.stringify(a.publicIP)} is not a usable IPv4 address` };
  if (a.publicIP === own.v4) return { error: `PublicIP ${a.publicIP} is this host's own address` };
  return { peer: new HostGwPeer(lease.subnet, a.publicIP) };
}
