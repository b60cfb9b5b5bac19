// The fd holder of the native engine: a /bin/sleep process (native/holder.cc)
// that keeps the TUN queues and UDP sockets of the running forwarder open.
// When weftd dies (a crash, kill -9, an upgrade's restart), the queues stay
// attached and the sockets bound, so the kernel queues what arrives (up to the
// TUN rings and socket buffers) instead of dropping it; the next weftd takes the
// very same files back (pidfd_getfd), drains them and starts a holder of its own.
// It is found by its argv[0] and network namespace, not by a pid file:
//   weft-fd-holder <device> tun=<fd>,<fd> udp=<fd>,<fd>
// and nothing else is ever killed. weftd --cleanup ends it.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { native } from '../../native/index.js';

const MARKER = 'weft-fd-holder';

export interface Holder {
  readonly pid: number;
  readonly device: string;
  /** Its fd numbers (the same as the spawner's at the time). */
  readonly tunFds: readonly number[];
  readonly udpFds: readonly number[];
}

function marker(device: string, tunFds: readonly number[], udpFds: readonly number[]): string {
  return `${MARKER} ${device} tun=${tunFds.join(',')} udp=${udpFds.join(',')}`;
}

function parseMarker(pid: number, argv0: string): Holder | undefined {
  const m = /^weft-fd-holder (\S+) tun=([\d,]+) udp=([\d,]*)$/.exec(argv0);
  if (!m) return undefined;
  const list = (s: string) => (s ? s.split(',').map(Number) : []);
  return { pid, device: m[1]!, tunFds: list(m[2]!), udpFds: list(m[3]!) };
}

/** Holders of `device` in this network namespace (normally one at most). */
export function findHolders(device: string): Holder[] {
  const ownNet = readlinkSync('/proc/self/ns/net');
  const out: Holder[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let argv0: string;
    try {
      argv0 = readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0')[0]!;
      if (!argv0.startsWith(`${MARKER} `)) continue;
      if (readlinkSync(`/proc/${d}/ns/net`) !== ownNet) continue;
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    const h = parseMarker(Number(d), argv0);
    if (h && h.device === device) out.push(h);
  }
  return out;
}

/** Starts a holder of these fds (they stay ours too). */
export function spawnHolder(device: string, tunFds: readonly number[], udpFds: readonly number[]): Holder {
  const pid = native().holder.spawn([...tunFds, ...udpFds], marker(device, tunFds, udpFds));
  return { pid, device, tunFds, udpFds };
}

/** Ends a holder and waits until its fds are closed. */
export function endHolder(h: Holder): void {
  if (!native().holder.end(h.pid, 2000)) throw new Error(`the fd holder ${h.pid} of ${h.device} did not exit within 2 s of SIGKILL`);
}

/**
 * Copies of the holder's fds in this process, checked: each TUN fd a queue of `device`, each
 * socket bound to bindIp:port. Throws (closing what it took) when anything differs.
 */
export function takeFromHolder(h: Holder, expect: { bindIp: string; port: number }): { tunFds: number[]; udpFds: number[] } {
  const n = native();
  const fds = n.holder.take(h.pid, [...h.tunFds, ...h.udpFds]);
  const tunFds = fds.slice(0, h.tunFds.length);
  const udpFds = fds.slice(h.tunFds.length);
  try {
    for (const fd of tunFds) {
      const t = n.holder.tunInfo(fd);
      if (t.name !== h.device || (t.flags & n.tun.IFF_MULTI_QUEUE) === 0) throw new Error(`holder ${h.pid}: fd ${fd} is a queue of ${t.name} (flags ${t.flags.toString(16)}), not of ${h.device}`);
    }
    for (const fd of udpFds) {
      const u = n.holder.udpInfo(fd);
      if (u.address !== expect.bindIp || u.port !== expect.port) throw new Error(`holder ${h.pid}: fd ${fd} is bound to ${u.address}:${u.port}, not ${expect.bindIp}:${expect.port}`);
    }
  } catch (e) {
    for (const fd of fds) n.close(fd);
    throw e;
  }
  return { tunFds, udpFds };
}
