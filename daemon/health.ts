// --healthz-ip/--healthz-port (flanneld's names): /healthz (alive, and etcd
// reachable recently), /readyz (lease held and data plane programmed) and
// /metrics (Prometheus text format, prom-client).
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Backend } from '../backend/backend.js';
import type { Logger } from './logger.js';

export interface HealthSource {
  /** 'ready' when the node is fully programmed. */
  phase(): string;
  leaseExpiry(): Date | undefined;
  subnet(): string | undefined;
  backend(): Backend | undefined;
  etcd(): { lastContact?: Date; reconnects: number; watchResyncs: number; invalidLeases: number };
  /** Asks etcd something cheap; resolves true when it answered. */
  probeEtcd(): Promise<boolean>;
}

/** etcd counts as reachable when it answered within this long. */
export const ETCD_FRESH_MS = 5_000;

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

export function buildRegistry(src: HealthSource): Registry {
  const reg = new Registry();
  collectDefaultMetrics({ register: reg, prefix: 'weftd_' });
  new Gauge({
    name: 'weft_lease_expiry_timestamp_seconds',
    help: 'When the subnet lease expires unless renewed (0 for a reservation or no lease)',
    registers: [reg],
    collect() {
      this.set((src.leaseExpiry()?.getTime() ?? 0) / 1000);
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
      const s = src.backend()?.stats();
      this.set({ state: 'known' }, s?.peersKnown ?? 0);
      this.set({ state: 'programmed' }, s?.peersProgrammed ?? 0);
    },
  });
  mirroredCounter(reg, 'weft_kernel_operation_errors_total', 'Failed kernel (netlink) operations', [], (set) => set(src.backend()?.stats().kernelErrors ?? 0));
  mirroredCounter(reg, 'weft_invalid_peer_leases_total', 'Leases skipped because their backend data was unusable', [], (set) => set(src.backend()?.stats().invalidPeers ?? 0));
  mirroredCounter(reg, 'weft_device_recreated_total', 'Times the backend device had to be recreated', [], (set) => set(src.backend()?.stats().deviceRecreated ?? 0));
  mirroredCounter(reg, 'weft_etcd_reconnects_total', 'Watch re-establishments after a lost etcd stream', [], (set) => set(src.etcd().reconnects));
  mirroredCounter(reg, 'weft_watch_resyncs_total', 'Lease re-lists after the watch revision was compacted', [], (set) => set(src.etcd().watchResyncs));
  mirroredCounter(reg, 'weft_invalid_leases_total', 'Lease keys/values in etcd skipped as invalid', [], (set) => set(src.etcd().invalidLeases));
  mirroredCounter(reg, 'weft_forwarder_packets_total', 'Packets moved by the userspace forwarder', ['direction'], (set) => {
    const f = forwarderTotals(src.backend()?.stats().forwarder);
    if (f) for (const [dir, v] of Object.entries(f.packets)) set(v, { direction: dir });
  });
  mirroredCounter(reg, 'weft_forwarder_bytes_total', 'Bytes moved by the userspace forwarder', ['direction'], (set) => {
    const f = forwarderTotals(src.backend()?.stats().forwarder);
    if (f) for (const [dir, v] of Object.entries(f.bytes)) set(v, { direction: dir });
  });
  mirroredCounter(reg, 'weft_forwarder_drops_total', 'Packets dropped by the userspace forwarder, by reason', ['reason'], (set) => {
    const f = forwarderTotals(src.backend()?.stats().forwarder);
    if (f) for (const [reason, v] of Object.entries(f.drops)) set(v, { reason });
  });
  return reg;
}

/**
 * Reads the forwarder's counters in the shape the udp backend reports:
 * { txPackets, txBytes, rxPackets, rxBytes, drops: { reason: n } } (other keys ignored).
 */
export function forwarderTotals(f: Record<string, unknown> | undefined): { packets: Record<string, number>; bytes: Record<string, number>; drops: Record<string, number> } | undefined {
  if (!f) return undefined;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const drops: Record<string, number> = {};
  if (f.drops && typeof f.drops === 'object') for (const [k, v] of Object.entries(f.drops as Record<string, unknown>)) drops[k] = num(v);
  return {
    packets: { tx: num(f.txPackets), rx: num(f.rxPackets) },
    bytes: { tx: num(f.txBytes), rx: num(f.rxBytes) },
    drops,
  };
}

export class HealthServer {
  private server?: Server;
  private readonly registry: Registry;
  private lastProbe = 0;
  private lastProbeOk = false;

  constructor(
    private readonly src: HealthSource,
    private readonly log: Logger,
  ) {
    this.registry = buildRegistry(src);
  }

  private async etcdFresh(): Promise<boolean> {
    const last = this.src.etcd().lastContact?.getTime() ?? 0;
    if (Date.now() - last < ETCD_FRESH_MS) return true;
    // Quiet clusters send nothing; ask once in a while instead of reporting stale.
    if (Date.now() - this.lastProbe > 1000) {
      this.lastProbe = Date.now();
      this.lastProbeOk = await this.src.probeEtcd().catch(() => false);
    }
    return this.lastProbeOk;
  }

  async listen(ip: string, port: number): Promise<{ address: string; port: number }> {
    const server = createServer((req, res) => {
      void this.handle(req.url ?? '/', req.method ?? 'GET').then(
        ({ code, type, body }) => {
          res.writeHead(code, { 'content-type': type });
          res.end(body);
        },
        (e) => {
          this.log.error('health endpoint failed', { url: req.url, err: e });
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`${(e as Error).message}\n`);
        },
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`--healthz-ip ${ip} --healthz-port ${port}: ${e.message}`)));
      server.listen(port, ip, () => resolve());
    });
    const a = server.address();
    const bound = typeof a === 'object' && a ? { address: a.address, port: a.port } : { address: ip, port };
    this.log.info('health and metrics listening', bound);
    return bound;
  }

  async handle(url: string, method: string): Promise<{ code: number; type: string; body: string }> {
    const path = url.split('?')[0];
    if (method !== 'GET' && method !== 'HEAD') return { code: 405, type: 'text/plain', body: 'only GET\n' };
    switch (path) {
      case '/healthz': {
        const ok = await this.etcdFresh();
        const last = this.src.etcd().lastContact;
        return {
          code: ok ? 200 : 503,
          type: 'application/json',
          body: JSON.stringify({ ok, etcd: ok ? 'reachable' : 'unreachable', lastContact: last?.toISOString() ?? null }) + '\n',
        };
      }
      case '/readyz': {
        const s = this.src.backend()?.stats();
        const phase = this.src.phase();
        const ok = phase === 'ready' && s !== undefined && s.peersProgrammed === s.peersKnown;
        return {
          code: ok ? 200 : 503,
          type: 'application/json',
          body: JSON.stringify({ ok, phase, subnet: this.src.subnet() ?? null, peersKnown: s?.peersKnown ?? 0, peersProgrammed: s?.peersProgrammed ?? 0 }) + '\n',
        };
      }
      case '/metrics':
        return { code: 200, type: this.registry.contentType, body: await this.registry.metrics() };
      default:
        return { code: 404, type: 'text/plain', body: 'not found; try /healthz, /readyz or /metrics\n' };
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
