// The native engine: native/forwarder.cc's two threads. TypeScript hands it
// whole tables and polls its counters; no JavaScript runs per packet.
import { native, type NativeForwarderHandle } from '../../native/index.js';
import type { ForwarderStats, UdpEngine, UdpEngineOptions } from './engine.js';
import type { ForwardingTable } from './table.js';
import { formatIP4, formatIpNumber } from '../../lib/ip.js';

/**
 * Socket buffers with offloads: one GSO/GRO message is up to 64 KiB (and its skb's truesize
 * more), so the plain engine's 8 MiB holds only ~100 of them.
 */
const OFFLOAD_SOCKET_BUFFER = 32 << 20;

const TUN_F_USO4 = 0x20;

/** TUN_F_* bits -> names, as the kernel's if_tun.h spells them (lower case, no prefix). */
export function tunOffloadNames(bits: number): string[] {
  const names: Array<[number, string]> = [[0x01, 'csum'], [0x02, 'tso4'], [0x04, 'tso6'], [0x08, 'tso_ecn'], [0x10, 'ufo'], [0x20, 'uso4'], [0x40, 'uso6']];
  return names.filter(([b]) => (bits & b) !== 0).map(([, n]) => n);
}

function nativeRoutes(t: ForwardingTable) {
  return t.routes.map((r) => ({
    subnet: r.family === 6 ? formatIpNumber(r.net6, 6) : formatIP4(r.net), prefixLen: r.prefixLen, peerIp: r.peerIp, port: r.port,
    ...(r.peerIp6 !== undefined ? { peerIp6: r.peerIp6 } : {}), ...(r.over6 ? { over6: true } : {}),
  }));
}

export class NativeEngine implements UdpEngine {
  readonly name = 'native';
  private stopped = false;

  private constructor(
    private readonly h: NativeForwarderHandle,
    private readonly tunOffloads: string[],
  ) {}

  /**
   * Binds one UDP socket per TUN queue (and a send socket on port+k for worker k >= 1) and
   * starts a worker (two threads) on each; throws
   * (with code/errno) when a socket cannot be made. With USO on the TUN (TUN_F_USO4),
   * datagrams of a UDP flow are merged into USO writes too.
   */
  static start(o: UdpEngineOptions, table?: ForwardingTable): NativeEngine {
    const bits = o.tunOffloads ?? 0;
    const ownSubnets = [
      ...o.ownSubnets.map((p) => ({ subnet: formatIP4(p.net), prefixLen: p.prefixLen })),
      ...(o.ownSubnets6 ?? []).map((p) => ({ subnet: formatIpNumber(p.net6, 6), prefixLen: p.prefixLen })),
    ];
    const h = native().forwarder.start({
      tunFds: o.tunFds,
      ...(o.udpFds ? { udpFds: o.udpFds } : {}),
      ...(o.txFds ? { txFds: o.txFds } : {}),
      ...(table ? { routes: nativeRoutes(table) } : {}),
      bindIp: o.bindIp,
      port: o.port,
      ownIp: o.ownIp,
      ...(o.ownIp6 ? { ownIp6: o.ownIp6 } : {}),
      ownSubnets,
      vnetHdr: bits !== 0,
      tunUso: (bits & TUN_F_USO4) !== 0,
      ...(bits !== 0 ? { bufferBytes: OFFLOAD_SOCKET_BUFFER } : {}),
    });
    return new NativeEngine(h, tunOffloadNames(bits));
  }

  setTable(t: ForwardingTable): void {
    if (this.stopped) return;
    native().forwarder.setTable(this.h, nativeRoutes(t));
  }

  stats(): ForwarderStats {
    const s = native().forwarder.stats(this.h);
    const e = s.errno;
    const ended = e.tunThread !== 0 ? `TUN thread ended: errno ${e.tunThread}` : e.udpThread !== 0 ? `UDP thread ended: errno ${e.udpThread}` : undefined;
    const last = e.lastSend !== 0 ? `last send errno ${e.lastSend}` : e.lastTunWrite !== 0 ? `last TUN write errno ${e.lastTunWrite}` : undefined;
    const error = ended ?? last;
    return {
      engine: 'native',
      running: !this.stopped && ended === undefined,
      ...(error ? { error } : {}),
      txPackets: s.txPackets,
      txBytes: s.txBytes,
      rxPackets: s.rxPackets,
      rxBytes: s.rxBytes,
      icmpSent: s.icmpSent,
      icmpSuppressed: s.icmpSuppressed,
      drops: { ...s.drops },
      peers: s.peers,
      workers: s.workers,
      offload: { ...s.offload, tun: this.tunOffloads },
    };
  }

  /** The workers' UDP receive socket fds (for the fd holder). */
  udpFds(): number[] {
    return native().forwarder.udpFds(this.h);
  }

  /** The send sockets of workers 1.. (for the fd holder). */
  txFds(): number[] {
    return native().forwarder.txFds(this.h);
  }

  /** Joins the threads and closes the sockets (atExit changes nothing here: no reader is left blocked). */
  async stop(_atExit = false): Promise<void> {
    this.stopNow();
  }

  /** stop(), synchronously: the threads are joined when it returns. */
  stopNow(): void {
    if (this.stopped) return;
    this.stopped = true;
    native().forwarder.stop(this.h);
  }
}
