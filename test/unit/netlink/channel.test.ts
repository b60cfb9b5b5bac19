// The asynchronous side of NetlinkHandle (batch, *Dump) over a scripted fake
// socket: many requests per sendmsg, errors mapped back by sequence number,
// transient failures retried and counted, lost ACKs (ENOBUFS) re-sent, dumps
// restarted when interrupted, the event loop running between chunks; and the
// WEFT_FAULTS failpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AF_INET, attr, encodeMessage, encodeRtMsg, Faults, KernelError, NetlinkError, NetlinkHandle, type NetlinkSocket, NLMSG_DONE,
  NLMSG_ERROR, NLM_F_ACK, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTI, parseMessages, RTA_DST, RTA_GATEWAY, RTA_OIF, attrU32,
  routeRequest, RTM_NEWROUTE, RTN_UNICAST, RT_TABLE_MAIN, type NlMsg,
} from '../../../netlink/index.js';

const PORT = 77;

const ackFor = (m: NlMsg, errno = 0): Buffer => {
  const e = Buffer.alloc(4);
  e.writeInt32LE(-errno);
  return encodeMessage(NLMSG_ERROR, NLM_F_CAPPED, m.seq, PORT, e, encodeMessage(m.type, m.flags, m.seq, m.pid));
};

/** An NLMSG_ERROR answer with errno 0 (an ACK). */
const isSuccess = (b: Buffer): boolean => {
  const [m] = parseMessages(b);
  return m!.type === NLMSG_ERROR && m!.data.readInt32LE(0) === 0;
};

const routeMsg = (seq: number, i: number, flags = NLM_F_MULTI): Buffer =>
  encodeMessage(RTM_NEWROUTE, flags, seq, PORT,
    encodeRtMsg({ family: AF_INET, dstLen: 24, table: RT_TABLE_MAIN, protocol: 4, scope: 0, type: RTN_UNICAST, flags: 0 }),
    attr(RTA_DST, Buffer.from([10, 244, i >> 8, i & 255])), attr(RTA_GATEWAY, Buffer.from([10, 244, i >> 8, i & 255])), attrU32(RTA_OIF, 7));

/**
 * A kernel that answers each message of every sendmsg through `answer` (as netlink_ack does:
 * a success only to a request with NLM_F_ACK, a failure always); recv hands out the queue.
 */
class Kernel implements NetlinkSocket {
  readonly portId = PORT;
  sends: NlMsg[][] = [];
  queue: (Buffer | Error | null)[] = [];
  recvs = 0;
  constructor(private readonly answer: (m: NlMsg, k: Kernel) => (Buffer | Error | null)[] = (m) => [ackFor(m)]) {}
  send(buf: Buffer): void {
    const msgs = parseMessages(buf);
    this.sends.push(msgs);
    for (const m of msgs) {
      const wantsAck = (m.flags & NLM_F_ACK) !== 0;
      this.queue.push(...this.answer(m, this).filter((a) => wantsAck || !(a instanceof Buffer) || !isSuccess(a)));
    }
  }
  recv(): Buffer | null {
    this.recvs++;
    const d = this.queue.shift();
    if (d instanceof Error) throw d;
    return d ?? null;
  }
  close(): void {}
}

const enobufs = () => Object.assign(new Error('netlink recv: No buffer space available'), { code: 'ENOBUFS', errno: -105 });
const handle = (k: Kernel, faults = Faults.none) => new NetlinkHandle(k, { faults, timeoutMs: 50 });
const routes = (n: number) => Array.from({ length: n }, (_, i) => routeRequest('replace', { dst: `10.244.${i >> 8}.${i & 255}/32`, gateway: '192.0.2.1', index: 7 }));

test('batch: many requests per sendmsg, each with its own seq, only the last of each asking for an ACK; each error given back to its request', async () => {
  const k = new Kernel((m) => [ackFor(m, m.seq % 7 === 0 ? 19 : 0)]);
  const h = handle(k);
  const reqs = routes(300);
  const errs = await h.batch(reqs);
  assert.ok(k.sends.length < 20, `${k.sends.length} sendmsg calls for 300 requests`);
  const seqs = k.sends.flat().map((m) => m.seq);
  assert.is(new Set(seqs).size, 300, 'a distinct sequence number per request');
  for (const send of k.sends) assert.equal(send.map((m) => (m.flags & NLM_F_ACK) !== 0), send.map((_, i) => i === send.length - 1), 'NLM_F_ACK on the last only');
  const failed = errs.map((e, i) => (e ? i : -1)).filter((i) => i >= 0);
  const expected = k.sends.flat().map((m, i) => (m.seq % 7 === 0 ? i : -1)).filter((i) => i >= 0);
  assert.equal(failed, expected);
  for (const i of failed) {
    assert.instance(errs[i], NetlinkError);
    assert.is(errs[i]!.code, 'ENODEV');
    assert.is(errs[i]!.op, reqs[i]!.op, 'the error names its own request');
  }
  assert.equal(h.errors.list(), [{ op: 'route replace', errno: 'ENODEV', count: failed.length }]);
});

test('batch: a transient error (EBUSY) is retried and succeeds; both the failure and the request are accounted for', async () => {
  const busy = new Set<number>();
  let first = true;
  const k = new Kernel((m) => {
    if (first) { first = false; busy.add(m.seq); return [ackFor(m, 16)]; }
    return [ackFor(m)];
  });
  const h = handle(k);
  const errs = await h.batch(routes(5));
  assert.equal(errs, [undefined, undefined, undefined, undefined, undefined]);
  assert.is(k.sends.flat().length, 6, 'the busy one was sent twice');
  assert.equal(h.errors.list(), [{ op: 'route replace', errno: 'EBUSY', count: 1 }]);
});

test('batch: answers lost to a full receive buffer (ENOBUFS): every request without one is sent again, in smaller chunks; a failure read before is not', async () => {
  const k = new Kernel((m, kk) => [ackFor(m, kk.sends.length === 1 && m.seq === kk.sends[0]![0]!.seq ? 19 : 0)]);
  const send = k.send.bind(k);
  k.send = (buf) => {
    send(buf);
    // The first request's ENODEV was queued; what came after it (the last one's ACK) overflowed.
    if (k.sends.length === 1) k.queue.splice(1, k.queue.length, enobufs());
  };
  const h = handle(k);
  const errs = await h.batch(routes(40));
  assert.is(errs[0]?.code, 'ENODEV');
  assert.ok(errs.slice(1).every((e) => e === undefined), JSON.stringify(errs.map((e) => e?.message)));
  assert.is(k.sends[0]!.length, 40);
  const resent = k.sends.slice(1).flat().length;
  assert.is(resent, 39, 'every request whose answer may have been lost, not the one that failed');
  assert.ok(k.sends[1]!.length <= 20, 'the chunk got smaller');
  assert.equal(h.errors.list().map((e) => `${e.op} ${e.errno} ${e.count}`).sort(), ['netlink recv ENOBUFS 1', 'route replace ENODEV 1']);
});

test('batch: an error for a request in the middle arrives before the last one\'s ACK; the rest succeed', async () => {
  const k = new Kernel((m, kk) => [ackFor(m, m.seq === kk.sends.at(-1)![5]!.seq ? 17 : 0)]);
  const errs = await handle(k).batch(routes(10));
  assert.equal(errs.map((e) => e?.code), [undefined, undefined, undefined, undefined, undefined, 'EEXIST', undefined, undefined, undefined, undefined]);
  assert.is(k.sends.length, 1);
  assert.is(k.queue.length, 0, 'both answers read: the error and the last ACK');
});

test('batch: no answer is ETIMEDOUT for every request of the chunk (retryable), after the attempts', async () => {
  const k = new Kernel(() => []);
  const errs = await handle(k).batch(routes(3));
  for (const e of errs) {
    assert.instance(e, KernelError);
    assert.is(e!.code, 'ETIMEDOUT');
    assert.is(e!.retryable, true);
  }
  assert.is(k.sends.length, 3, 'three attempts');
});

test('batch: the event loop runs between chunks', async () => {
  const k = new Kernel((m) => {
    const t = performance.now();
    while (performance.now() - t < 0.05) { /* the kernel's work per request */ }
    return [ackFor(m)];
  });
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 1);
  await handle(k).batch(routes(2000));
  clearInterval(timer);
  assert.ok(k.sends.length > 5, `${k.sends.length} chunks`);
  assert.ok(ticks > 5, `the event loop ran ${ticks} times during the batch`);
});

function dumpKernel(count: number, interruptFirst: number): Kernel {
  let dumps = 0;
  return new Kernel((m) => {
    if ((m.flags & NLM_F_DUMP) !== NLM_F_DUMP) return [ackFor(m)];
    dumps++;
    const intr = dumps <= interruptFirst ? NLM_F_DUMP_INTR : 0;
    const out: Buffer[] = [];
    for (let i = 0; i < count; i += 50) {
      out.push(Buffer.concat(Array.from({ length: Math.min(50, count - i) }, (_, j) => routeMsg(m.seq, i + j, NLM_F_MULTI | (i === 0 ? intr : 0)))));
    }
    out.push(encodeMessage(NLMSG_DONE, NLM_F_MULTI, m.seq, PORT, Buffer.alloc(4)));
    return out;
  });
}

test('routeDump: decoded datagram by datagram; an interrupted dump is restarted and counted (EINTR)', async () => {
  const h = handle(dumpKernel(1000, 1));
  const rs = await h.routeDump({ family: 4 });
  assert.is(rs.length, 1000);
  assert.is(rs[999]!.dst, '10.244.3.231/24');
  assert.equal(h.errors.list(), [{ op: 'route show', errno: 'EINTR', count: 1 }]);
});

test('routeDump: interrupted on every attempt is a retryable EINTR naming the operation', async () => {
  const h = handle(dumpKernel(10, 3));
  try {
    await h.routeDump({ family: 4 });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, NetlinkError);
    assert.is((e as NetlinkError).code, 'EINTR');
    assert.is((e as NetlinkError).retryable, true);
    assert.match((e as Error).message, /^route show -4: dump kept changing underneath us \(3 attempts\) \(EINTR\)$/);
  }
});

test('WEFT_FAULTS: rules fail matching operations (after a skip), by errno or as an interrupted dump; a bad rule is named', async () => {
  const f = Faults.parse('route replace=ETIMEDOUTx2@1, route show=DUMP_INTRx1');
  const k = dumpKernel(5, 0);
  const h = handle(k, f);
  const errs = await h.batch(routes(4));
  assert.ok(errs.every((e) => e === undefined), 'retried past the injected timeouts');
  assert.equal(h.errors.list().find((e) => e.errno === 'ETIMEDOUT'), { op: 'route replace', errno: 'ETIMEDOUT', count: 2 });
  assert.is((await h.routeDump()).length, 5);
  assert.ok(h.errors.list().some((e) => e.op === 'route show' && e.errno === 'EINTR'));
  // The synchronous side takes the same faults.
  const g = new NetlinkHandle(new Kernel(), { faults: Faults.parse('link set=EBUSY') });
  assert.throws(() => g.linkSetUp(3), (e: unknown) => (e as NetlinkError).code === 'EBUSY' && (e as NetlinkError).retryable);
  g.linkSetUp(3);
  assert.equal(g.errors.list(), [{ op: 'link set', errno: 'EBUSY', count: 1 }]);
  assert.throws(() => Faults.parse('route replace=EWHATEVER'), /WEFT_FAULTS: bad rule "route replace=EWHATEVER"/);
  assert.throws(() => Faults.parse('nonsense'), /bad rule "nonsense"/);
});

test.run();
