// A remote host as the vxlan backend sees it, read from its lease: for the
// IPv4 device its subnet, BackendData and PublicIP; for a dual-stack
// network's IPv6 device (weft-v6.<VNI>) its IPv6 subnet, BackendV6Data and
// PublicIPv6, as flannel's vxlan_network.go reads them.
import { formatIp, parseIp, type DualAddress, type IpFamily, type Prefix } from '../../lib/ip.js';
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
    /** The underlay address this device's packets go to: PublicIP (IPv4 device) or PublicIPv6 (IPv6 device). */
    readonly dst: string = publicIp.v4!,
  ) {}
  equals(o: VxlanPeer): boolean {
    return this.subnet.equals(o.subnet) && this.mac === o.mac && this.publicIp.v4 === o.publicIp.v4 && this.publicIp.v6 === o.publicIp.v6 && this.dst === o.dst;
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
export function parseVxlanPeer(lease: Lease, vni: number, own: DualAddress, ownMac?: string, family: IpFamily = 4): { peer: VxlanPeer } | { error: string } | { none: true } {
  const a = lease.attrs;
  if (a.backendType !== 'vxlan') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "vxlan"` };
  if (family === 6) return parseV6(lease, vni, own, ownMac);
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

/** The IPv6 device's peer: none when the lease has no IPv6 subnet (an IPv4-only host; flannel skips it the same way). */
function parseV6(lease: Lease, vni: number, own: DualAddress, ownMac?: string): { peer: VxlanPeer } | { error: string } | { none: true } {
  const a = lease.attrs;
  if (!lease.ipv6Subnet) return { none: true };
  const data = a.backendV6Data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { error: `the lease has IPv6 subnet ${lease.ipv6Subnet} but BackendV6Data is not an object with VtepMAC: ${JSON.stringify(data ?? null)}` };
  }
  const d = data as Record<string, unknown>;
  if (!validVtepMac(d.VtepMAC)) return { error: `BackendV6Data.VtepMAC ${JSON.stringify(d.VtepMAC)} is not a unicast MAC address` };
  if (d.VNI !== undefined && d.VNI !== vni) return { error: `BackendV6Data.VNI ${JSON.stringify(d.VNI)} differs from this network's VNI ${vni}` };
  if (!a.publicIPv6) return { error: `the lease has IPv6 subnet ${lease.ipv6Subnet} but no PublicIPv6` };
  const dst = canonicalIp(a.publicIPv6); // as the kernel prints it, so FDB listings compare equal
  if (dst === own.v6) return { error: `PublicIPv6 ${a.publicIPv6} is this host's own address` };
  if (ownMac !== undefined && d.VtepMAC.toLowerCase() === ownMac.toLowerCase()) return { error: `BackendV6Data.VtepMAC ${d.VtepMAC} is this host's own IPv6 VTEP MAC` };
  const sn6 = lease.ipv6Subnet;
  return { peer: new VxlanPeer(sn6, sn6.address(0), d.VtepMAC.toLowerCase(), { v4: a.publicIP, v6: dst }, dst) };
}

const canonicalIp = (s: string): string => formatIp(parseIp(s).bytes);
