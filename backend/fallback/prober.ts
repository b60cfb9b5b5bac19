// Probes every fallback peer over both paths (packet.ts says how), a few
// times a second each, jittered, and answers the peers' probes. Two sockets:
//   underlay: <own PublicIP>:<ephemeral>  sends probes and acks, already
//             wrapped for their path (VXLAN frame to :8472, or the udp path's
//             datagram to :8285)
//   overlay:  <own subnet>.0:<Fallback.Port>  receives what the peers'
//             wrapped datagrams carry, once the kernel's VXLAN device or our
//             udp forwarder has unwrapped them
// Results go into each peer's PathHealth (health.ts); a probe unanswered
// within timeoutMs is lost. Acks carry the prober's nonce, so a stale one
// (an earlier weftd) is ignored.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import type { Logger } from '../../lib/log.js';
import { PathHealth, type Health, type ProbeTuning } from './health.js';
import { decodeMessage, encodeMessage, ipv4Udp, paddingFor, PROBE_PATHS, vxlanFrame, type ProbeMessage, type ProbePath } from './packet.js';

export interface ProbePeer {
  readonly key: string;
  readonly publicIp: string;
  /** <peer subnet>.0 */
  readonly vtepIp: string;
  readonly mac: string;
  /** Its Fallback.Port (the udp path's port). */
  readonly udpPort: number;
}

export interface ProberOptions {
  readonly log: Logger;
  readonly publicIp: string;
  readonly vni: number;
  readonly vxlanPort: number;
  /** This host's VTEP MAC (it follows the underlay's address). */
  readonly ownMac: () => string;
  /** Fallback.Port: the overlay socket's port (the same on every host). */
  readonly port: number;
  /** Probes are padded to make the inner packet this long (the overlay MTU). */
  readonly mtu: number;
  readonly tuning: ProbeTuning;
  /** Called after each round in which some probe resolved. */
  readonly onRound: () => void;
}

interface Probed {
  peer: ProbePeer;
  readonly health: Health;
  readonly next: Record<ProbePath, number>;
  /** seq -> [wall ms, performance ms] of probes in flight. */
  readonly inFlight: Record<ProbePath, Map<number, [number, number]>>;
}

const TICK_MS = 50;

export class PathProber {
  private readonly nonce = randomBytes(8);
  private readonly peers = new Map<string, Probed>();
  private readonly byVtep = new Map<string, Probed>();
  private underlay?: dgram.Socket;
  private overlay?: dgram.Socket;
  private timer?: NodeJS.Timeout;
  private seq = 0;
  private ownVtep = '';
  /** Send errors since start (counted, the last one logged at most once a minute). */
  sendErrors = 0;
  private lastErrorLog = 0;

  constructor(private readonly o: ProberOptions) {}

  /** Binds both sockets (an error names the address) and starts probing. */
  async start(ownVtep: string): Promise<void> {
    this.ownVtep = ownVtep;
    this.underlay = await bind(this.o.publicIp, 0, 'the fallback prober\'s underlay socket');
    this.overlay = await bind(ownVtep, this.o.port, 'the fallback prober\'s socket on the VTEP address');
    this.overlay.on('message', (m, r) => this.received(m, r.address));
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** The underlay's address changed: probes leave from the new one. */
  async setPublicIp(ip: string): Promise<void> {
    const next = await bind(ip, 0, 'the fallback prober\'s underlay socket');
    this.underlay?.close();
    this.underlay = next;
  }

  /** The peers to probe from now on (health of the ones that stay is kept). */
  setPeers(list: readonly ProbePeer[]): void {
    const keep = new Set(list.map((p) => p.key));
    for (const [k, s] of [...this.peers]) if (!keep.has(k) || s.peer.publicIp !== list.find((p) => p.key === k)!.publicIp) this.retire(k, s);
    this.byVtep.clear();
    const now = Date.now();
    for (const p of list) {
      let s = this.peers.get(p.key);
      if (!s) {
        const d = this.o.tuning.downAfter;
        // The first probes go out at once, spread over one interval.
        s = {
          peer: p,
          health: { vxlan: new PathHealth(d), udp: new PathHealth(d) },
          next: { vxlan: now + this.jitter() / 2, udp: now + this.jitter() / 2 },
          inFlight: { vxlan: new Map(), udp: new Map() },
        };
        this.peers.set(p.key, s);
      }
      s.peer = p;
      this.byVtep.set(p.vtepIp, s);
    }
  }

  health(key: string): Health | undefined {
    return this.peers.get(key)?.health;
  }

  /** Counts of peers no longer probed, so the totals never go down. */
  private readonly retired = { vxlan: { sent: 0, answered: 0, lost: 0 }, udp: { sent: 0, answered: 0, lost: 0 } };

  private retire(key: string, s: Probed): void {
    for (const path of PROBE_PATHS) {
      this.retired[path].sent += s.health[path].sent;
      this.retired[path].answered += s.health[path].answered;
      this.retired[path].lost += s.health[path].lost;
    }
    this.peers.delete(key);
  }

  /** Probes sent, answered and lost since start, over all peers, by path. */
  totals(): Record<ProbePath, { sent: number; answered: number; lost: number }> {
    const t = { vxlan: { ...this.retired.vxlan }, udp: { ...this.retired.udp } };
    for (const s of this.peers.values()) {
      for (const path of PROBE_PATHS) {
        t[path].sent += s.health[path].sent;
        t[path].answered += s.health[path].answered;
        t[path].lost += s.health[path].lost;
      }
    }
    return t;
  }

  private jitter(): number {
    const { intervalMs, jitter } = this.o.tuning;
    return intervalMs * (1 - jitter + 2 * jitter * Math.random());
  }

  private tick(): void {
    const now = Date.now();
    let resolved = false;
    for (const s of this.peers.values()) {
      for (const path of PROBE_PATHS) {
        const h = s.health[path];
        for (const [seq, [wall]] of s.inFlight[path]) {
          if (now - wall < this.o.tuning.timeoutMs) break; // in send order
          s.inFlight[path].delete(seq);
          h.loss(wall, now);
          resolved = true;
        }
        if (now >= s.next[path]) {
          s.next[path] = now + this.jitter();
          const seq = (this.seq = (this.seq + 1) >>> 0);
          s.inFlight[path].set(seq, [now, performance.now()]);
          h.sent++;
          this.send(s.peer, { kind: 'probe', path, nonce: this.nonce, seq }, this.o.mtu);
        }
      }
    }
    if (resolved) this.o.onRound();
  }

  private received(m: Buffer, from: string): void {
    const msg = decodeMessage(m);
    const s = this.byVtep.get(from);
    if (!msg || !s) return;
    if (msg.kind === 'probe') {
      this.send(s.peer, { kind: 'ack', path: msg.path, nonce: msg.nonce, seq: msg.seq });
      return;
    }
    if (!msg.nonce.equals(this.nonce)) return;
    const t = s.inFlight[msg.path].get(msg.seq);
    if (!t) return; // late: already counted lost
    s.inFlight[msg.path].delete(msg.seq);
    s.health[msg.path].answer(t[0], Date.now(), performance.now() - t[1]);
    this.o.onRound();
  }

  /** Wraps the message for its path and sends it to the peer's PublicIP. */
  private send(p: ProbePeer, msg: ProbeMessage, mtu = 0): void {
    const sock = this.underlay;
    if (!sock) return;
    const ip = ipv4Udp(this.ownVtep, p.vtepIp, this.o.port, this.o.port, encodeMessage(msg, paddingFor(mtu)));
    const [payload, port] = msg.path === 'vxlan' ? [vxlanFrame(this.o.vni, p.mac, this.o.ownMac(), ip), this.o.vxlanPort] : [ip, p.udpPort];
    sock.send(payload, port, p.publicIp, (err) => {
      if (!err) return;
      this.sendErrors++;
      if (Date.now() - this.lastErrorLog > 60_000) {
        this.lastErrorLog = Date.now();
        this.o.log.warn('sending a fallback probe failed (counted; the probe counts as lost)', { peer: p.key, publicIp: p.publicIp, path: msg.path, err });
      }
    });
  }

  close(): void {
    clearInterval(this.timer);
    this.underlay?.close();
    this.overlay?.close();
    this.underlay = this.overlay = undefined;
  }
}

function bind(address: string, port: number, what: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type: 'udp4' });
    s.once('error', (e) => {
      s.close();
      reject(new Error(`cannot bind ${what} to ${address}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    s.bind({ address, port, exclusive: true }, () => {
      s.removeAllListeners('error');
      s.on('error', () => { /* send errors arrive in the send callbacks */ });
      resolve(s);
    });
  });
}
