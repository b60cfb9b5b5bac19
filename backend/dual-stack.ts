// A dual-stack network's backend: the IPv4 half and the IPv6 half side by
// side, each a whole Backend of one family (vxlan: weft.<VNI> and
// weft-v6.<VNI>; host-gw: IPv4 and IPv6 routes), fed the same lease batches
// (the IPv6 half reads each lease's IPv6 subnet, PublicIPv6 and
// BackendV6Data, and passes over peers without an IPv6 subnet). The lease
// publishes the IPv4 half's data as BackendData and the IPv6 half's as
// BackendV6Data, as flannel's.
import type { Lease, LeaseBatch } from '../subnet-manager/index.js';
import type { Backend, BackendStats } from './backend.js';

export class DualStackBackend implements Backend {
  readonly type: string;
  /** The smaller of the two: one MTU serves the bridge and the containers for both families. */
  readonly mtu: number;
  readonly leaseData: unknown;
  readonly leaseV6Data: unknown;

  constructor(
    readonly v4: Backend,
    readonly v6: Backend,
  ) {
    if (v4.type !== v6.type) throw new TypeError(`dual-stack halves differ in type: ${v4.type} and ${v6.type}`);
    this.type = v4.type;
    this.mtu = Math.min(v4.mtu, v6.mtu);
    this.leaseData = v4.leaseData;
    this.leaseV6Data = v6.leaseData;
  }

  async configure(own: Lease): Promise<void> {
    await this.v4.configure(own);
    await this.v6.configure(own);
  }

  async apply(batch: LeaseBatch): Promise<void> {
    await this.v4.apply(batch);
    await this.v6.apply(batch);
  }

  async resync(full: boolean): Promise<void> {
    await this.v4.resync(full);
    await this.v6.resync(full);
  }

  /** Conflicts between leases are judged on the IPv4 half (its VTEP MAC and PublicIP). */
  holds(lease: Lease): boolean {
    return this.v4.holds?.(lease) ?? false;
  }

  /** Counts add up; a peer is programmed in each family it has. Paths are listed per subnet of either family. */
  stats(): BackendStats {
    const a = this.v4.stats();
    const b = this.v6.stats();
    const paths = [...(a.paths ?? []), ...(b.paths ?? [])];
    const skipped = (a.peersSkipped ?? 0) + (b.peersSkipped ?? 0);
    return {
      ...a,
      peersKnown: a.peersKnown + b.peersKnown,
      peersProgrammed: a.peersProgrammed + b.peersProgrammed,
      kernelErrors: a.kernelErrors + b.kernelErrors,
      invalidPeers: a.invalidPeers + b.invalidPeers,
      deviceRecreated: a.deviceRecreated + b.deviceRecreated,
      ...(a.peersSkipped !== undefined || b.peersSkipped !== undefined ? { peersSkipped: skipped } : {}),
      ...(a.paths || b.paths ? { paths } : {}),
      ...(a.pathChanges !== undefined || b.pathChanges !== undefined ? { pathChanges: (a.pathChanges ?? 0) + (b.pathChanges ?? 0) } : {}),
    };
  }

  async close(): Promise<void> {
    await this.v4.close();
    await this.v6.close();
  }
}
