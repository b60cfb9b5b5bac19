// NetlinkHandle / NetlinkMonitor request-answer logic over a scripted fake
// socket: seq matching, ACK vs DONE, errors, timeouts, interrupted dumps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  attrStr, attrU32, encodeIfInfoMsg, encodeMessage, isNotFound, NetlinkError, NetlinkHandle, NetlinkMonitor,
  type NetlinkSocket, NLMSGERR_ATTR_MSG, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP,
  NLM_F_DUMP_INTR, NLM_F_MULTI, NLM_F_REQUEST, parseMessages, RTM_DELLINK, RTM_NEWLINK,
} from '../../../netlink/index.js';

const PORT = 4242;

/** Answers each sent request with whatever `respond` returns (a list of datagrams). */
class FakeSocket implements NetlinkSocket {
  readonly portId = PORT;
  sent: Buffer[] = [];
  queue: (Buffer | Error)[] = [];
  closed = false;
  constructor(private respond: (req: Buffer, seq: number) => (Buffer | Error)[]) {}
  send(msg: Buffer): void {
    this.sent.push(msg);
    this.queue.push(...this.respond(msg, msg.readUInt32LE(8)));
  }
  recv(_timeoutMs: number): Buffer | null {
    const d = this.queue.shift();
    if (d instanceof Error) throw d;
    return d ?? null;
  }
  close(): void {
    this.closed = true;
  }
}

const ack = (seq: number, errno = 0, extAck?: string, pid = PORT): Buffer => {
  const e = Buffer.alloc(4);
  e.writeInt32LE(-errno);
  const orig = encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, 0);
  return encodeMessage(NLMSG_ERROR, NLM_F_CAPPED | (extAck ? NLM_F_ACK_TLVS : 0), seq, pid, e, orig, ...(extAck ? [attrStr(NLMSGERR_ATTR_MSG, extAck)] : []));
};
const link = (seq: number, index: number, name: string, flags = NLM_F_MULTI, type = RTM_NEWLINK): Buffer =>
  encodeMessage(type, flags, seq, PORT, encodeIfInfoMsg({ index }), attrStr(3, name), attrU32(4, 1500));
const done = (seq: number, flags = NLM_F_MULTI): Buffer => encodeMessage(NLMSG_DONE, flags, seq, PORT, Buffer.alloc(4));

test('a modifying request carries REQUEST|ACK and its own seq; stale answers are skipped', () => {
  const sock = new FakeSocket((_req, seq) => [ack(seq - 1, 17), link(0, 9, 'noise', 0), Buffer.concat([ack(seq + 5), ack(seq)])]);
  const h = new NetlinkHandle(sock);
  h.linkSetUp(3);
  const sent = sock.sent[0]!;
  assert.is(sent.readUInt16LE(6), NLM_F_REQUEST | NLM_F_ACK);
  assert.is(sock.queue.length, 0, 'read until its own ACK');
});

test('a second request uses a new seq', () => {
  const sock = new FakeSocket((_r, seq) => [ack(seq)]);
  const h = new NetlinkHandle(sock);
  h.linkSetUp(3);
  h.linkSetDown(3);
  assert.is.not(sock.sent[0]!.readUInt32LE(8), sock.sent[1]!.readUInt32LE(8));
});

test('answers for another port are not ours', () => {
  const sock = new FakeSocket((_r, seq) => [ack(seq, 17, undefined, PORT + 1), ack(seq)]);
  new NetlinkHandle(sock).linkSetMtu(3, 1450);
});

test('kernel error → NetlinkError with op, code, errno, ext-ack', () => {
  const sock = new FakeSocket((_r, seq) => [ack(seq, 17, 'VXLAN device with specified VNI already exists')]);
  const h = new NetlinkHandle(sock);
  try {
    h.linkDel('weft.1');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, NetlinkError);
    const ne = e as NetlinkError;
    assert.equal([ne.op, ne.code, ne.errno, ne.retryable], ['link del weft.1', 'EEXIST', 17, false]);
    assert.is(ne.extAck, 'VXLAN device with specified VNI already exists');
    assert.is(ne.message, 'link del weft.1: File exists (EEXIST): VXLAN device with specified VNI already exists');
  }
});

test('not-found errnos: isNotFound, and linkByName → undefined', () => {
  for (const [errno, code] of [[2, 'ENOENT'], [3, 'ESRCH'], [19, 'ENODEV'], [99, 'EADDRNOTAVAIL']] as const) {
    const h = new NetlinkHandle(new FakeSocket((_r, seq) => [ack(seq, errno)]));
    try {
      h.routeDel({ dst: '10.244.3.0/24', index: 7 });
      assert.unreachable();
    } catch (e) {
      assert.is((e as NetlinkError).code, code);
      assert.ok(isNotFound(e));
    }
  }
  assert.is(new NetlinkHandle(new FakeSocket((_r, seq) => [ack(seq, 19)])).linkByName('nope'), undefined);
  assert.not.ok(isNotFound(new Error('ENOENT')));
  // Other errors from a get are not swallowed.
  assert.throws(() => new NetlinkHandle(new FakeSocket((_r, seq) => [ack(seq, 1)])).linkByName('x'), /link show x: Operation not permitted \(EPERM\)/);
});

test('get: the reply before the ACK is returned', () => {
  const h = new NetlinkHandle(new FakeSocket((_r, seq) => [link(seq, 7, 'weft.1', 0), ack(seq)]));
  assert.equal(h.linkByName('weft.1'), { index: 7, name: 'weft.1', mtu: 1500, flags: 0, up: false });
});

test('dump: no ACK flag, multi-part across datagrams until DONE', () => {
  const sock = new FakeSocket((_r, seq) => [Buffer.concat([link(seq, 1, 'lo'), link(seq, 2, 'u0')]), link(seq, 3, 'weft.1'), done(seq)]);
  const h = new NetlinkHandle(sock);
  assert.equal(h.linkList().map((l) => l.name), ['lo', 'u0', 'weft.1']);
  const flags = sock.sent[0]!.readUInt16LE(6);
  assert.is(flags, NLM_F_REQUEST | NLM_F_DUMP);
});

test('dump: NLM_F_DUMP_INTR restarts the dump; persistent interruption is a retryable error', () => {
  let calls = 0;
  const h = new NetlinkHandle(new FakeSocket((_r, seq) => (++calls === 1 ? [link(seq, 1, 'lo', NLM_F_MULTI | NLM_F_DUMP_INTR), done(seq)] : [link(seq, 1, 'lo'), link(seq, 2, 'u0'), done(seq)])));
  assert.equal(h.linkList().map((l) => l.name), ['lo', 'u0']);
  assert.is(calls, 2);
  const always = new NetlinkHandle(new FakeSocket((_r, seq) => [done(seq, NLM_F_MULTI | NLM_F_DUMP_INTR)]));
  try {
    always.linkList();
    assert.unreachable();
  } catch (e) {
    assert.is((e as NetlinkError).code, 'EINTR');
    assert.ok((e as NetlinkError).retryable);
  }
});

test('dump: DONE carrying an error throws', () => {
  const e = Buffer.alloc(4);
  e.writeInt32LE(-22);
  const h = new NetlinkHandle(new FakeSocket((_r, seq) => [encodeMessage(NLMSG_DONE, NLM_F_MULTI, seq, PORT, e)]));
  assert.throws(() => h.routeList(), /route show: Invalid argument \(EINVAL\)/);
});

test('no answer → ETIMEDOUT, retryable; a late answer is skipped by the next request', () => {
  let n = 0;
  const sock = new FakeSocket((_r, seq) => (++n === 1 ? [] : [ack(seq - 1), ack(seq)]));
  const h = new NetlinkHandle(sock, { timeoutMs: 50 });
  try {
    h.linkSetUp(3);
    assert.unreachable();
  } catch (e) {
    assert.equal([(e as NetlinkError).code, (e as NetlinkError).retryable], ['ETIMEDOUT', true]);
    assert.match((e as Error).message, /link set dev 3 up: no answer from the kernel within 50 ms \(ETIMEDOUT\)/);
  }
  h.linkSetUp(3);
  assert.is(sock.queue.length, 0);
});

test('socket errors become NetlinkErrors naming the op; garbage is EBADMSG', () => {
  const native = Object.assign(new Error('netlink recv: No buffer space available'), { code: 'ENOBUFS', errno: 105 });
  const h = new NetlinkHandle(new FakeSocket(() => [native]));
  try {
    h.neighList();
    assert.unreachable();
  } catch (e) {
    assert.equal([(e as NetlinkError).op, (e as NetlinkError).code, (e as NetlinkError).retryable], ['neigh show', 'ENOBUFS', true]);
  }
  const g = new NetlinkHandle(new FakeSocket(() => [Buffer.from([1, 2, 3])]));
  assert.throws(() => g.fdbList(), /fdb show: malformed netlink data at offset 0: truncated nlmsghdr.*\(EBADMSG\)/);
});

test('closed handle refuses requests and closes its socket once', () => {
  const sock = new FakeSocket((_r, seq) => [ack(seq)]);
  const h = new NetlinkHandle(sock);
  h.close();
  h.close();
  assert.ok(sock.closed);
  assert.throws(() => h.linkSetUp(1), /handle is closed/);
});

test('arguments are validated before anything is sent', () => {
  const sock = new FakeSocket((_r, seq) => [ack(seq)]);
  const h = new NetlinkHandle(sock);
  assert.throws(() => h.neighReplace({ index: 7, ip: '10.244.3.0', mac: 'zz' }), /invalid MAC address "zz"/);
  assert.throws(() => h.linkSetMtu(7, 20), /mtu must be an integer in 68\.\.65535, got 20/);
  assert.is(sock.sent.length, 0);
});

test('NetlinkMonitor.poll drains, decodes, reports overruns, stops when empty', () => {
  const overrun = Object.assign(new Error('netlink recv: No buffer space available'), { code: 'ENOBUFS', errno: 105 });
  const sock = new FakeSocket(() => []);
  sock.queue.push(Buffer.concat([link(0, 5, 'mon0', 0), link(0, 5, 'mon0', 0, RTM_DELLINK)]), overrun, encodeMessage(NLMSG_DONE, 0, 0, 0, Buffer.alloc(4)));
  const mon = new NetlinkMonitor(sock);
  const got = mon.poll();
  assert.equal(got.map((n) => (n.kind === 'link' ? `${n.action} ${n.link.name}` : n.kind)), ['new mon0', 'del mon0', 'overrun']);
  assert.equal(mon.poll(), []);
  mon.close();
  assert.throws(() => mon.poll(), /monitor is closed/);
});

test('NetlinkMonitor.pollRaw over a socket without batched reads: datagrams concatenated 4-aligned, overruns counted', () => {
  const overrun = Object.assign(new Error('netlink recv: No buffer space available'), { code: 'ENOBUFS', errno: 105 });
  const sock = new FakeSocket(() => []);
  // A message whose length is not a multiple of 4: its last attribute (the name, 9 bytes) without its padding.
  const odd = encodeMessage(RTM_NEWLINK, 0, 0, PORT, encodeIfInfoMsg({ index: 6 }), attrStr(3, 'mon1')).subarray(0, -3);
  odd.writeUInt32LE(odd.length, 0);
  assert.is.not(odd.length % 4, 0);
  sock.queue.push(odd, overrun, link(0, 5, 'mon0', 0, RTM_DELLINK), link(0, 7, 'mon2', 0));
  const mon = new NetlinkMonitor(sock);
  const first = mon.pollRaw(2);
  assert.equal([first.datagrams, first.overruns], [1, 1], 'an overrun is no datagram, but one of the reads maxDatagrams bounds');
  assert.is(first.data.length % 4, 0);
  assert.equal(parseMessages(first.data).map((m) => m.type), [RTM_NEWLINK]);
  const second = mon.pollRaw(10);
  assert.equal([second.datagrams, second.overruns], [2, 0]);
  assert.equal(parseMessages(second.data).map((m) => m.type), [RTM_DELLINK, RTM_NEWLINK]);
  assert.equal(mon.pollRaw(10).datagrams, 0);
  mon.close();
  assert.throws(() => mon.pollRaw(), /monitor is closed/);
});

test.run();
