// The native receive path of a netlink socket against a real kernel, in a
// throwaway namespace: dump parts arrive whole and large (the socket tells the
// kernel it reads up to 64 KiB at once), nothing is lost or repeated, and an
// empty queue answers null at once or after the timeout; a monitor's batched read
// (pollRaw) takes thousands of notifications a few calls at a time. Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeNeigh, NetlinkHandle, NetlinkMonitor, neighDumpRequest, neighReplaceRequest, NLMSG_DONE, type NetlinkSocket, openRouteSocket,
  parseMessages, RTMGRP_NEIGH, RTM_NEWNEIGH, toMessage,
} from '../../../netlink/index.js';
import { registerNetns } from '../../../lab/netns.js';

const NS = `wtrv${randomBytes(3).toString('hex')}`;
const ENTRIES = 3000;
let made = false;
let h: NetlinkHandle | undefined;
let sock: NetlinkSocket | undefined;

function cleanup(): void {
  sock?.close();
  h?.close();
  if (made) spawnSync('ip', ['netns', 'del', NS]);
  made = false;
}
process.on('exit', cleanup);

const sh = (...a: string[]) => execFileSync(a[0]!, a.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test.before(async () => {
  registerNetns(NS);
  sh('ip', 'netns', 'add', NS);
  made = true;
  sh('ip', '-n', NS, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
  sh('ip', '-n', NS, 'link', 'set', 'd0', 'up');
  h = NetlinkHandle.open({ netns: NS });
  const index = h.linkByName('d0')!.index;
  const reqs = [];
  for (let i = 0; i < ENTRIES; i++) {
    const [a, b] = [i >> 8, i & 255];
    reqs.push(neighReplaceRequest({ index, ip: `10.9.${a}.${b}`, mac: `02:00:00:00:${a.toString(16).padStart(2, '0')}:${b.toString(16).padStart(2, '0')}` }));
  }
  assert.equal((await h.batch(reqs)).filter((e) => e !== undefined), []);
  sock = openRouteSocket({ netns: NS });
});

test.after(cleanup);

test('an empty queue: recv(0) answers null at once, recv(60) after about 60 ms', () => {
  let t = performance.now();
  assert.is(sock!.recv(0), null);
  assert.ok(performance.now() - t < 20, 'recv(0) waited');
  t = performance.now();
  assert.is(sock!.recv(60), null);
  const waited = performance.now() - t;
  assert.ok(waited >= 50 && waited < 2000, `recv(60) returned after ${waited.toFixed(1)} ms`);
});

test(`a dump of ${ENTRIES} neighbours: every entry once, in parts larger than a page, each datagram whole`, () => {
  sock!.send(toMessage(neighDumpRequest(4), 7, 0, false));
  const sizes: number[] = [];
  const seen = new Set<string>();
  let done = false;
  while (!done) {
    const d = sock!.recv(2000);
    assert.ok(d !== null, 'the dump stopped before NLMSG_DONE');
    sizes.push(d.length);
    for (const m of parseMessages(d)) {
      assert.is(m.seq, 7);
      if (m.type === NLMSG_DONE) done = true;
      else if (m.type === RTM_NEWNEIGH) {
        const n = decodeNeigh(m);
        if (n?.ip.startsWith('10.9.')) {
          assert.not.ok(seen.has(n.ip), `${n.ip} twice`);
          seen.add(n.ip);
        }
      }
    }
  }
  assert.is(seen.size, ENTRIES);
  // The kernel sizes dump parts by the largest read it has seen (up to ~32 KiB); a size-only
  // peek kept them at one page, ~70 parts for this dump instead of ~10.
  assert.ok(Math.max(...sizes) > 8192, `largest part ${Math.max(...sizes)} bytes`);
  assert.ok(sizes.length < 30, `${sizes.length} parts`);
  // Nothing left over: the last datagram was taken off the queue, not only peeked at.
  assert.is(sock!.recv(0), null);
});

test('a monitor\'s batched read: 1000 neighbour notifications, each once, at most maxDatagrams a call, then nothing', async () => {
  const mon = NetlinkMonitor.open({ netns: NS, groups: RTMGRP_NEIGH });
  try {
    const index = h!.linkByName('d0')!.index;
    const reqs = [];
    for (let i = 0; i < 1000; i++) reqs.push(neighReplaceRequest({ index, ip: `10.8.${i >> 8}.${i & 255}`, mac: `02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` }));
    assert.equal((await h!.batch(reqs)).filter((e) => e !== undefined), []);
    const seen = new Set<string>();
    let calls = 0;
    for (;;) {
      const { data, datagrams, overruns } = mon.pollRaw(300);
      assert.is(overruns, 0);
      assert.ok(datagrams <= 300, `${datagrams} datagrams in one call`);
      assert.is(data.length % 4, 0, 'datagrams start 4-aligned');
      if (datagrams === 0) {
        assert.is(data.length, 0);
        break;
      }
      calls++;
      for (const m of parseMessages(data)) {
        const n = m.type === RTM_NEWNEIGH ? decodeNeigh(m) : undefined;
        if (!n?.ip.startsWith('10.8.')) continue;
        assert.not.ok(seen.has(n.ip), `${n.ip} twice`);
        seen.add(n.ip);
      }
    }
    assert.is(seen.size, 1000);
    assert.ok(calls >= 4, `${calls} calls for 1000 notifications at most 300 a call`);
  } finally {
    mon.close();
  }
});

test.run();
