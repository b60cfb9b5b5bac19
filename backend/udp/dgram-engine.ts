// The dgram engine: the reference forwarder in plain TypeScript, with Node's
// dgram socket and the TUN fd. Same checks, counters and ICMP as the native
// engine (packet.ts holds the rules); simple rather than fast.
//
// Reading the TUN: one fs.read at a time on the blocking fd. Each read(2) on a
// TUN returns exactly one packet, so boundaries are kept (a stream such as
// fs.createReadStream or net.Socket would be free to merge or split chunks, and
// net.Socket refuses a character device anyway). Keeping a single read in
// flight keeps packets in order. It occupies one libuv pool thread while idle;
// to end it, stop() asks the backend to delete the TUN device, which wakes the
// blocked read with an error (the kernel shuts the queue down). At exit the
// persistent device must stay for the next weftd, and a read left blocked would
// hold up the exit (Node joins its pool threads), so the read is woken by a
// datagram of our own routed into the TUN instead (to wakeAddress); only if
// that does not end it within a second is the device deleted after all.
// Writing the TUN: fs.writeSync, which never blocks on a TUN (the packet goes
// straight into the host's stack) and keeps order with no buffering.
import dgram from 'node:dgram';
import { read, writeSync } from 'node:fs';
import { ipNumber, parseIP4 } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import { checkDatagram, datagramTarget, DROP_REASONS, routeFromTun, TokenBucket, type DropReason } from './packet.js';
import type { ForwarderStats, PeerCounters, PeerStats, UdpEngine, UdpEngineOptions } from './engine.js';
import { ForwardingTable } from './table.js';

const SOCKET_BUFFER_BYTES = 8 << 20;

const noDrops = () => Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;

export interface DgramEngineOptions extends UdpEngineOptions {
  readonly log: Logger;
  /** Makes a blocked read on the TUN fd return (the backend deletes the device). */
  readonly wakeTunReader: () => void;
  /** An address the host routes into the TUN (in the network, outside this host's subnet): a datagram to it wakes the read at exit. */
  readonly wakeAddress: string;
}

export class DgramEngine implements UdpEngine {
  readonly name = 'dgram';
  private table = new ForwardingTable([]);
  private readonly peers = new Map<string, PeerStats>();
  private readonly totals: PeerCounters = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 };
  private readonly drops = noDrops();
  private icmpSent = 0;
  private icmpSuppressed = 0;
  private readonly icmpBucket = new TokenBucket();
  private error: string | undefined;
  private stopping = false;
  private readerEnded = false;
  private readonly readerDone: Promise<void>;
  private endReader!: () => void;
  private readonly rbuf = Buffer.allocUnsafe(65536);
  private readonly ownIp: number;
  private readonly ownIp6: bigint | undefined;

  private constructor(
    private readonly o: DgramEngineOptions,
    private readonly sock: dgram.Socket,
    /** An IPv6 socket: IPv4 peers are sent to at their v4-mapped address. */
    private readonly v6Socket: boolean,
  ) {
    this.ownIp = parseIP4(o.ownIp);
    this.ownIp6 = o.ownIp6 ? ipNumber(o.ownIp6).n : undefined;
    this.readerDone = new Promise((r) => (this.endReader = r));
    sock.on('message', (msg, rinfo) => this.fromWire(msg, rinfo.address));
    sock.on('error', (e) => {
      this.error = `UDP socket: ${e.message}`;
      o.log.error('UDP socket error', { err: e });
    });
    this.readNext();
  }

  /** Binds the UDP socket, then starts reading the TUN. Rejects with the bind error (e.g. EADDRINUSE). */
  static async start(o: DgramEngineOptions): Promise<DgramEngine> {
    // bindIp "::": one IPv6 socket for both families (ipv6Only false), as the native engine's.
    const type = o.bindIp.includes(':') ? 'udp6' : 'udp4';
    const sock = dgram.createSocket({ type, ipv6Only: false, recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: o.bindIp, port: o.port, exclusive: true }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    return new DgramEngine(o, sock, type === 'udp6');
  }

  setTable(t: ForwardingTable): void {
    this.table = t;
    const keep = new Set(t.routes.map((r) => `${r.peerIp}:${r.port}`));
    for (const k of this.peers.keys()) if (!keep.has(k)) this.peers.delete(k);
    for (const k of keep) if (!this.peers.has(k)) this.peers.set(k, { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, drops: noDrops() });
  }

  private readNext(): void {
    read(this.o.tunFds[0]!, this.rbuf, 0, this.rbuf.length, null, (err, n) => {
      if (err || this.stopping) {
        if (err && !this.stopping) {
          this.error = `TUN read: ${err.code ?? err.message}`;
          this.o.log.error('reading the TUN failed; forwarding to peers stopped', { err });
        }
        this.readerEnded = true;
        this.endReader();
        return;
      }
      if (n > 0) this.fromTun(Buffer.from(this.rbuf.subarray(0, n)));
      this.readNext();
    });
  }

  private fromTun(p: Buffer): void {
    const table = this.table;
    const ownIp6 = this.ownIp6;
    const v = routeFromTun(p, (dst) => table.lookup(dst), this.ownIp, ownIp6 === undefined ? undefined : { lookup6: (dst) => table.lookup6(dst), ownIp6 });
    if (v.action === 'drop') {
      this.drop(v.reason, v.route && this.peers.get(`${v.route.peerIp}:${v.route.port}`));
      if (v.icmp && !this.icmpBucket.take()) this.icmpSuppressed++;
      else if (v.icmp && this.writeTun(v.icmp)) this.icmpSent++;
      return;
    }
    const key = `${v.route.peerIp}:${v.route.port}`;
    this.sock.send(p, v.route.port, datagramTarget(v.route, this.v6Socket), (err) => {
      if (err) {
        this.drop('send_error', this.peers.get(key));
        this.error = `last send: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
        return;
      }
      this.count(this.totals, this.peers.get(key), 'tx', p.length);
    });
  }

  private fromWire(msg: Buffer, from: string): void {
    const routes = this.table.routesOf(from);
    const peer = routes && this.peers.get(`${routes[0]!.peerIp}:${routes[0]!.port}`);
    const c = checkDatagram(msg, routes, this.o.ownSubnets, this.o.ownSubnets6);
    if (!c.ok) {
      this.drop(c.reason, peer);
      return;
    }
    if (this.writeTun(msg, peer)) this.count(this.totals, peer, 'rx', msg.length);
  }

  private drop(reason: DropReason, peer: PeerStats | undefined): void {
    this.drops[reason]++;
    if (peer) peer.drops[reason]++;
  }

  private writeTun(p: Buffer, peer?: PeerStats): boolean {
    try {
      writeSync(this.o.tunFds[0]!, p);
      return true;
    } catch (e) {
      this.drop('tun_write_error', peer);
      this.error = `last TUN write: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
      return false;
    }
  }

  private count(total: PeerCounters, peer: PeerCounters | undefined, dir: 'tx' | 'rx', bytes: number): void {
    for (const c of peer ? [total, peer] : [total]) {
      if (dir === 'tx') {
        c.txPackets++;
        c.txBytes += bytes;
      } else {
        c.rxPackets++;
        c.rxBytes += bytes;
      }
    }
  }

  stats(): ForwarderStats {
    return {
      engine: 'dgram',
      running: !this.stopping && !this.readerEnded,
      ...(this.error ? { error: this.error } : {}),
      ...this.totals,
      icmpSent: this.icmpSent,
      icmpSuppressed: this.icmpSuppressed,
      drops: { ...this.drops },
      peers: Object.fromEntries([...this.peers].map(([k, v]) => [k, { ...v, drops: { ...v.drops } }])),
    };
  }

  async stop(atExit = false): Promise<void> {
    if (this.stopping) return this.readerDone;
    this.stopping = true;
    await new Promise<void>((r) => this.sock.close(() => r()));
    if (!this.readerEnded && atExit) {
      // The device stays: a datagram routed into it ends the blocked read (it is dropped unread).
      if ((await this.readerEndsWithin(1000, () => this.sendWakeDatagram())) === 'late') {
        this.o.log.warn('a datagram into the TUN did not end its read within 1 s; deleting the device so that weftd can exit', { wakeAddress: this.o.wakeAddress });
      } else {
        return;
      }
    }
    if (!this.readerEnded) this.o.wakeTunReader();
    // The read wakes as soon as the device is gone; never let a stuck one hold up shutdown.
    if ((await this.readerEndsWithin(2000, () => {})) === 'late') this.o.log.warn('the TUN read did not end within 2 s of stop; leaving it');
  }

  private async readerEndsWithin(ms: number, kick: () => void): Promise<'done' | 'late'> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms).unref()));
    kick();
    const r = await Promise.race([this.readerDone.then(() => 'done' as const), late]);
    clearTimeout(timer);
    return r;
  }

  private sendWakeDatagram(): void {
    const s = dgram.createSocket('udp4');
    s.on('error', (e) => this.o.log.debug('the wake datagram into the TUN failed', { err: e }));
    s.send(Buffer.alloc(1), 9, this.o.wakeAddress, () => s.close());
  }
}
