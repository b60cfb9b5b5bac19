// A remote host as the vxlan backend sees it, read from its lease.
import type { DualAddress, Prefix } from '../../lib/ip.js';
import type { Lease } from '../../subnet-manager/index.js';
import { validVtepMac } from './vtep-mac.js';

export class VxlanPeer {
  constructor(
    readonly subnet: Prefix,
    /** <subnet>.0, the peer's VTEP address. */
    readonly vtepIp: string,
    readonly mac: string,
    /** Where its VXLAN packets go (the lease's PublicIP; PublicIPv6 for the IPv6 device later). */
    readonly publicIp: DualAddress,
  ) {}
  equals(o: VxlanPeer): boolean {
    return this.subnet.equals(o.subnet) && this.mac === o.mac && this.publicIp.v4 === o.publicIp.v4 && this.publicIp.v6 === o.publicIp.v6;
  }
}

/** The lease's VtepMAC in lower case, or undefined when it has none that could be one. */
export function leaseVtepMac(lease: Lease): string | undefined {
  const d = lease.attrs.backendData as { VtepMAC?: unknown } | null;
  return typeof d === 'object' && d !== null && validVtepMac(d.VtepMAC) ? d.VtepMAC.toLowerCase() : undefined;
}

/**
 * Turns a lease into a VXLAN peer, or says why it cannot be one. `own` is
 * this host's public address and `ownMac` its VTEP MAC: a lease carrying
 * either is never programmed (it would send this host's traffic to itself, or
 * take its MAC away from it).
 */
export function parseVxlanPeer(lease: Lease, vni: number, own: DualAddress, ownMac?: string): { peer: VxlanPeer } | { error: string } {
  const a = lease.attrs;
  if (a.backendType !== 'vxlan') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "vxlan"` };
  const data = a.backendData;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { error: `BackendData must be an object with VtepMAC, got ${JSON.stringify(data)}` };
  }
  const d = data as Record<string, unknown>;
  if (!validVtepMac(d.VtepMAC)) return { error: `VtepMAC ${JSON.stringify(d.VtepMAC)} is not a unicast MAC address` };
  if (d.VNI !== undefined && d.VNI !== vni) return { error: `VNI ${JSON.stringify(d.VNI)} differs from this network's VNI ${vni}` };
  if (a.publicIP === own.v4) return { error: `PublicIP ${a.publicIP} is this host's own address` };
  if (ownMac !== undefined && d.VtepMAC.toLowerCase() === ownMac.toLowerCase()) return { error: `VtepMAC ${d.VtepMAC} is this host's own VTEP MAC` };
  const publicIp: DualAddress = a.publicIPv6 ? { v4: a.publicIP, v6: a.publicIPv6 } : { v4: a.publicIP };
  return { peer: new VxlanPeer(lease.subnet, lease.subnet.address(0), d.VtepMAC.toLowerCase(), publicIp) };
}
