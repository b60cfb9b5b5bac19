import { AF_INET, AF_INET6, AF_UNSPEC, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NLMSG_HDRLEN } from './constants.js';
import { align, encodeMessage, writeHeader, writePadded } from './wire.js';

/** One rtnetlink request before framing: what a handle sends and tests compare. */
export interface Request {
  type: number;
  /** NLM_F_* beyond NLM_F_REQUEST (added on framing), e.g. NLM_F_CREATE|NLM_F_EXCL. */
  flags: number;
  /** Fixed struct + attributes. */
  body: Buffer;
  /** iproute2-style description used in errors: 'route replace 10.0.0.0/24 dev 7'. */
  op: string;
}

/**
 * A request whose description is written when something reads it (an error, a fault rule, a
 * test): the per-peer requests of a batch almost all succeed, and writing 40,000 texts for
 * 10,000 peers allocated more than the requests themselves. `describe` must only read values
 * that do not change (the builder's arguments).
 */
export function described(type: number, flags: number, body: Buffer, describe: () => string): Request {
  return new DescribedRequest(type, flags, body, describe);
}

class DescribedRequest implements Request {
  private text: string | undefined;
  constructor(
    public type: number,
    public flags: number,
    public body: Buffer,
    private describe: (() => string) | undefined,
  ) {}

  get op(): string {
    if (this.text === undefined) {
      this.text = this.describe!();
      this.describe = undefined;
    }
    return this.text;
  }

  set op(text: string) {
    this.text = text;
    this.describe = undefined;
  }
}

/**
 * Frames requests into one buffer for one sendmsg, the i-th with sequence number seqs[i]; only
 * the last asks for an ACK (NetlinkChannel's batches). The same bytes as toMessage() of each,
 * concatenated, in one allocation.
 */
export function frameBatch(reqs: readonly Request[], seqs: readonly number[], pid = 0): Buffer {
  let len = 0;
  for (const r of reqs) len += NLMSG_HDRLEN + align(r.body.length);
  const b = Buffer.allocUnsafe(len);
  let off = 0;
  for (let i = 0; i < reqs.length; i++) {
    const r = reqs[i]!;
    writeHeader(b, off, NLMSG_HDRLEN + align(r.body.length), r.type, r.flags | NLM_F_REQUEST | (i === reqs.length - 1 ? NLM_F_ACK : 0), seqs[i]!, pid);
    off = writePadded(b, off + NLMSG_HDRLEN, r.body);
  }
  return b;
}

/** Frames a request; ack=true adds NLM_F_ACK (every modifying request, and gets). */
export function toMessage(r: Request, seq: number, pid = 0, ack = true): Buffer {
  return encodeMessage(r.type, r.flags | NLM_F_REQUEST | (ack ? NLM_F_ACK : 0), seq, pid, r.body);
}

export function checkIndex(what: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0 || v > 0x7fffffff) throw new TypeError(`${what} must be a positive interface index, got ${v}`);
}

export function checkUint(what: string, v: number, max: number, min = 0): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new TypeError(`${what} must be an integer in ${min}..${max}, got ${v}`);
}

/** A dump of one object kind, of one family or all (`ip [-4|-6] <what> show`). */
export function dumpRequest(type: number, encodeFixed: (family: number) => Buffer, what: string, family?: 4 | 6): Request {
  const fam = family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC;
  return { type, flags: NLM_F_DUMP, body: encodeFixed(fam), op: `${what} show${family ? ` -${family}` : ''}` };
}

/** The add/replace/del verbs of an object kind whose requests are RTM_NEW<kind> (create, exclusive or replacing) and RTM_DEL<kind>. */
export function newDelVerbs(newType: number, delType: number): Record<'add' | 'replace' | 'del', { type: number; flags: number }> {
  return {
    add: { type: newType, flags: NLM_F_CREATE | NLM_F_EXCL },
    replace: { type: newType, flags: NLM_F_CREATE | NLM_F_REPLACE },
    del: { type: delType, flags: 0 },
  };
}
