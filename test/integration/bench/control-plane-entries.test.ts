// The scale bench's entry counting (HostEntries): routes of wanted subnets
// counted from the monitor as they come and go, each route change stamped, and the
// dump check counting only exact matches of a wanted lease (neighbour, FDB,
// route through its nexthop object) in a throwaway namespace. Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostEntries, WantedEntries } from '../../../bench/control-plane-entries.js';
import { registerNetns } from '../../../lab/netns.js';
import { NetlinkHandle } from '../../../netlink/index.js';

const NS = `wtcpe${randomBytes(3).toString('hex')}`;
const ip = (...args: string[]) => execFileSync('ip', ['-n', NS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
const bridge = (...args: string[]) => execFileSync('bridge', ['-n', NS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });

const want = [0, 1, 2].map((k) => ({ subnet: `10.160.${k}.0/24`, vtep: `10.160.${k}.0`, mac: `02:b5:a0:00:00:0${k}`, publicIp: `198.18.0.${k + 1}` }));
let nl: NetlinkHandle;
let e: HostEntries;

/** Neighbour, FDB entry and (through a nexthop object, as weftd makes it) route of want[k]. */
function program(k: number, opts: { mac?: string; gateway?: string } = {}): void {
  const w = want[k]!;
  ip('neigh', 'replace', w.vtep, 'lladdr', opts.mac ?? w.mac, 'dev', 'weft.1', 'nud', 'permanent');
  bridge('fdb', 'append', opts.mac ?? w.mac, 'dev', 'weft.1', 'dst', w.publicIp);
  ip('nexthop', 'replace', 'id', String(100 + k), 'via', opts.gateway ?? w.vtep, 'dev', 'weft.1', 'onlink');
  ip('route', 'replace', w.subnet, 'nhid', String(100 + k));
}

test.before(() => {
  registerNetns(NS);
  execFileSync('ip', ['netns', 'add', NS]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'weft.1', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'nolearning', 'local', '192.0.2.11');
  ip('link', 'set', 'weft.1', 'up');
  nl = NetlinkHandle.open({ netns: NS });
  e = new HostEntries(nl, NS, 'weft.1', new WantedEntries(want));
});

test.after(() => {
  e?.close();
  nl?.close();
  spawnSync('ip', ['netns', 'del', NS]);
});

test('nothing before; routes counted from the monitor, and the dump counts each peer whose three entries exist', async () => {
  e.poll();
  const before = e.lastChange;
  assert.is(e.poll(), 0);
  assert.is(e.lastChange, before, 'no change, no new stamp');
  assert.equal(await e.dumpCounts(), [0, 0, 0]);
  program(0);
  program(1);
  assert.is(e.poll(), 2);
  assert.ok(e.lastChange > before, 'the change is stamped');
  assert.equal(await e.dumpCounts(), [2, 2, 2]);
});

test('entries that do not match a wanted lease exactly are not counted by the dump', async () => {
  // want[2] with the wrong MAC and its route through the wrong gateway; and a subnet no lease wants.
  program(2, { mac: '02:00:00:00:00:99', gateway: '10.160.9.9' });
  ip('route', 'replace', '10.161.0.0/24', 'via', '10.160.0.0', 'dev', 'weft.1', 'onlink');
  assert.is(e.poll(), 3, 'the monitor counts any route to a wanted subnet');
  assert.equal(await e.dumpCounts(), [2, 2, 2]);
});

test('a route change is stamped, a neighbour change is not (the dump sees it); deleted routes are uncounted', async () => {
  const before = e.lastChange;
  bridge('fdb', 'del', '02:00:00:00:00:99', 'dev', 'weft.1', 'dst', want[2]!.publicIp);
  program(2);
  e.poll();
  assert.ok(e.lastChange > before);
  assert.equal(await e.dumpCounts(), [3, 3, 3]);
  const mid = e.lastChange;
  ip('neigh', 'del', want[1]!.vtep, 'dev', 'weft.1');
  assert.is(e.poll(), 3);
  assert.is(e.lastChange, mid);
  assert.equal(await e.dumpCounts(), [2, 3, 3]);
  ip('route', 'del', want[0]!.subnet);
  assert.is(e.poll(), 2);
  assert.equal(await e.dumpCounts(), [2, 3, 2]);
  // A nexthop object deleted takes its routes along (the dump sees it).
  ip('nexthop', 'del', 'id', '101');
  assert.equal(await e.dumpCounts(), [2, 3, 1]);
});

test.run();
