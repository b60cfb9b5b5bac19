// A backend connects this host to its peers. Like flannel's, it has two
// halves: before the lease it says what to publish (e.g. the VTEP MAC); after
// it, it consumes lease batches and keeps the kernel (or its forwarder) in
// step. Both backends are fed by the same watch through a PeerTable.
import type { Lease, LeaseBatch } from '../subnet-manager/index.js';

export interface BackendStats {
  /** peers wanted (valid leases of other hosts) */
  peersKnown: number;
  /** peers whose data-plane entries are all in place */
  peersProgrammed: number;
  /** failed kernel operations since start */
  kernelErrors: number;
  /** leases skipped because their backend data was unusable */
  invalidPeers: number;
  /** times the device had to be recreated */
  deviceRecreated: number;
  /** Userspace forwarder counters (udp backend): totals, drops by reason, per peer. */
  forwarder?: Record<string, unknown>;
}

export interface Backend {
  readonly type: string;
  /** MTU for the bridge, containers and subnet.env. */
  readonly mtu: number;
  /** BackendData for this host's lease. */
  readonly leaseData: unknown;
  /** Address the device for the lease we got (after acquire). */
  configure(own: Lease): Promise<void>;
  /** Applies one batch of lease events, in order. Throws only on a fatal problem. */
  apply(batch: LeaseBatch): Promise<void>;
  /** Compares the data plane with what it should be and repairs it. */
  resync(full: boolean): Promise<void>;
  stats(): BackendStats;
  /** Stops background work; leaves kernel state in place so traffic continues. */
  close(): Promise<void>;
}
