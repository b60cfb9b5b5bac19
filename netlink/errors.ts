import { getSystemErrorName } from 'node:util';

// strerror(3) texts for the errnos rtnetlink commonly returns; names come from
// the same table so a code never depends on the host's libuv build.
const ERRNOS: Record<number, [code: string, text: string]> = {
  1: ['EPERM', 'Operation not permitted'],
  2: ['ENOENT', 'No such file or directory'],
  3: ['ESRCH', 'No such process'],
  4: ['EINTR', 'Interrupted system call'],
  5: ['EIO', 'Input/output error'],
  6: ['ENXIO', 'No such device or address'],
  7: ['E2BIG', 'Argument list too long'],
  9: ['EBADF', 'Bad file descriptor'],
  11: ['EAGAIN', 'Resource temporarily unavailable'],
  12: ['ENOMEM', 'Cannot allocate memory'],
  13: ['EACCES', 'Permission denied'],
  14: ['EFAULT', 'Bad address'],
  16: ['EBUSY', 'Device or resource busy'],
  17: ['EEXIST', 'File exists'],
  18: ['EXDEV', 'Invalid cross-device link'],
  19: ['ENODEV', 'No such device'],
  22: ['EINVAL', 'Invalid argument'],
  23: ['ENFILE', 'Too many open files in system'],
  24: ['EMFILE', 'Too many open files'],
  28: ['ENOSPC', 'No space left on device'],
  34: ['ERANGE', 'Numerical result out of range'],
  36: ['ENAMETOOLONG', 'File name too long'],
  39: ['ENOTEMPTY', 'Directory not empty'],
  61: ['ENODATA', 'No data available'],
  71: ['EPROTO', 'Protocol error'],
  74: ['EBADMSG', 'Bad message'],
  75: ['EOVERFLOW', 'Value too large for defined data type'],
  90: ['EMSGSIZE', 'Message too long'],
  92: ['ENOPROTOOPT', 'Protocol not available'],
  93: ['EPROTONOSUPPORT', 'Protocol not supported'],
  95: ['EOPNOTSUPP', 'Operation not supported'],
  97: ['EAFNOSUPPORT', 'Address family not supported by protocol'],
  98: ['EADDRINUSE', 'Address already in use'],
  99: ['EADDRNOTAVAIL', 'Cannot assign requested address'],
  100: ['ENETDOWN', 'Network is down'],
  101: ['ENETUNREACH', 'Network is unreachable'],
  105: ['ENOBUFS', 'No buffer space available'],
  110: ['ETIMEDOUT', 'Connection timed out'],
  113: ['EHOSTUNREACH', 'No route to host'],
  114: ['EALREADY', 'Operation already in progress'],
};

/** errno number → name ('EEXIST'); unknown numbers fall back to Node's table, then 'E<n>'. */
export function errnoCode(errno: number): string {
  const known = ERRNOS[errno];
  if (known) return known[0];
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `E${errno}`;
  }
}

/** errno number → strerror text ('File exists'). */
export function errnoText(errno: number): string {
  return ERRNOS[errno]?.[1] ?? `errno ${errno}`;
}

const CODE_TO_ERRNO = new Map(Object.entries(ERRNOS).map(([n, [code]]) => [code, Number(n)]));

/** Name → errno number, for the names in the table above (0 when unknown). */
export function errnoNumber(code: string): number {
  return CODE_TO_ERRNO.get(code) ?? 0;
}

// Transient conditions: the same request may succeed if sent again (an
// interrupted dump, a full socket buffer, a busy device, no answer in time).
// Anything else (EPERM, EINVAL, ENODEV, ...) no retry of the same call fixes.
const RETRYABLE = new Set(['EAGAIN', 'EINTR', 'ENOBUFS', 'EBUSY', 'ETIMEDOUT', 'ENOMEM']);

/** Whether an errno name is a transient condition (see RETRYABLE). */
export function isTransientErrno(code: string): boolean {
  return RETRYABLE.has(code);
}

/**
 * A kernel operation failed with an errno: a netlink request (NetlinkError),
 * a TUN ioctl, a socket call. `op` is iproute2-style ("route replace
 * 10.244.3.0/24 via 10.244.3.0 dev 7", "tun open weft-tun"); `retryable`
 * marks the transient errnos.
 */
export class KernelError extends Error {
  override readonly name: string = 'KernelError';
  readonly op: string;
  readonly errno: number;
  readonly code: string;
  readonly extAck?: string;
  readonly retryable: boolean;

  constructor(op: string, errno: number, opts: { extAck?: string; code?: string; detail?: string } = {}) {
    const code = opts.code ?? errnoCode(errno);
    const text = opts.detail ?? errnoText(errno);
    super(`${op}: ${text} (${code})${opts.extAck ? `: ${opts.extAck}` : ''}`);
    this.op = op;
    this.errno = errno;
    this.code = code;
    if (opts.extAck !== undefined) this.extAck = opts.extAck;
    this.retryable = RETRYABLE.has(code);
  }
}

/** A request the kernel refused (NLMSG_ERROR), or a socket failure while talking to it. */
export class NetlinkError extends KernelError {
  override readonly name = 'NetlinkError';
}

export function isKernelError(e: unknown): e is KernelError {
  return e instanceof KernelError;
}

/**
 * An error from a system call (the native addon's, or Node's: anything with a
 * numeric errno or an errno name as code) as a KernelError naming `op`;
 * anything else is returned unchanged.
 */
export function toKernelError(op: string, e: unknown): unknown {
  if (e instanceof KernelError) return e;
  const x = e as { errno?: unknown; code?: unknown; message?: unknown } | null;
  const code = typeof x?.code === 'string' && /^E[A-Z0-9]+$/.test(x.code) ? x.code : undefined;
  const errno = typeof x?.errno === 'number' ? Math.abs(x.errno) : code ? errnoNumber(code) : 0;
  if (!code && !errno) return e;
  return new KernelError(op, errno, code ? { code } : {});
}

/** The operation without its arguments ("route replace", "neigh show", "tun open"): the metrics' op label. */
export function opKind(op: string): string {
  return op.split(' ').slice(0, 2).join(' ');
}

export function isNetlinkError(e: unknown): e is NetlinkError {
  return e instanceof NetlinkError;
}

// What the kernel answers when the object to delete or look up does not exist:
// routes ESRCH, neighbours/fdb ENOENT, links ENODEV, addresses EADDRNOTAVAIL.
const NOT_FOUND = new Set(['ENOENT', 'ESRCH', 'ENODEV', 'EADDRNOTAVAIL']);

/** True when `e` says the object was not there (e.g. deleting what is already gone). */
export function isNotFound(e: unknown): boolean {
  return e instanceof KernelError && NOT_FOUND.has(e.code);
}

/** True when `e` says the object already exists (NLM_F_EXCL). */
export function isExists(e: unknown): boolean {
  return e instanceof KernelError && e.code === 'EEXIST';
}

/** Bytes that are not a well-formed netlink message. Never retryable. */
export class NetlinkParseError extends Error {
  override readonly name = 'NetlinkParseError';
  readonly code = 'EBADMSG';
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`malformed netlink data at offset ${offset}: ${message}`);
    this.offset = offset;
  }
}
