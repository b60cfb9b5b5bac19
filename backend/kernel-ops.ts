// Running kernel operations for a backend: a failure is counted, logged with
// its operation and errno, and reported as false so the caller can retry it
// later (the agent never exits over one peer's entry).
import type { Logger } from '../lib/log.js';
import { isNotFound } from '../netlink/index.js';

export class KernelOps {
  /** Failed operations since start (weft_kernel_operation_errors_total). */
  errors = 0;

  constructor(private readonly log: Logger) {}

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
}
