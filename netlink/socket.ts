// The one place netlink touches the native addon. Everything above talks to a
// NetlinkSocket, so handles and monitors can be driven by a fake in unit tests.
import { isAbsolute, join } from 'node:path';
import { isNativeError, native } from '../native/index.js';
import { NETLINK_GENERIC, NETLINK_ROUTE } from './constants.js';
import { errnoNumber, NetlinkError } from './errors.js';

export interface NetlinkSocket {
  /** The socket's netlink port id (nl_pid); kernel replies carry it in nlmsg_pid. */
  readonly portId: number;
  send(msg: Buffer): void;
  /** One datagram, or null when none arrived within timeoutMs (0 polls). */
  recv(timeoutMs: number): Buffer | null;
  /** The datagrams queued now, without waiting, concatenated (native recvBatch); overruns: ENOBUFS seen. Native sockets have it. */
  recvBatch?(maxDatagrams: number): { data: Buffer; datagrams: number; overruns: number };
  close(): void;
}

/** '/run/netns/h1' stays as is; a bare name 'h1' means /run/netns/h1. */
export function resolveNetns(netns: string): string {
  if (netns.length === 0) throw new TypeError('netns must not be empty');
  if (isAbsolute(netns)) return netns;
  if (netns.includes('/') || netns === '.' || netns === '..') throw new TypeError(`invalid netns name ${JSON.stringify(netns)}`);
  return join('/run/netns', netns);
}

/** Converts a native socket error into a NetlinkError naming the operation. */
export function fromNative(op: string, e: unknown): Error {
  if (isNativeError(e)) return new NetlinkError(op, Math.abs(e.errno) || errnoNumber(e.code), { code: e.code });
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * WEFT_NETLINK_RCVBUF (bytes; tests and diagnosis): a request socket's receive
 * buffer, e.g. 4096 to make the kernel drop a batch's ACKs (ENOBUFS) for real.
 */
function requestRcvbuf(): number {
  const v = Number(process.env.WEFT_NETLINK_RCVBUF ?? 0);
  return Number.isInteger(v) && v > 0 ? v : 0;
}

/** filter: a classic BPF program (monitor-filter.ts) the kernel runs on everything sent to the socket. */
export function openRouteSocket(opts: { groups?: number; netns?: string; filter?: Buffer } = {}): NetlinkSocket {
  return openNetlinkSocket(NETLINK_ROUTE, 'rtnetlink', opts);
}

/** A generic netlink socket (WireGuard's family, nlctrl). */
export function openGenericSocket(opts: { netns?: string } = {}): NetlinkSocket {
  return openNetlinkSocket(NETLINK_GENERIC, 'generic netlink', opts);
}

function openNetlinkSocket(protocol: number, what: string, opts: { groups?: number; netns?: string; filter?: Buffer }): NetlinkSocket {
  const path = opts.netns === undefined ? undefined : resolveNetns(opts.netns);
  const groups = opts.groups ?? 0;
  const n = native();
  let s: { fd: number; portId: number };
  try {
    s = n.netlink.open(protocol, groups, path, groups === 0 && protocol === NETLINK_ROUTE ? requestRcvbuf() : 0);
  } catch (e) {
    throw fromNative(`open ${what} socket${path ? ` in ${path}` : ''}`, e);
  }
  if (opts.filter) {
    try {
      n.netlink.attachFilter(s.fd, opts.filter);
    } catch (e) {
      n.close(s.fd);
      throw fromNative(`filter on the ${what} socket${path ? ` in ${path}` : ''}`, e);
    }
  }
  let fd = s.fd;
  return {
    portId: s.portId,
    send(msg) {
      if (fd < 0) throw new NetlinkError('netlink send', 9, { detail: 'socket is closed' });
      n.netlink.send(fd, msg);
    },
    recv(timeoutMs) {
      if (fd < 0) throw new NetlinkError('netlink recv', 9, { detail: 'socket is closed' });
      return n.netlink.recv(fd, Math.max(-1, Math.min(Math.floor(timeoutMs), 0x7fffffff)));
    },
    recvBatch(maxDatagrams) {
      if (fd < 0) throw new NetlinkError('netlink recv', 9, { detail: 'socket is closed' });
      return n.netlink.recvBatch(fd, maxDatagrams);
    },
    close() {
      if (fd >= 0) {
        const f = fd;
        fd = -1;
        n.close(f);
      }
    },
  };
}
