// /metrics: Prometheus text format (prom-client). Every name starts with
// weft_, the process metrics too. Counters kept elsewhere (the backend, the
// subnet manager, the forwarder) are mirrored at scrape time. A new metric is
// one entry in buildRegistry, read from the HealthSource.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BackendStats } from '../backend/backend.js';
import type { PeerPathState } from '../backend/peer-paths.js';
import type { HealthSource } from './health.js';

export const METRIC_PREFIX = 'weft_';

type ForwarderStats = NonNullable<BackendStats['forwarder']>;

/** A counter whose value is read from elsewhere at scrape time. */
function mirroredCounter(reg: Registry, name: string, help: string, labelNames: string[], read: (set: (v: number, labels?: Record<string, string>) => void) => void): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [reg],
    collect() {
      this.reset();
      read((v, labels) => (labels ? this.inc(labels, v) : this.inc(v)));
    },
  });
}

/** The event-loop monitor's tick (ms): its gauges read the tick plus the delay. */
export const EVENT_LOOP_TICK_MS = 10;

/**
 * `read` at most once per scrape: the first call after reset() reads, the
 * later ones get that result. A backend's stats() lists every peer: with
 * 10,000 peers, once per gauge was most of a scrape's cost.
 */
export function oncePerScrape<T>(read: () => T): { get: () => T; reset: () => void } {
  let cached: { v: T } | undefined;
  return {
    get: () => (cached ??= { v: read() }).v,
    reset: () => { cached = undefined; },
  };
}

export interface MetricsOptions {
  /** --metrics-peer-paths: one weft_peer_path series per peer (cardinality grows with the cluster). */
  readonly perPeerPaths?: boolean;
}

/** The metrics of weftd: `metrics()` is one scrape (the backend's stats read once for all of it). */
export function buildRegistry(src: HealthSource, o: MetricsOptions = {}): { registry: Registry; metrics(): Promise<string> } {
  const reg = new Registry();
  const backendStats = oncePerScrape(() => src.backend()?.stats());
  const stats = backendStats.get;
  // One prefix for everything, the process metrics included. The event-loop gauges come from
  // perf_hooks.monitorEventLoopDelay ticking every EVENT_LOOP_TICK_MS: each sample is the time
  // between two ticks, so an idle loop reads about 10 ms and the delay is the reading minus that.
  collectDefaultMetrics({ register: reg, prefix: METRIC_PREFIX, eventLoopMonitoringPrecision: EVENT_LOOP_TICK_MS });
  new Gauge({
    name: 'weft_lease_expiry_timestamp_seconds',
    help: 'When the subnet lease expires unless renewed (0 for a reservation or no lease)',
    registers: [reg],
    collect() {
      this.set((src.leaseExpiry()?.getTime() ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'weft_lease_expiry_seconds',
    help: 'Seconds until the subnet lease expires unless renewed (+Inf for a reservation, 0 before the lease is held; negative once it has expired)',
    registers: [reg],
    collect() {
      this.set(src.leaseExpiresInSeconds() ?? 0);
    },
  });
  mirroredCounter(reg, 'weft_lease_recoveries_total', 'Times the lease key was put back after it vanished or changed, or re-leased after another host took the subnet', [], (set) => set(src.leaseRecoveries()));
  mirroredCounter(reg, 'weft_netlink_errors_total', 'Failed kernel operations (netlink requests, TUN calls) by operation and errno; transient ones (EINTR for an interrupted dump, ENOBUFS, EAGAIN, EBUSY, ETIMEDOUT) are retried', ['op', 'errno'], (set) => {
    for (const e of src.kernelErrors()) set(e.count, { op: e.op, errno: e.errno });
  });
  mirroredCounter(reg, 'weft_lease_conflicts_total', 'Leases skipped because another live lease (or this host\'s own) holds their subnet, PublicIP or VtepMAC', [], (set) => set(src.etcd().leaseConflicts));
  new Gauge({
    name: 'weft_conflicting_leases',
    help: 'Leases skipped for a conflict right now',
    registers: [reg],
    collect() {
      this.set(src.etcd().conflictingLeases);
    },
  });
  new Gauge({
    name: 'weft_ready',
    help: '1 when the lease is held and the data plane is programmed',
    registers: [reg],
    collect() {
      this.set(src.phase() === 'ready' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'weft_peers',
    help: 'Remote hosts by state: known (valid leases) and programmed (all kernel/forwarder entries in place)',
    labelNames: ['state'],
    registers: [reg],
    collect() {
      const s = stats();
      this.set({ state: 'known' }, s?.peersKnown ?? 0);
      this.set({ state: 'programmed' }, s?.peersProgrammed ?? 0);
      this.set({ state: 'skipped' }, s?.peersSkipped ?? 0);
    },
  });
  new Gauge({
    name: 'weft_peers_by_path',
    help: 'Remote hosts by their current path: direct (routed, no encapsulation), vxlan, udp (VXLAN\'s fallback: into the TUN), or skipped (the backend cannot reach it, e.g. host-gw behind a gateway)',
    labelNames: ['path'],
    registers: [reg],
    collect() {
      const n: Record<string, number> = { direct: 0, vxlan: 0, udp: 0, skipped: 0 };
      for (const p of stats()?.paths ?? []) n[p.path] = (n[p.path] ?? 0) + 1;
      for (const [path, v] of Object.entries(n)) this.set({ path }, v);
    },
  });
  mirroredCounter(reg, 'weft_peer_path_changes_total', 'Times a peer moved from one path to another (DirectRouting: its PublicIP came onto or left this host\'s L2 segment; Fallback: vxlan to udp and back)', [], (set) => set(stats()?.pathChanges ?? 0));
  mirroredCounter(reg, 'weft_peer_probes_total', 'VXLAN\'s fallback: path probes to peers by path (vxlan, udp) and result (sent, answered, lost)', ['path', 'result'], (set) => {
    const p = stats()?.probes;
    if (p) for (const [path, c] of Object.entries(p)) for (const [result, v] of Object.entries(c)) set(v, { path, result });
  });
  mirroredCounter(reg, 'weft_kernel_operation_errors_total', 'Failed kernel (netlink) operations', [], (set) => set(stats()?.kernelErrors ?? 0));
  mirroredCounter(reg, 'weft_invalid_peer_leases_total', 'Leases skipped because their backend data was unusable', [], (set) => set(stats()?.invalidPeers ?? 0));
  mirroredCounter(reg, 'weft_device_recreated_total', 'Times the backend device had to be recreated', [], (set) => set(stats()?.deviceRecreated ?? 0));
  mirroredCounter(reg, 'weft_etcd_reconnects_total', 'Watch re-establishments after a lost etcd stream', [], (set) => set(src.etcd().reconnects));
  mirroredCounter(reg, 'weft_watch_resyncs_total', 'Lease re-lists after the watch revision was compacted', [], (set) => set(src.etcd().watchResyncs));
  mirroredCounter(reg, 'weft_invalid_leases_total', 'Lease keys/values in etcd skipped as invalid', [], (set) => set(src.etcd().invalidLeases));
  mirroredCounter(reg, 'weft_forwarder_packets_total', 'Packets moved by the userspace forwarder', ['direction'], (set) => {
    const f = forwarderTotals(stats()?.forwarder);
    if (f) for (const [dir, v] of Object.entries(f.packets)) set(v, { direction: dir });
  });
  mirroredCounter(reg, 'weft_forwarder_bytes_total', 'Bytes moved by the userspace forwarder', ['direction'], (set) => {
    const f = forwarderTotals(stats()?.forwarder);
    if (f) for (const [dir, v] of Object.entries(f.bytes)) set(v, { direction: dir });
  });
  mirroredCounter(reg, 'weft_forwarder_drops_total', 'Packets dropped by the userspace forwarder, by reason', ['reason'], (set) => {
    const f = forwarderTotals(stats()?.forwarder);
    if (f) for (const [reason, v] of Object.entries(f.drops)) set(v, { reason });
  });
  mirroredCounter(reg, 'weft_forwarder_icmp_total', 'ICMP net-unreachable messages the userspace forwarder wrote into the TUN (sent) or left out over its rate limit (suppressed)', ['result'], (set) => {
    const f = stats()?.forwarder;
    if (f) {
      set(f.icmpSent, { result: 'sent' });
      set(f.icmpSuppressed, { result: 'suppressed' });
    }
  });
  return {
    registry: reg,
    metrics: async () => {
      backendStats.reset();
      const text = await reg.metrics();
      return o.perPeerPaths ? text + peerPathLines(stats()?.paths ?? []) : text;
    },
  };
}

const PEER_PATH_HEAD = '# HELP weft_peer_path Each peer (by subnet) on its path (as weft_peers_by_path counts them); 1 for the current one. Only with --metrics-peer-paths: one series per peer\n# TYPE weft_peer_path gauge\n';
const labelValue = (v: string) => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

/**
 * weft_peer_path{peer,path} 1 for each peer, in Prometheus text: written
 * directly, not through prom-client's labelled gauge, whose per-series
 * bookkeeping cost hundreds of ms per scrape at 10,000 peers.
 */
export function peerPathLines(paths: readonly PeerPathState[]): string {
  let out = PEER_PATH_HEAD;
  for (const p of paths) out += `weft_peer_path{peer="${labelValue(p.subnet)}",path="${p.path}"} 1\n`;
  return out;
}

/** The forwarder's totals by label value: packets and bytes by direction, drops by reason. */
export function forwarderTotals(f: ForwarderStats | undefined): { packets: Record<string, number>; bytes: Record<string, number>; drops: Record<string, number> } | undefined {
  if (!f) return undefined;
  return {
    packets: { tx: f.txPackets, rx: f.rxPackets },
    bytes: { tx: f.txBytes, rx: f.rxBytes },
    drops: { ...f.drops },
  };
}
