// A remote host as the host-gw backend sees it: its subnet and the PublicIP
// its subnet is routed via. flannel reads nothing else from a host-gw lease
// (BackendData, if any, is ignored).
import { isIp, type DualAddress, type Prefix } from '../../lib/ip.js';
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
export function parseHostGwPeer(lease: Lease, own: DualAddress): { peer: HostGwPeer } | { error: string } {
  const a = lease.attrs;
  if (a.backendType !== 'host-gw') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "host-gw"` };
  if (!isIp(a.publicIP, 4) || a.publicIP === '0.0.0.0') return { error: `PublicIP ${JSON.stringify(a.publicIP)} is not a usable IPv4 address` };
  if (a.publicIP === own.v4) return { error: `PublicIP ${a.publicIP} is this host's own address` };
  return { peer: new HostGwPeer(lease.subnet, a.publicIP) };
}
