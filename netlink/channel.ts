// The asynchronous side of a NetlinkHandle, for work that is large (4000 peers
// at once) and must not hold the event loop: a socket of its own, one
// operation at a time (a queue), and
//   batch(reqs)  many requests per sendmsg, their answers collected per chunk and
//                each error mapped back to its request by sequence number;
//                chunks sized so that one takes about SLICE_MS, the event loop
//                runs between chunks; transient failures retried with backoff
//   dump(req)    a dump decoded datagram by datagram as it arrives, yielding
//                to the event loop every SLICE_MS, restarted when the kernel
//                flags it inconsistent (NLM_F_DUMP_INTR)
// rtnetlink handles requests inside sendmsg, so a chunk's answers are queued
// when send returns: only the last request asks for an ACK, the others are
// answered only when they fail. If the socket's receive buffer overflows
// (ENOBUFS) some answers are lost: the requests without one are sent again
// (every request weft batches is idempotent: replace, or delete where "not
// found" counts as done) and the chunk size halves.
import { SLICE_MS, yieldToLoop } from '../lib/backoff.js';
import { Serial } from '../lib/serial.js';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR } from './constants.js';
import type { KernelErrorCounts } from './error-counts.js';
import { errnoNumber, type KernelError, NetlinkError, NetlinkParseError } from './errors.js';
import type { Faults } from './faults.js';
import { frameBatch, type Request, toMessage } from './request.js';
import { fromNative, type NetlinkSocket } from './socket.js';
import { type NlMsg, parseDone, parseError, parseMessages } from './wire.js';

const MIN_CHUNK = 8;
const MAX_CHUNK = 512;
const MAX_CHUNK_BYTES = 64 * 1024;
/** Attempts per request of a batch while its failure is transient (and for a dump while it is interrupted). */
export const ATTEMPTS = 3;
const RETRY_DELAY_MS = [10, 50, 250];

const LOST = Symbol('lost');
type Outcome = KernelError | undefined | typeof LOST;

const now = () => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// The arrays handed from runBatch to nextChunk, sendChunk and frameBatch are built by push, never
// by map(): TurboFan's inlined map() makes a holey array where the builtin made a packed one, and
// their optimized code was thrown away over the difference, to be compiled again (in every
// weftd's first burst, on the one V8 worker thread it has).
function indices(n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(i);
  return out;
}

function pick<T>(xs: readonly T[], at: readonly number[]): T[] {
  const out: T[] = [];
  for (const i of at) out.push(xs[i]!);
  return out;
}

export interface ChannelOptions {
  readonly timeoutMs: number;
  readonly faults: Faults;
  readonly errors: KernelErrorCounts;
  readonly nextSeq: () => number;
}

export class NetlinkChannel {
  private readonly queue = new Serial();
  /** Requests per sendmsg, adapted to how long a chunk takes and to overflows. */
  private chunk = 64;

  constructor(
    private readonly sock: NetlinkSocket,
    private readonly o: ChannelOptions,
  ) {}

  private fail(e: KernelError): KernelError {
    this.o.errors.add(e);
    return e;
  }

  /** Sends every request; resolves to each one's error, or undefined where it succeeded. */
  batch(reqs: readonly Request[]): Promise<(KernelError | undefined)[]> {
    return this.queue.run(() => this.runBatch(reqs));
  }

  private async runBatch(reqs: readonly Request[]): Promise<(KernelError | undefined)[]> {
    const results: (KernelError | undefined)[] = new Array(reqs.length).fill(undefined);
    let todo = indices(reqs.length);
    for (let attempt = 1; todo.length > 0; attempt++) {
      const again: number[] = [];
      for (let off = 0; off < todo.length;) {
        const started = now();
        const part = this.nextChunk(reqs, todo, off);
        const outcomes = this.sendChunk(pick(reqs, part));
        let lost = 0;
        for (let j = 0; j < outcomes.length; j++) {
          const out = outcomes[j];
          const i = part[j]!;
          if (out === LOST) {
            lost++;
            again.push(i);
          } else if (out && out.retryable && attempt < ATTEMPTS) {
            again.push(i);
          } else {
            results[i] = out;
          }
        }
        off += part.length;
        const took = now() - started;
        if (lost > 0) this.chunk = Math.max(1, part.length >> 1);
        else if (part.length >= this.chunk) {
          // Aim at SLICE_MS per chunk: what the kernel takes per request varies with its tables.
          const fit = Math.round((part.length * SLICE_MS) / Math.max(took, 0.05));
          this.chunk = Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, fit, this.chunk * 2));
        }
        await yieldToLoop();
      }
      if (again.length > 0 && attempt >= ATTEMPTS) {
        // Still no answer after every attempt: report them as the overflow that lost them.
        for (const i of again) results[i] ??= this.fail(new NetlinkError(reqs[i]!.op, 105, { detail: 'its acknowledgement was lost to a full socket buffer on every attempt' }));
        break;
      }
      if (again.length > 0) await sleep(RETRY_DELAY_MS[attempt - 1] ?? 250);
      todo = again;
    }
    return results;
  }

  private nextChunk(reqs: readonly Request[], todo: readonly number[], off: number): number[] {
    const out: number[] = [];
    let bytes = 0;
    for (let k = off; k < todo.length && out.length < this.chunk; k++) {
      const size = reqs[todo[k]!]!.body.length + 16;
      if (out.length > 0 && bytes + size > MAX_CHUNK_BYTES) break;
      bytes += size;
      out.push(todo[k]!);
    }
    return out;
  }

  /**
   * One sendmsg with every request of the chunk; only the last asks for an ACK. The kernel
   * handles them in order inside send and answers a request without NLM_F_ACK only when it
   * fails, so once the last one's ACK is read, every request without an error succeeded.
   * (An ACK per request cost each agent 40,000 messages to queue, read and decode for
   * 10,000 peers.) After ENOBUFS an error may have been lost: every request without an
   * answer is sent again (all are idempotent).
   */
  private sendChunk(reqs: readonly Request[]): Outcome[] {
    const out: Outcome[] = new Array(reqs.length).fill(LOST);
    const pending = new Map<number, number>();
    const sent: number[] = [];
    for (let j = 0; j < reqs.length; j++) {
      const r = reqs[j]!;
      const fault = this.o.faults.active ? this.o.faults.take(r.op) : undefined;
      if (fault !== undefined && fault !== 'DUMP_INTR') {
        out[j] = this.fail(new NetlinkError(r.op, errnoNumber(fault), { detail: `injected ${fault} (WEFT_FAULTS)` }));
        continue;
      }
      sent.push(j);
    }
    if (sent.length === 0) return out;
    let lastSeq = 0;
    const seqs: number[] = [];
    for (const j of sent) {
      lastSeq = this.o.nextSeq();
      pending.set(lastSeq, j);
      seqs.push(lastSeq);
    }
    try {
      this.sock.send(frameBatch(sent.length === reqs.length ? reqs : pick(reqs, sent), seqs));
    } catch (e) {
      const err = fromNative('netlink send', e);
      if (!(err instanceof NetlinkError)) throw err;
      this.fail(err);
      for (const j of pending.values()) out[j] = err.retryable ? LOST : new NetlinkError(reqs[j]!.op, err.errno, { code: err.code });
      return out;
    }
    const deadline = now() + this.o.timeoutMs;
    let overflow = false;
    let done = false;
    while (!done) {
      let dgram: Buffer | null;
      try {
        dgram = this.sock.recv(overflow ? 0 : Math.max(0, deadline - now()));
      } catch (e) {
        const err = fromNative('netlink recv', e);
        if (err instanceof NetlinkError && err.code === 'ENOBUFS') {
          // Some answers did not fit; what is queued is still read, the rest is sent again.
          this.fail(err);
          overflow = true;
          continue;
        }
        throw err;
      }
      if (dgram === null) {
        if (!overflow) {
          for (const j of pending.values()) out[j] = this.fail(new NetlinkError(reqs[j]!.op, 110, { detail: `no answer from the kernel within ${this.o.timeoutMs} ms` }));
        }
        return out;
      }
      for (const m of this.parse(dgram, 'netlink recv')) {
        const j = pending.get(m.seq);
        if (j === undefined || (m.pid !== 0 && m.pid !== this.sock.portId) || m.type !== NLMSG_ERROR) continue;
        pending.delete(m.seq);
        const e = parseError(m);
        out[j] = e.errno === 0 ? undefined : this.fail(new NetlinkError(reqs[j]!.op, e.errno, e.extAck ? { extAck: e.extAck } : {}));
        if (m.seq === lastSeq) done = true;
      }
    }
    // The last request was answered: the others that were not failed. After an overflow that
    // may have dropped their errors they stay LOST (sent again).
    if (!overflow) for (const j of pending.values()) out[j] = undefined;
    return out;
  }

  private parse(dgram: Buffer, op: string): NlMsg[] {
    try {
      return parseMessages(dgram);
    } catch (e) {
      if (e instanceof NetlinkParseError) throw this.fail(new NetlinkError(op, 74, { detail: e.message }));
      throw e;
    }
  }

  /**
   * A dump's messages of `type`, decoded as they arrive and kept when `keep` says so; restarted when
   * interrupted, unless `interruptedOk` (a caller that copes with a listing that missed or repeated
   * what changed meanwhile: the first answer is taken as it is).
   */
  dump<T>(req: Request, type: number, decode: (m: NlMsg) => T | undefined, keep: (x: T) => boolean, interruptedOk = false): Promise<T[]> {
    return this.queue.run(async () => {
      for (let attempt = 1; ; attempt++) {
        const { items, interrupted } = await this.dumpOnce(req, type, decode, keep);
        if (!interrupted || interruptedOk) return items;
        const e = this.fail(new NetlinkError(req.op, 4, { detail: `dump kept changing underneath us (${attempt} attempts)` }));
        if (attempt >= ATTEMPTS) throw e;
        await yieldToLoop();
      }
    });
  }

  private async dumpOnce<T>(req: Request, type: number, decode: (m: NlMsg) => T | undefined, keep: (x: T) => boolean): Promise<{ items: T[]; interrupted: boolean }> {
    const fault = this.o.faults.take(req.op);
    if (fault !== undefined && fault !== 'DUMP_INTR') throw this.fail(new NetlinkError(req.op, errnoNumber(fault), { detail: `injected ${fault} (WEFT_FAULTS)` }));
    let interrupted = fault === 'DUMP_INTR';
    const seq = this.o.nextSeq();
    try {
      this.sock.send(toMessage(req, seq, 0, false));
    } catch (e) {
      const err = fromNative(req.op, e);
      if (err instanceof NetlinkError) this.fail(err);
      throw err;
    }
    const items: T[] = [];
    let deadline = now() + this.o.timeoutMs;
    let slice = now();
    for (;;) {
      let dgram: Buffer | null;
      try {
        dgram = this.sock.recv(Math.max(0, deadline - now()));
      } catch (e) {
        const err = fromNative(req.op, e);
        if (err instanceof NetlinkError) this.fail(err);
        throw err;
      }
      if (dgram === null) throw this.fail(new NetlinkError(req.op, 110, { detail: `no answer from the kernel within ${this.o.timeoutMs} ms` }));
      for (const m of this.parse(dgram, req.op)) {
        if (m.seq !== seq || (m.pid !== 0 && m.pid !== this.sock.portId)) continue;
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_ERROR) {
          const e = parseError(m);
          if (e.errno !== 0) throw this.fail(new NetlinkError(req.op, e.errno, e.extAck ? { extAck: e.extAck } : {}));
          continue;
        }
        if (m.type === NLMSG_DONE) {
          const d = parseDone(m);
          if (d.errno !== 0) throw this.fail(new NetlinkError(req.op, d.errno, d.extAck ? { extAck: d.extAck } : {}));
          return { items, interrupted };
        }
        if (m.type !== type) continue;
        const x = decode(m);
        if (x !== undefined && keep(x)) items.push(x);
      }
      if (now() - slice > SLICE_MS) {
        await yieldToLoop();
        slice = now();
        deadline = now() + this.o.timeoutMs;
      }
    }
  }

  close(): void {
    this.sock.close();
  }
}
