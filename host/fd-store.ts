// systemd's file descriptor store (sd_notify(3) FDSTORE=1, sd_listen_fds_with_names(3)):
// weftd hands systemd open files under a name; systemd keeps them while the
// service restarts (systemctl restart, a crash with Restart=) and passes them
// to the next weftd as LISTEN_FDS/LISTEN_FDNAMES. Used when systemd says the
// unit has a store ($FDSTORE, set from FileDescriptorStoreMax= by systemd 254
// and later); without one, fdStore() is undefined and the caller keeps its
// files some other way (the udp backend: its fd holder process).
// Every fd goes with a name of its own, so that the order systemd passes
// them back in does not matter. FDPOLL=0: systemd does not drop a socket
// from the store when it reports an error (a UDP socket after an ICMP error).
import { native } from '../native/index.js';

/** SD_LISTEN_FDS_START: the first fd systemd passes. */
const LISTEN_FDS_START = 3;
/** How long to wait for systemd to have closed the files a removal named. */
const BARRIER_MS = 2000;

export interface FdStoreSocket {
  send(socketPath: string, message: string, fds?: readonly number[]): void;
  /** BARRIER=1: true once systemd has handled every earlier message. */
  barrier(socketPath: string, timeoutMs: number): boolean;
  /** Makes a passed fd close-on-exec; throws when it is not open. */
  keep(fd: number): void;
  close(fd: number): void;
}

const nativeSocket = (): FdStoreSocket => {
  const n = native();
  return {
    send: (p, m, fds) => n.sdNotify(p, m, fds),
    barrier: (p, ms) => n.sdNotifySocket.barrier(p, ms),
    keep: (fd) => n.sdNotifySocket.keep(fd),
    close: (fd) => n.close(fd),
  };
};

/** A name systemd accepts for FDNAME=: 1-255 printable ASCII characters, no ':'. */
export function checkFdName(name: string): string {
  if (!/^[\x21-\x39\x3b-\x7e]{1,255}$/.test(name)) throw new TypeError(`fd store name '${name}' must be 1-255 printable ASCII characters without ':' or spaces`);
  return name;
}

/** The fds systemd passed, by name (LISTEN_PID must be ours); fds start at 3. */
export function parseListenFds(env: Readonly<Record<string, string | undefined>>, pid: number): Map<string, number> {
  const out = new Map<string, number>();
  if (env.LISTEN_PID === undefined || Number(env.LISTEN_PID) !== pid) return out;
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n <= 0) return out;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  for (let i = 0; i < n; i++) out.set(names[i] || `unknown-${i}`, LISTEN_FDS_START + i);
  return out;
}

export class FdStore {
  /** Passed at start and not taken yet: ours to close when nobody wants them. */
  private readonly passed: Map<string, number>;
  /** Names systemd holds (passed at start, or stored since). */
  private readonly held = new Set<string>();

  constructor(
    private readonly socketPath: string,
    passed: Map<string, number>,
    private readonly sock: FdStoreSocket = nativeSocket(),
  ) {
    this.passed = new Map();
    for (const [name, fd] of passed) {
      try {
        sock.keep(fd);
      } catch {
        continue; // not open after all: nothing to take
      }
      this.passed.set(name, fd);
      this.held.add(name);
    }
  }

  /** Names passed at start, not taken yet, that start with `prefix`. */
  passedNames(prefix: string): string[] {
    return [...this.passed.keys()].filter((n) => n.startsWith(prefix));
  }

  /** The passed fd of this name, still the store's (undefined when none was passed). */
  passedFd(name: string): number | undefined {
    return this.passed.get(name);
  }

  /** The passed fd of this name, now the caller's (undefined when none was passed). */
  take(name: string): number | undefined {
    const fd = this.passed.get(name);
    this.passed.delete(name);
    return fd;
  }

  /** Hands systemd each fd under its name, in one message each (they stay ours too). */
  store(entries: ReadonlyArray<readonly [string, number]>): void {
    for (const [name, fd] of entries) {
      this.sock.send(this.socketPath, `FDSTORE=1\nFDPOLL=0\nFDNAME=${checkFdName(name)}`, [fd]);
      this.held.add(name);
    }
  }

  /**
   * systemd closes what it holds under the names starting with `prefix`, and
   * passed fds of them not taken are closed here; returns once systemd has
   * (BARRIER=1), so that e.g. a UDP port they were bound to is free again.
   */
  remove(prefix: string): string[] {
    const names = [...this.held].filter((n) => n.startsWith(prefix));
    for (const name of names) {
      this.sock.send(this.socketPath, `FDSTOREREMOVE=1\nFDNAME=${name}`);
      this.held.delete(name);
    }
    for (const name of this.passedNames(prefix)) {
      this.sock.close(this.take(name)!);
    }
    if (names.length && !this.sock.barrier(this.socketPath, BARRIER_MS)) {
      throw new Error(`systemd did not confirm the removal of ${names.join(', ')} from its fd store within ${BARRIER_MS} ms`);
    }
    return names;
  }
}

let store: FdStore | undefined | null = null;

/**
 * The unit's fd store, when weftd runs under systemd with one ($NOTIFY_SOCKET
 * and $FDSTORE > 0); read once, at the first call (LISTEN_* are then removed
 * from the environment, so that no child takes them for its own).
 */
export function fdStore(env: Record<string, string | undefined> = process.env): FdStore | undefined {
  if (store !== null) return store;
  const passed = parseListenFds(env, process.pid);
  for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete env[k];
  const max = Number(env.FDSTORE);
  store = env.NOTIFY_SOCKET && Number.isInteger(max) && max > 0 ? new FdStore(env.NOTIFY_SOCKET, passed) : undefined;
  if (!store) {
    // Not ours to keep (the unit has no store now): closed, so that e.g. a TUN queue nobody reads does not swallow packets.
    for (const fd of passed.values()) {
      try { nativeSocket().close(fd); } catch { /* not open */ }
    }
  }
  return store;
}
