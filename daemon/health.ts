// --healthz-ip/--healthz-port (flanneld's names): /healthz (alive, and etcd
// reachable recently), /readyz (lease held and data plane programmed) and
// /metrics (Prometheus text format, prom-client).
import { createServer, type Server } from 'node:http';
import type { Backend } from '../backend/backend.js';
import type { ForwardRulesStatus } from '../host/forward.js';
import type { Logger } from '../lib/log.js';
import type { ErrorCount } from '../netlink/index.js';
import type { ManagerStats } from '../subnet-manager/index.js';
import { buildRegistry, type MetricsOptions } from './metrics.js';

export interface HealthSource {
  /** 'ready' when the node is fully programmed. */
  phase(): string;
  leaseExpiry(): Date | undefined;
  /** Seconds until the lease expires unless renewed; Infinity for a reservation; undefined before it is held. */
  leaseExpiresInSeconds(): number | undefined;
  /** Times the lease key was put back or re-leased. */
  leaseRecoveries(): number;
  subnet(): string | undefined;
  backend(): Backend | undefined;
  /** WEFT-FWD's last check; undefined with --iptables-forward-rules=false. */
  forwardRules?(): ForwardRulesStatus | undefined;
  etcd(): ManagerStats;
  /** Failed kernel (netlink, TUN) operations by operation and errno. */
  kernelErrors(): readonly ErrorCount[];
  /** Asks etcd something cheap; resolves true when it answered. */
  probeEtcd(): Promise<boolean>;
}

/** etcd counts as reachable when it answered within this long. */
export const ETCD_FRESH_MS = 5_000;

export class HealthServer {
  private server?: Server;
  private readonly registry: ReturnType<typeof buildRegistry>;
  private lastProbe = 0;
  private lastProbeOk = false;

  constructor(
    private readonly src: HealthSource,
    private readonly log: Logger,
    metrics: MetricsOptions = {},
  ) {
    this.registry = buildRegistry(src, metrics);
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
        // A skipped peer (host-gw, behind a gateway) cannot be programmed by waiting: it is listed, not waited for.
        const skipped = s?.paths?.filter((p) => p.path === 'skipped') ?? [];
        const fwd = this.src.forwardRules?.();
        const ok = phase === 'ready' && s !== undefined && s.peersProgrammed + (s.peersSkipped ?? 0) === s.peersKnown && (fwd === undefined || fwd.ok);
        const forwardRules = fwd ? { ok: fwd.ok, detail: fwd.detail, repairs: fwd.repairs, checkedAt: fwd.checkedAt.toISOString() } : 'off';
        return {
          code: ok ? 200 : 503,
          type: 'application/json',
          body: JSON.stringify({
            ok, phase, subnet: this.src.subnet() ?? null, peersKnown: s?.peersKnown ?? 0, peersProgrammed: s?.peersProgrammed ?? 0,
            peersSkipped: s?.peersSkipped ?? 0,
            skipped: skipped.map((p) => ({ subnet: p.subnet, publicIp: p.publicIp, reason: p.reason ?? null })),
            forwardRules,
          }) + '\n',
        };
      }
      case '/metrics':
        return { code: 200, type: this.registry.registry.contentType, body: await this.registry.metrics() };
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
