// Failed kernel operations by operation and errno: what
// weft_netlink_errors_total{op,errno} serves. Answers that are part of normal
// control flow are not failures and not counted: "not found" to a delete or a
// lookup, "exists" to an add.
import { isExists, isNotFound, type KernelError, opKind } from './errors.js';

export interface ErrorCount {
  /** The operation without its arguments: "route replace", "neigh show", "tun open". */
  readonly op: string;
  /** The errno name: "ENOBUFS". */
  readonly errno: string;
  readonly count: number;
}

export class KernelErrorCounts {
  private readonly counts = new Map<string, { op: string; errno: string; count: number }>();

  add(e: KernelError): void {
    const op = opKind(e.op);
    const verb = op.split(' ')[1];
    if ((isNotFound(e) && (verb === 'del' || verb === 'show')) || (isExists(e) && verb === 'add')) return;
    const key = `${op}\0${e.code}`;
    const c = this.counts.get(key);
    if (c) c.count++;
    else this.counts.set(key, { op, errno: e.code, count: 1 });
  }

  list(): ErrorCount[] {
    return [...this.counts.values()].map((c) => ({ ...c }));
  }

  total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c.count;
    return n;
  }
}
