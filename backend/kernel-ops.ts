// Running kernel operations for a backend: a failure is counted, logged with
// its operation and errno, and reported as false so the caller can retry it
// later (the agent never exits over one peer's entry). Per-peer entries go in
// batches (NetlinkHandle.batch: many requests per sendmsg, the event loop
// runs between chunks); a batch's failures are logged as one line per
// operation and errno, not one per peer.
import type { Logger } from '../lib/log.js';
import { isNotFound, type KernelError, type NetlinkHandle, type Request } from '../netlink/index.js';

/** One request of a batch, with what the logs call it: e.g. 'route replace' of peer '10.244.3.0/24'. */
export interface KernelOp {
  readonly what: string;
  readonly subject: string;
  readonly req: Request;
  /** A delete whose object is already gone counts as done. */
  readonly tolerateMissing?: boolean;
}

export type BatchNetlink = Pick<NetlinkHandle, 'batch'>;

/** How many subjects a summary line names. */
const NAMED = 5;

export class KernelOps {
  /** Failed operations since start (weft_kernel_operation_errors_total). */
  errors = 0;

  constructor(readonly log: Logger) {}

  /** Runs fn; with tolerateMissing, "no such entry" counts as done (deleting what is gone). */
  attempt(what: string, subject: string, fn: () => void, tolerateMissing = false): boolean {
    try {
      fn();
      return true;
    } catch (e) {
      if (tolerateMissing && isNotFound(e)) return true;
      this.errors++;
      this.log.error('kernel operation failed; will retry', { op: what, subnet: subject, err: e });
      return false;
    }
  }

  /** Sends the operations as one batch; resolves to whether each succeeded (in order). */
  async run(nl: BatchNetlink, ops: readonly KernelOp[]): Promise<boolean[]> {
    if (ops.length === 0) return [];
    const errs = await nl.batch(ops.map((o) => o.req));
    const failed = new Map<string, { op: string; errno: string; message: string; subjects: string[] }>();
    const ok = ops.map((o, i) => {
      const e = errs[i];
      if (!e || (o.tolerateMissing && isNotFound(e))) return true;
      this.errors++;
      const key = `${o.what}\0${(e as KernelError).code}`;
      const f = failed.get(key) ?? { op: o.what, errno: (e as KernelError).code, message: e.message, subjects: [] };
      f.subjects.push(o.subject);
      failed.set(key, f);
      return false;
    });
    for (const f of failed.values()) {
      this.log.error('kernel operation failed; will retry', {
        op: f.op, errno: f.errno, count: f.subjects.length, subnets: f.subjects.slice(0, NAMED), err: f.message,
      });
    }
    return ok;
  }
}
