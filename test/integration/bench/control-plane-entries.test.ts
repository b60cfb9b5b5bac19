// The scale bench's entry counting (HostEntries): entries made with iproute2 in
// a throwaway namespace are counted from the monitor as they come and go, only
// exact matches of a wanted lease count, and the dump check agrees. Needs root.
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

test('nothing before; each wanted peer counted once its three entries exist', () => {
  assert.equal(e.poll(), [0, 0, 0]);
  program(0);
  program(1);
  assert.equal(e.poll(), [2, 2, 2]);
  assert.equal(e.dumpCounts(), [2, 2, 2]);
});

test('entries that do not match a wanted lease exactly do not count', () => {
  // want[2] with the wrong MAC and a route through another gateway; and a subnet no lease wants.
  program(2, { mac: '02:00:00:00:00:99', gateway: '10.160.9.9' });
  ip('route', 'replace', '10.161.0.0/24', 'via', '10.160.0.0', 'dev', 'weft.1', 'onlink');
  assert.equal(e.poll(), [2, 2, 2]);
  assert.equal(e.dumpCounts(), [2, 2, 2]);
});

test('fixing them counts them; deleting entries uncounts them', () => {
  bridge('fdb', 'del', '02:00:00:00:00:99', 'dev', 'weft.1', 'dst', want[2]!.publicIp);
  program(2);
  assert.equal(e.poll(), [3, 3, 3]);
  ip('route', 'del', want[0]!.subnet);
  ip('neigh', 'del', want[1]!.vtep, 'dev', 'weft.1');
  assert.equal(e.poll(), [2, 3, 2]);
  assert.equal(e.dumpCounts(), [2, 3, 2]);
  // A nexthop object deleted takes its routes along (the kernel sends no route notification for them).
  ip('nexthop', 'del', 'id', '101');
  assert.equal(e.poll(), [2, 3, 1]);
  assert.equal(e.dumpCounts(), [2, 3, 1]);
});

test('a rebuild from dumps (as after an overrun) finds the same', () => {
  e.recount();
  assert.equal(e.poll(), [2, 3, 1]);
});

test.run();
