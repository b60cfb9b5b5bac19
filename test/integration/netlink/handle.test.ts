// NetlinkHandle against a real kernel, inside throwaway namespaces, with
// iproute2 (ip -j / bridge -j) as the independent oracle. Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  IF_OPER_UNKNOWN, isNotFound, type Link, NetlinkError, NetlinkHandle, NetlinkMonitor, type Notification, routeRequest, RTPROT_BOOT,
} from '../../../netlink/index.js';
import { registerNetns } from '../../../lab/netns.js';
import { routeEventsFilter } from '../../../backend/route-events.js';

const NS = `wtnl${randomBytes(3).toString('hex')}-a`;
const PEER_NS = NS.replace(/-a$/, '-b');
const created: string[] = [];

function cleanup(): void {
  for (const ns of created.splice(0)) spawnSync('ip', ['netns', 'del', ns]);
}
process.on('exit', cleanup);

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function json(cmd: string, ...args: string[]): any[] {
  const out = sh(cmd, ...args).trim();
  return out ? JSON.parse(out) : [];
}
const ipj = (...args: string[]) => json('ip', '-n', NS, '-j', ...args);
const bridgej = (...args: string[]) => json('bridge', '-n', NS, '-j', ...args);

function expectNetlinkError(fn: () => unknown, code: string, op: RegExp): NetlinkError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, NetlinkError);
    const ne = e as NetlinkError;
    assert.is(ne.code, code, ne.message);
    assert.match(ne.op, op);
    assert.ok(ne.message.startsWith(`${ne.op}: `), ne.message);
    return ne;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

let h: NetlinkHandle;
let under: Link;
let vx: Link;
let br: Link;
const MAC = 'c6:d2:32:6f:8f:44';

test.before(() => {
  for (const ns of [NS, PEER_NS]) {
    registerNetns(ns); // so the test runner can remove it if this process dies
    sh('ip', 'netns', 'add', ns);
    created.push(ns);
  }
  h = NetlinkHandle.open({ netns: NS }); // bare name → /run/netns/NS
});

test.after(() => {
  h?.close();
  cleanup();
});

test('underlay: dummy if the kernel has it, else a veth pair; address and up', () => {
  try {
    under = h.linkAdd({ kind: 'dummy', name: 'u0' });
  } catch (e) {
    // CONFIG_DUMMY=n: the kernel says so through ext-ack.
    const ne = e as NetlinkError;
    assert.is(ne.code, 'EOPNOTSUPP');
    assert.is(ne.extAck, 'Unknown device type');
    under = h.linkAdd({ kind: 'veth', name: 'u0', peerName: 'u1' });
    h.linkSetUp(h.linkByName('u1')!.index);
  }
  h.addrAdd({ index: under.index, address: '192.0.2.11', prefixLen: 24, broadcast: '192.0.2.255' });
  h.linkSetUp(under.index);
  const [oracle] = ipj('addr', 'show', 'dev', 'u0');
  assert.is(oracle.ifindex, under.index);
  assert.ok(oracle.flags.includes('UP'));
  const v4 = oracle.addr_info.filter((a: { family: string }) => a.family === 'inet');
  assert.equal(v4.map((a: { local: string; prefixlen: number; broadcast: string }) => [a.local, a.prefixlen, a.broadcast]), [['192.0.2.11', 24, '192.0.2.255']]);
  assert.equal(h.addrList({ index: under.index, family: 4 }).map((a) => [a.address, a.prefixLen, a.broadcast]), [['192.0.2.11', 24, '192.0.2.255']]);
});

test('vxlan: ip link add weft.1 type vxlan id 1 dstport 8472 nolearning local 192.0.2.11 dev u0', () => {
  vx = h.linkAdd({ kind: 'vxlan', name: 'weft.1', vni: 1, port: 8472, local: '192.0.2.11', linkIndex: under.index, mtu: 1450, mac: '02:42:0a:f4:01:00' });
  assert.is(vx.name, 'weft.1');
  assert.is(vx.kind, 'vxlan');
  assert.is(vx.mtu, 1450);
  assert.is(vx.mac, '02:42:0a:f4:01:00');
  assert.equal([vx.vxlan?.id, vx.vxlan?.port, vx.vxlan?.local, vx.vxlan?.linkIndex, vx.vxlan?.learning], [1, 8472, '192.0.2.11', under.index, false]);
  const [o] = ipj('-d', 'link', 'show', 'dev', 'weft.1');
  assert.is(o.ifindex, vx.index);
  assert.is(o.mtu, 1450);
  assert.is(o.address, '02:42:0a:f4:01:00');
  assert.is(o.linkinfo.info_kind, 'vxlan');
  const d = o.linkinfo.info_data;
  assert.equal([d.id, d.port, d.local, d.link, d.learning], [1, 8472, '192.0.2.11', 'u0', false]);
  h.linkSetUp(vx.index);
  const again = h.linkByIndex(vx.index)!;
  assert.is(again.up, true);
  assert.is(again.operState, IF_OPER_UNKNOWN); // vxlan reports UNKNOWN like iproute2 shows
  assert.is(ipj('link', 'show', 'dev', 'weft.1')[0].operstate, 'UNKNOWN');
});

test('adding an existing link with EXCL → EEXIST naming the op', () => {
  const e = expectNetlinkError(() => h.linkAdd({ kind: 'vxlan', name: 'weft.1', vni: 1, port: 8472 }), 'EEXIST', /^link add weft\.1 type vxlan id 1 dstport 8472 nolearning$/);
  assert.match(e.message, /: File exists \(EEXIST\)/);
  assert.is(e.errno, 17);
  assert.is(e.retryable, false);
  assert.not.ok(isNotFound(e));
});

test('bridge + veth: master, mtu, hw address, up/down', () => {
  br = h.linkAdd({ kind: 'bridge', name: 'cni0', mtu: 1450 });
  const ve = h.linkAdd({ kind: 'veth', name: 've0', peerName: 've1' });
  h.linkSetMaster(ve.index, br.index);
  h.linkSetMtu(ve.index, 1400);
  h.linkSetHwAddr(ve.index, '02:00:00:00:00:01');
  h.linkSetUp(br.index);
  h.linkSetUp(ve.index);
  let [o] = ipj('link', 'show', 'dev', 've0');
  assert.equal([o.master, o.mtu, o.address, o.flags.includes('UP')], ['cni0', 1400, '02:00:00:00:00:01', true]);
  const l = h.linkByName('ve0')!;
  assert.equal([l.masterIndex, l.mtu, l.mac, l.up, l.kind, l.linkIndex], [br.index, 1400, '02:00:00:00:00:01', true, 'veth', h.linkByName('ve1')!.index]);
  h.linkSetDown(ve.index);
  h.linkSetMaster(ve.index, 0);
  [o] = ipj('link', 'show', 'dev', 've0');
  assert.is(o.master, undefined);
  assert.not.ok(o.flags.includes('UP'));
  assert.is(h.linkByName('cni0')!.kind, 'bridge');
});

test('linkList agrees with ip -d link show', () => {
  const mine = h.linkList();
  const theirs = ipj('-d', 'link', 'show');
  assert.equal(mine.map((l) => [l.index, l.name, l.mtu, l.mac]), theirs.map((o) => [o.ifindex, o.ifname, o.mtu, o.address]));
  assert.equal(mine.map((l) => l.kind), theirs.map((o) => o.linkinfo?.info_kind));
});

test('veth peer created directly in another namespace (peerNetns)', () => {
  const l = h.linkAdd({ kind: 'veth', name: 'h1-c1', peerName: 'eth0', peerNetns: PEER_NS });
  assert.is(l.kind, 'veth');
  assert.is(h.linkByName('eth0'), undefined);
  const [peer] = json('ip', '-n', PEER_NS, '-j', 'link', 'show', 'dev', 'eth0');
  assert.is(peer.ifname, 'eth0');
  const p = NetlinkHandle.open({ netns: `/run/netns/${PEER_NS}` });
  try {
    assert.is(p.linkByName('eth0')?.kind, 'veth');
  } finally {
    p.close();
  }
  h.linkDel('h1-c1');
  assert.is(h.linkByName('h1-c1'), undefined);
});

test('addresses: add, replace, duplicate add, list vs ip -j addr, delete, delete again', () => {
  const a = { index: vx.index, address: '10.244.1.0', prefixLen: 32 };
  h.addrAdd(a);
  h.addrReplace(a);
  expectNetlinkError(() => h.addrAdd(a), 'EEXIST', /^addr add 10\.244\.1\.0\/32 dev \d+$/);
  h.addrAdd({ index: br.index, address: '10.244.1.1', prefixLen: 24 });
  const theirs = ipj('-4', 'addr', 'show').flatMap((o) => o.addr_info.map((x: { local: string; prefixlen: number }) => [o.ifindex, x.local, x.prefixlen]));
  const mine = h.addrList({ family: 4 }).map((x) => [x.index, x.address, x.prefixLen]);
  assert.equal(mine, theirs);
  assert.ok(mine.some(([i, ip]) => i === vx.index && ip === '10.244.1.0'));
  h.addrDel({ index: br.index, address: '10.244.1.1', prefixLen: 24 });
  assert.equal(h.addrList({ index: br.index, family: 4 }), []);
  const e = expectNetlinkError(() => h.addrDel({ index: br.index, address: '10.244.1.1', prefixLen: 24 }), 'EADDRNOTAVAIL', /^addr del /);
  assert.ok(isNotFound(e));
});

test('vxlan peer: neigh replace, fdb append, onlink route replace — checked with iproute2', () => {
  h.neighReplace({ index: vx.index, ip: '10.244.3.0', mac: MAC });
  h.neighReplace({ index: vx.index, ip: '10.244.3.0', mac: MAC }); // idempotent
  h.fdbAppend({ index: vx.index, mac: MAC, dst: '192.0.2.12' });
  h.fdbAppend({ index: vx.index, mac: '00:00:00:00:00:00', dst: '192.0.2.13' });
  h.fdbAppend({ index: vx.index, mac: '00:00:00:00:00:00', dst: '192.0.2.14' });
  h.routeReplace({ dst: '10.244.3.0/24', gateway: '10.244.3.0', index: vx.index, onlink: true });
  h.routeReplace({ dst: '10.244.3.0/24', gateway: '10.244.3.0', index: vx.index, onlink: true }); // replace is idempotent
  h.routeAdd({ dst: '10.244.4.0/24', gateway: '10.244.4.0', index: vx.index, onlink: true, metric: 10 });

  const neigh = ipj('neigh', 'show', 'dev', 'weft.1').filter((n) => n.dst === '10.244.3.0');
  assert.equal(neigh.map((n) => [n.dst, n.lladdr, n.state]), [['10.244.3.0', MAC, ['PERMANENT']]]);
  const fdb = bridgej('fdb', 'show', 'dev', 'weft.1');
  assert.equal(
    fdb.map((f) => [f.mac, f.dst, f.flags, f.state]).sort(),
    [['00:00:00:00:00:00', '192.0.2.13', ['self'], 'permanent'], ['00:00:00:00:00:00', '192.0.2.14', ['self'], 'permanent'], [MAC, '192.0.2.12', ['self'], 'permanent']].sort(),
  );
  const routes = ipj('-d', 'route', 'show', 'dev', 'weft.1');
  assert.equal(routes.map((r) => [r.dst, r.gateway, r.flags, r.protocol, r.metric]), [
    ['10.244.3.0/24', '10.244.3.0', ['onlink'], 'boot', undefined],
    ['10.244.4.0/24', '10.244.4.0', ['onlink'], 'boot', 10],
  ]);

  // The handle's view agrees with iproute2's.
  const myNeigh = h.neighList({ index: vx.index, family: 4 });
  assert.equal(myNeigh.map((n) => [n.ip, n.mac, n.state]), ipj('-4', 'neigh', 'show', 'dev', 'weft.1').map((n) => [n.dst, n.lladdr, 0x80]));
  const myFdb = h.fdbList({ index: vx.index });
  assert.equal(myFdb.map((f) => [f.mac, f.dst, f.self]).sort(), fdb.map((f) => [f.mac, f.dst, true]).sort());
  const myRoutes = h.routeList({ index: vx.index, family: 4 });
  assert.equal(myRoutes.map((r) => [r.dst, r.gateway, r.onlink, r.protocol, r.metric]), [
    ['10.244.3.0/24', '10.244.3.0', true, RTPROT_BOOT, undefined],
    ['10.244.4.0/24', '10.244.4.0', true, RTPROT_BOOT, 10],
  ]);
  expectNetlinkError(() => h.routeAdd({ dst: '10.244.4.0/24', gateway: '10.244.4.0', index: vx.index, onlink: true, metric: 10 }), 'EEXIST', /^route add 10\.244\.4\.0\/24 via 10\.244\.4\.0 dev \d+ metric 10 onlink$/);
});

test('vxlan peer removal in reverse order; deleting again is not-found', () => {
  h.routeDel({ dst: '10.244.3.0/24', gateway: '10.244.3.0', index: vx.index, onlink: true });
  h.routeDel({ dst: '10.244.4.0/24', index: vx.index, metric: 10 });
  h.fdbDel({ index: vx.index, mac: MAC, dst: '192.0.2.12' });
  h.fdbDel({ index: vx.index, mac: '00:00:00:00:00:00', dst: '192.0.2.13' });
  h.neighDel({ index: vx.index, ip: '10.244.3.0', mac: MAC });
  assert.equal(ipj('route', 'show', 'dev', 'weft.1'), []);
  assert.equal(bridgej('fdb', 'show', 'dev', 'weft.1').map((f) => f.dst), ['192.0.2.14']);
  assert.equal(ipj('neigh', 'show', 'dev', 'weft.1').filter((n) => n.dst === '10.244.3.0'), []);
  assert.equal(h.routeList({ index: vx.index, family: 4 }), []);
  assert.equal(h.neighList({ index: vx.index, family: 4 }), []);

  const r = expectNetlinkError(() => h.routeDel({ dst: '10.244.3.0/24', gateway: '10.244.3.0', index: vx.index, onlink: true }), 'ESRCH',
    new RegExp(`^route del 10\\.244\\.3\\.0/24 via 10\\.244\\.3\\.0 dev ${vx.index} onlink$`));
  assert.ok(isNotFound(r));
  assert.ok(isNotFound(expectNetlinkError(() => h.fdbDel({ index: vx.index, mac: MAC, dst: '192.0.2.12' }), 'ENOENT', /^fdb del /)));
  assert.ok(isNotFound(expectNetlinkError(() => h.neighDel({ index: vx.index, ip: '10.244.3.0' }), 'ENOENT', /^neigh del /)));
  assert.ok(isNotFound(expectNetlinkError(() => h.linkDel('nosuch0'), 'ENODEV', /^link del nosuch0$/)));
  assert.is(h.linkByName('nosuch0'), undefined);
  assert.is(h.linkByIndex(99999), undefined);
});

test('kernel ext-ack text reaches the error', () => {
  // A /24 route whose address has host bits set: the kernel explains why.
  const e = expectNetlinkError(() => h.routeAdd({ dst: '10.244.5.1/24', index: vx.index }), 'EINVAL', /^route add 10\.244\.5\.1\/24 dev \d+$/);
  assert.ok(e.extAck && e.extAck.length > 0, 'ext-ack message present');
  assert.ok(e.message.endsWith(`: ${e.extAck}`), e.message);
});

test('NetlinkMonitor sees a link created and deleted', () => {
  const mon = NetlinkMonitor.open({ netns: NS });
  try {
    assert.equal(mon.poll(), []);
    const l = h.linkAdd({ kind: 'bridge', name: 'mon0' });
    h.linkDel(l.index);
    const seen: Notification[] = [];
    const until = Date.now() + 2000;
    while (Date.now() < until && !seen.some((n) => n.kind === 'link' && n.action === 'del')) seen.push(...mon.poll(100));
    const mine = seen.filter((n) => n.kind === 'link' && n.link.index === l.index);
    assert.ok(mine.some((n) => n.kind === 'link' && n.action === 'new' && n.link.name === 'mon0' && n.link.kind === 'bridge'), JSON.stringify(seen));
    assert.ok(mine.some((n) => n.kind === 'link' && n.action === 'del' && n.link.name === 'mon0'), JSON.stringify(seen));
  } finally {
    mon.close();
  }
});

test('a filtered NetlinkMonitor (routeEventsFilter): the kernel never queues our own route additions; foreign ones and every deletion arrive', () => {
  const all = NetlinkMonitor.open({ netns: NS });
  const mon = NetlinkMonitor.open({ netns: NS, filter: routeEventsFilter(87, true) });
  try {
    const l = h.linkAdd({ kind: 'bridge', name: 'flt0' });
    h.linkSetUp(l.index);
    sh('ip', '-n', NS, 'route', 'add', '10.99.1.0/24', 'dev', 'flt0', 'proto', '87');
    sh('ip', '-n', NS, 'route', 'add', '10.99.2.0/24', 'dev', 'flt0', 'proto', 'static');
    sh('ip', '-n', NS, 'route', 'del', '10.99.1.0/24', 'dev', 'flt0', 'proto', '87');
    h.linkDel(l.index);
    const collect = (m: NetlinkMonitor): Notification[] => {
      const seen: Notification[] = [];
      const until = Date.now() + 2000;
      while (Date.now() < until && !seen.some((n) => n.kind === 'link' && n.action === 'del')) seen.push(...m.poll(100));
      return seen;
    };
    const show = (ns: Notification[]) => ns.flatMap((n) =>
      n.kind === 'route' && n.route.dst?.startsWith('10.99.') ? [`route ${n.action} ${n.route.dst} proto ${n.route.protocol}`]
        : n.kind === 'link' && n.link.index === l.index ? [`link ${n.action}`] : []);
    const everything = show(collect(all));
    for (const want of ['link new', 'route new 10.99.1.0/24 proto 87', 'route new 10.99.2.0/24 proto 4', 'route del 10.99.1.0/24 proto 87', 'link del']) {
      assert.ok(everything.includes(want), `unfiltered: ${want} in ${everything.join('; ')}`);
    }
    assert.equal(show(collect(mon)), ['route new 10.99.2.0/24 proto 4', 'route del 10.99.1.0/24 proto 87', 'link del']);
  } finally {
    all.close();
    mon.close();
  }
});

test('batch on the kernel: a request that fails in the middle of a sendmsg gets its own error, the others are in place (only the last asked for an ACK)', async () => {
  const l = h.linkAdd({ kind: 'bridge', name: 'bat0' });
  h.linkSetUp(l.index);
  try {
    const reqs = Array.from({ length: 40 }, (_, i) => routeRequest('replace', { dst: `10.98.${i}.0/24`, index: i === 17 ? 0x7ffffff0 : l.index, protocol: 87 }));
    const errs = await h.batch(reqs);
    assert.equal(errs.map((e, i) => (e ? `${i} ${e.code}` : '')).filter(Boolean), ['17 ENODEV']);
    assert.match(errs[17]!.op, /^route replace 10\.98\.17\.0\/24/);
    const got = ipj('-4', 'route', 'show', 'proto', '87').map((r) => r.dst).sort();
    assert.equal(got, reqs.map((_, i) => `10.98.${i}.0/24`).filter((d) => d !== '10.98.17.0/24').sort());
  } finally {
    h.linkDel(l.index);
  }
});

test('linkDel removes the vxlan; ip agrees', () => {
  h.linkDel('weft.1');
  assert.is(h.linkByName('weft.1'), undefined);
  const r = spawnSync('ip', ['-n', NS, 'link', 'show', 'dev', 'weft.1'], { encoding: 'utf8' });
  assert.is.not(r.status, 0);
});

test.run();
