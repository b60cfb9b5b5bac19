// One thing at a time: work queued on a Serial runs after everything queued
// before it has finished (resolved or rejected). For an object whose async
// methods must not interleave at their awaits (a backend's apply and resync).
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}
