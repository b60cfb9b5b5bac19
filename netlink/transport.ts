// One netlink conversation: a socket, a sequence number, and the request/answer
// logic every netlink family shares (rtnetlink's NetlinkHandle, generic
// netlink's GenlHandle). Requests are synchronous: the kernel handles a request
// inside sendmsg, so the answer is already queued when recv runs; the timeout
// only guards bugs. Every kernel failure is counted (by operation and errno)
// when the owner passes its counts; WEFT_FAULTS failpoints apply here too.
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_DUMP, NLM_F_DUMP_INTR } from './constants.js';
import type { KernelErrorCounts } from './error-counts.js';
import { errnoNumber, KernelError, NetlinkError, NetlinkParseError } from './errors.js';
import type { Faults } from './faults.js';
import { type Request, toMessage } from './request.js';
import { fromNative, type NetlinkSocket } from './socket.js';
import { type NlMsg, parseDone, parseError, parseMessages } from './wire.js';

/** Attempts of a dump the kernel flags inconsistent (NLM_F_DUMP_INTR). */
export const DUMP_ATTEMPTS = 3;

export interface ConnOptions {
  /** Failed operations, by operation and errno (not-found and exists answers included: the caller decides). */
  readonly errors?: KernelErrorCounts;
  /** Injected failures (tests). */
  readonly faults?: Faults;
}

export class NetlinkConn {
  private readonly timeoutMs: number;
  private seq: number;
  private closed = false;

  /** The conversation owns `sock` from now on. */
  constructor(readonly sock: NetlinkSocket, timeoutMs = 5000, private readonly o: ConnOptions = {}) {
    this.timeoutMs = timeoutMs;
    // A random start keeps two handles on one port from confusing each other's answers after a restart.
    this.seq = (Math.random() * 0x7fffffff) >>> 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }

  get isClosed(): boolean { return this.closed; }

  /** The next sequence number (shared with the owner's asynchronous side, so no two requests share one). */
  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /**
   * Sends one request and collects the messages answering it: up to the ACK
   * (NLM_F_ACK requests) or NLMSG_DONE (dumps). Throws NetlinkError for a
   * kernel error, a socket error, garbage, or no answer within the timeout.
   */
  private transact(req: Request): { msgs: NlMsg[]; interrupted: boolean } {
    try {
      return this.transactOnce(req);
    } catch (e) {
      if (e instanceof KernelError) this.o.errors?.add(e);
      throw e;
    }
  }

  private transactOnce(req: Request): { msgs: NlMsg[]; interrupted: boolean } {
    if (this.closed) throw new NetlinkError(req.op, 9, { detail: 'handle is closed' });
    const dump = (req.flags & NLM_F_DUMP) === NLM_F_DUMP;
    const fault = this.o.faults?.take(req.op);
    if (fault !== undefined && fault !== 'DUMP_INTR') throw new NetlinkError(req.op, errnoNumber(fault), { detail: `injected ${fault} (WEFT_FAULTS)` });
    const seq = this.nextSeq();
    try {
      this.sock.send(toMessage(req, seq, 0, !dump));
    } catch (e) {
      throw fromNative(req.op, e);
    }
    const deadline = Date.now() + this.timeoutMs;
    const msgs: NlMsg[] = [];
    let interrupted = fault === 'DUMP_INTR';
    for (;;) {
      const left = deadline - Date.now();
      let dgram: Buffer | null = null;
      if (left > 0) {
        try {
          dgram = this.sock.recv(left);
        } catch (e) {
          throw fromNative(req.op, e);
        }
      }
      if (dgram === null) {
        throw new NetlinkError(req.op, 110, { detail: `no answer from the kernel within ${this.timeoutMs} ms` });
      }
      let parts: NlMsg[];
      try {
        parts = parseMessages(dgram);
      } catch (e) {
        if (e instanceof NetlinkParseError) throw new NetlinkError(req.op, 74, { detail: e.message });
        throw e;
      }
      for (const m of parts) {
        // Not ours: a late answer to an earlier request that timed out.
        if (m.seq !== seq || (m.pid !== 0 && m.pid !== this.sock.portId)) continue;
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_ERROR) {
          const e = parseError(m);
          if (e.errno !== 0) throw new NetlinkError(req.op, e.errno, e.extAck ? { extAck: e.extAck } : {});
          if (!dump) return { msgs, interrupted };
          continue;
        }
        if (m.type === NLMSG_DONE) {
          const d = parseDone(m);
          if (d.errno !== 0) throw new NetlinkError(req.op, d.errno, d.extAck ? { extAck: d.extAck } : {});
          return { msgs, interrupted };
        }
        if (m.type === NLMSG_NOOP || m.type === NLMSG_OVERRUN) continue;
        msgs.push(m);
      }
    }
  }

  /** A modifying or get request: NLM_F_ACK, returns any replies before the ACK. */
  exec(req: Request): NlMsg[] {
    return this.transact(req).msgs;
  }

  /** A dump; restarted when the kernel flags it inconsistent (NLM_F_DUMP_INTR). */
  dump(req: Request): NlMsg[] {
    for (let attempt = 1; ; attempt++) {
      const { msgs, interrupted } = this.transact(req);
      if (!interrupted) return msgs;
      const e = new NetlinkError(req.op, 4, { detail: `dump kept changing underneath us (${attempt} attempts)` });
      this.o.errors?.add(e);
      if (attempt >= DUMP_ATTEMPTS) throw e;
    }
  }
}
