// A full reconcile (list the kernel, diff with every peer, apply) takes a few
// hundred milliseconds at 10,000 peers. It holds the backend's queue (a
// Serial), but lets the work queued behind it (a lease put's apply) go first
// at each pause, between slices of a few milliseconds, so a put's route is not
// held up by it. Everything that other work changes meanwhile is recorded
// (touch(): a peer's subnet, MAC, VTEP address), and the reconcile leaves it
// alone: its plan, computed before, must never undo a newer apply. A second
// full reconcile that runs meanwhile (a snapshot batch, a new underlay)
// supersedes the paused one, which stops at its next pause.
import { Slicer } from '../lib/backoff.js';
import type { Serial } from '../lib/serial.js';

/** Thrown at a pause of a reconcile that another full reconcile has superseded (the caller stops quietly). */
export class Superseded extends Error {
  constructor() {
    super('superseded by a newer full reconcile');
  }
}

export class ReconcileRuns {
  private epoch = 0;
  private current?: ReconcileRun;

  constructor(private readonly serial: Serial) {}

  /** A full reconcile starts (or its kernel listing does): from now on, touch() records for it. */
  private begin(): ReconcileRun {
    this.current = new ReconcileRun(this.serial, ++this.epoch, () => this.epoch);
    return this.current;
  }

  /** Work other than the reconcile changed these (subnets, MACs, addresses): the running reconcile leaves them alone. */
  touch(...subjects: string[]): void {
    if (this.current) for (const s of subjects) this.current.touched.add(s);
  }

  private end(run: ReconcileRun): void {
    if (this.current === run) this.current = undefined;
  }

  /** begin(), fn, end(): fn is a full reconcile (with its listing, when that goes first outside the queue). */
  async during(fn: (run: ReconcileRun) => Promise<void>): Promise<void> {
    const run = this.begin();
    try {
      await fn(run);
    } finally {
      this.end(run);
    }
  }
}

export class ReconcileRun {
  /** What other work changed since this run began. */
  readonly touched = new Set<string>();
  readonly slicer = new Slicer();

  constructor(private readonly serial: Serial, private readonly epoch: number, private readonly latest: () => number) {}

  /** Lets the event loop, then the work queued behind the reconcile, run; throws Superseded when a newer full reconcile ran meanwhile. */
  async pause(): Promise<void> {
    await this.slicer.next();
    await this.serial.yieldQueue();
    this.check();
  }

  /** Throws Superseded when a newer full reconcile began since this one. */
  check(): void {
    if (this.latest() !== this.epoch) throw new Superseded();
  }

  /** pause() when the current slice is used up. */
  async step(): Promise<void> {
    if (this.slicer.due()) await this.pause();
  }

  /** Whether the reconcile may still act on this subject (no other work changed it since the run began). */
  free(subject: string): boolean {
    return !this.touched.has(subject);
  }
}
