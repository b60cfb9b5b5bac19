// The fd holder of the native engine: a /bin/sleep process (native/holder.cc)
// that keeps the TUN queues and UDP sockets of the running forwarder open.
// When weftd dies (a crash, kill -9, an upgrade's restart), the queues stay
// attached and the sockets bound, so the kernel queues what arrives (up to the
// TUN rings and socket buffers) instead of dropping it; the next weftd takes the
// very same files back (pidfd_getfd), drains them and starts a holder of its own.
// It is found by its argv[0] and network namespace, not by a pid file:
//   weft-fd-holder <device> tun=<fd>,<fd> udp=<fd>,<fd> tx=<fd>
// (tx: the send sockets of workers 1.., bound to Backend.Port + k; absent from the
// markers of holders an older weftd left, whose forwarders had none)
// and nothing else is ever killed. weftd --cleanup ends it.
// Under systemd with a file descriptor store (FileDescriptorStoreMax=, see
// host/fd-store.ts) systemd holds them instead: a holder process lives in
// weftd's cgroup, so `systemctl restart weftd` would kill it with weftd. The
// store's names are weft-udp/<device>/tun/<i>, weft-udp/<device>/udp/<i> and
// weft-udp/<device>/tx/<i>.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fdStore, type FdStore } from '../../host/fd-store.js';
import { native } from '../../native/index.js';

const MARKER = 'weft-fd-holder';

export interface Holder {
  /** The holder process; 0 when systemd's fd store holds the files. */
  readonly pid: number;
  readonly device: string;
  /**
   * Its fd numbers (the same as the spawner's at the time). For a store
   * found at start: the fds systemd passed to this process.
   */
  readonly tunFds: readonly number[];
  readonly udpFds: readonly number[];
  /** The send sockets of workers 1.. (port + 1 ...). */
  readonly txFds: readonly number[];
  /** Set when systemd's fd store holds them. */
  readonly store?: FdStore;
}

/** Where the holder is, for the log: "the fd holder 1234" or "systemd's fd store". */
export function holderName(h: Holder): string {
  return h.store ? "systemd's fd store" : `the fd holder ${h.pid}`;
}

type FdKind = 'tun' | 'udp' | 'tx';
const FD_KINDS: readonly FdKind[] = ['tun', 'udp', 'tx'];

const storePrefix = (device: string) => `weft-udp/${device}/`;

/** The names systemd passed for `device`'s files of one kind: <prefix><kind>/0, /1 ... while they run on. */
function storedNames(store: FdStore, device: string, kind: FdKind): string[] {
  const prefix = storePrefix(device);
  const names = store.passedNames(prefix);
  const out: string[] = [];
  for (let i = 0; names.includes(`${prefix}${kind}/${i}`); i++) out.push(`${prefix}${kind}/${i}`);
  return out;
}

/** The files systemd passed from its store for `device`, if any (tun and udp, each in order). */
function storedHolder(store: FdStore, device: string): Holder | undefined {
  if (store.passedNames(storePrefix(device)).length === 0) return undefined;
  // Looked at, not taken: takeFromHolder takes them; endHolder closes what was not taken.
  const tunFds = storedNames(store, device, 'tun').map((n) => store.passedFd(n)!);
  const udpFds = storedNames(store, device, 'udp').map((n) => store.passedFd(n)!);
  const txFds = storedNames(store, device, 'tx').map((n) => store.passedFd(n)!);
  return { pid: 0, device, tunFds, udpFds, txFds, store };
}

function marker(device: string, tunFds: readonly number[], udpFds: readonly number[], txFds: readonly number[]): string {
  return `${MARKER} ${device} tun=${tunFds.join(',')} udp=${udpFds.join(',')}${txFds.length ? ` tx=${txFds.join(',')}` : ''}`;
}

function parseMarker(pid: number, argv0: string): Holder | undefined {
  const m = /^weft-fd-holder (\S+) tun=([\d,]+) udp=([\d,]*)(?: tx=([\d,]*))?$/.exec(argv0);
  if (!m) return undefined;
  const list = (s: string | undefined) => (s ? s.split(',').map(Number) : []);
  return { pid, device: m[1]!, tunFds: list(m[2]), udpFds: list(m[3]), txFds: list(m[4]) };
}

function takeStored(store: FdStore, device: string): number[] {
  return FD_KINDS.flatMap((k) => storedNames(store, device, k)).map((n) => store.take(n)!);
}

/** Holders of `device` in this network namespace (normally one at most): systemd's store first, then processes. */
export function findHolders(device: string): Holder[] {
  const ownNet = readlinkSync('/proc/self/ns/net');
  const store = fdStore();
  const stored = store && storedHolder(store, device);
  const out: Holder[] = stored ? [stored] : [];
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

/** Starts a holder of these fds (they stay ours too): systemd's fd store when the unit has one, else a process. */
export function spawnHolder(device: string, tunFds: readonly number[], udpFds: readonly number[], txFds: readonly number[] = []): Holder {
  const store = fdStore();
  if (store) {
    // Replaces what the store held for the device (the same files, after a resume: systemd had them already).
    const prefix = storePrefix(device);
    store.remove(prefix);
    const named = (kind: FdKind, fds: readonly number[]) => fds.map((fd, i) => [`${prefix}${kind}/${i}`, fd] as const);
    store.store([...named('tun', tunFds), ...named('udp', udpFds), ...named('tx', txFds)]);
    return { pid: 0, device, tunFds, udpFds, txFds, store };
  }
  const pid = native().holder.spawn([...tunFds, ...udpFds, ...txFds], marker(device, tunFds, udpFds, txFds));
  return { pid, device, tunFds, udpFds, txFds };
}

/** Ends a holder and waits until its fds are closed (the store: until systemd has closed them). */
export function endHolder(h: Holder): void {
  if (h.store) {
    h.store.remove(storePrefix(h.device));
    return;
  }
  if (!native().holder.end(h.pid, 2000)) throw new Error(`the fd holder ${h.pid} of ${h.device} did not exit within 2 s of SIGKILL`);
}

/**
 * Copies of the holder's fds in this process, checked: each TUN fd a queue of `device`, each
 * receive socket bound to bindIp:port, send socket k to bindIp:port+k. Throws (closing what
 * it took) when anything differs.
 */
export function takeFromHolder(h: Holder, expect: { bindIp: string; port: number }): { tunFds: number[]; udpFds: number[]; txFds: number[] } {
  const n = native();
  // The store's files were passed to this process already: now the caller's.
  const fds = h.store ? takeStored(h.store, h.device) : n.holder.take(h.pid, [...h.tunFds, ...h.udpFds, ...h.txFds]);
  const tunFds = fds.slice(0, h.tunFds.length);
  const udpFds = fds.slice(h.tunFds.length, h.tunFds.length + h.udpFds.length);
  const txFds = fds.slice(h.tunFds.length + h.udpFds.length);
  try {
    for (const fd of tunFds) {
      const t = n.holder.tunInfo(fd);
      if (t.name !== h.device || (t.flags & n.tun.IFF_MULTI_QUEUE) === 0) throw new Error(`holder ${h.pid}: fd ${fd} is a queue of ${t.name} (flags ${t.flags.toString(16)}), not of ${h.device}`);
    }
    const bound = (fd: number, port: number) => {
      const u = n.holder.udpInfo(fd);
      if (u.address !== expect.bindIp || u.port !== port) throw new Error(`holder ${h.pid}: fd ${fd} is bound to ${u.address}:${u.port}, not ${expect.bindIp}:${port}`);
    };
    for (const fd of udpFds) bound(fd, expect.port);
    txFds.forEach((fd, i) => bound(fd, expect.port + 1 + i));
  } catch (e) {
    for (const fd of fds) n.close(fd);
    throw e;
  }
  return { tunFds, udpFds, txFds };
}
