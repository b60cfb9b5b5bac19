// One thing at a time: work queued on a Serial runs after everything queued
// before it has finished (resolved or rejected). For an object whose async
// methods must not interleave at their awaits (a backend's apply and resync).
// Long work (a full reconcile of 10,000 peers) can let the work queued
// meanwhile go first at points where that is safe (yieldQueue()), so a lease
// put does not wait for it to end.
export class Serial {
  /** Work waiting to start, in order; each entry starts its task. */
  private readonly waiting: Array<() => void> = [];
  private busy = false;

  run<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push(() => {
        let p: Promise<T>;
        try {
          p = fn();
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(resolve, reject).finally(() => this.release());
      });
      this.pump();
    });
  }

  /** Whether work is queued behind the running task. */
  get contended(): boolean {
    return this.waiting.length > 0;
  }

  /**
   * Called by the running task only: the work queued behind it runs first (up
   * to what is queued now), then the task goes on, still ahead of anything
   * queued later. Resolves at once when nothing waits. The caller must expect
   * that state changed meanwhile.
   */
  async yieldQueue(): Promise<void> {
    if (this.waiting.length === 0) return;
    await new Promise<void>((resume) => {
      this.waiting.push(resume);
      this.release();
    });
  }

  private release(): void {
    this.busy = false;
    this.pump();
  }

  private pump(): void {
    if (this.busy) return;
    const next = this.waiting.shift();
    if (!next) return;
    this.busy = true;
    queueMicrotask(next); // never inside run() itself: a caller's code after run() goes first, as with promise chaining
  }
}
