// The lab itself: underlay, CNI containers, isolation without an overlay,
// etcd reachable from a host, and a teardown that leaves nothing behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, isPidAlive as isAlive, listNetns, waitPidGone } from '../../../lab/netns.js';
import { Lab, type LabContainer, type TrackedProcess } from '../../../lab/lab.js';
import { formatPingMatrix, ping, pingMatrix } from '../../../lab/ping.js';

const BRIDGE = 'wtest0';
const MTU = 1400;
const subnetOf = (i: number) => ({ subnet: `10.244.${i}.0/24`, gateway: `10.244.${i}.1` });

let lab: Lab;
let setupError: unknown;
let rootLinksBefore: string;
let sleeper: TrackedProcess;

const rootLinks = async () => (await exec('ip', ['-o', 'link', 'show'])).stdout.replace(/\\.*$/gm, '').split('\n').map((l) => l.split(':')[1]).sort().join(',');

test.before(async () => {
  rootLinksBefore = await rootLinks();
  try {
    lab = await Lab.create({ hosts: 2 });
  } catch (err) {
    setupError = err; // uvu drops errors thrown by hooks silently
  }
});

test.after(async () => {
  await lab?.destroy();
});

test('namespaces are named <id>-<role> and the root namespace gets no links', async () => {
  if (setupError) throw setupError;
  assert.match(lab.id, /^wt[0-9a-z]{5}$/);
  const roles = lab.namespaces.map((ns) => ns.slice(lab.id.length + 1)).sort();
  assert.equal(roles, ['etcd', 'h1', 'h2', 'ul']);
  const present = await listNetns();
  for (const ns of lab.namespaces) assert.ok(present.includes(ns), `${ns} missing from ip netns list`);
  assert.is(await rootLinks(), rootLinksBefore);
});

test('underlay: ul0 has one port per host and etcd; hosts have eth0, address and default route', async () => {
  const ports = await lab.ipJson<Array<{ ifname: string; mtu: number }>>(lab.ulNs, ['link', 'show', 'master', 'ul0']);
  assert.equal(ports.map((p) => p.ifname).sort(), ['u-etcd', 'u-h1', 'u-h2']);
  for (const h of lab.hosts) {
    const [addr] = await lab.ipJson<Array<{ addr_info: Array<{ family: string; local: string; prefixlen: number }> }>>(h.ns, ['addr', 'show', 'dev', 'eth0']);
    const v4 = addr!.addr_info.filter((a) => a.family === 'inet');
    assert.equal(v4.map((a) => `${a.local}/${a.prefixlen}`), [`192.0.2.${10 + h.index}/24`]);
    const routes = await lab.ipJson<Array<{ dst: string; gateway?: string; dev: string }>>(h.ns, ['route', 'show', 'default']);
    assert.equal(routes.map((r) => [r.gateway, r.dev]), [['192.0.2.1', 'eth0']]);
  }
});

test('hosts ping each other over the underlay', async () => {
  const [h1, h2] = lab.hosts;
  const a = await ping(h1!.ns, h2!.underlayIp, { count: 2, intervalMs: 50 });
  const b = await ping(h2!.ns, h1!.underlayIp, { count: 2, intervalMs: 50 });
  assert.is(a.received, 2, a.output);
  assert.is(b.received, 2, b.output);
  assert.ok(a.rtts.length === 2 && a.rtts.every((t) => t > 0));
});

test('etcd answers etcdctl from a host namespace at 192.0.2.2', async () => {
  assert.ok(lab.etcd, 'lab.etcd');
  assert.equal(lab.etcd!.labEndpoints, ['http://192.0.2.2:2379']);
  const r = await lab.execIn(lab.hosts[0]!.ns, 'etcdctl', ['--endpoints', 'http://192.0.2.2:2379', 'endpoint', 'health'], { timeoutMs: 10_000 });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /is healthy/);
});

const containers: LabContainer[] = [];

test('two containers per host via CNI: addresses from the host subnet, veths on the bridge', async () => {
  for (const h of lab.hosts) {
    for (let j = 0; j < 2; j++) containers.push(await lab.addContainer(h, { bridge: BRIDGE, ...subnetOf(h.index), mtu: MTU }));
  }
  assert.equal(containers.map((c) => c.name), ['h1c1', 'h1c2', 'h2c1', 'h2c2']);
  assert.equal(containers.map((c) => c.ns), ['h1c1', 'h1c2', 'h2c1', 'h2c2'].map((n) => `${lab.id}-${n}`));
  for (const c of containers) {
    assert.match(c.ip, new RegExp(`^10\\.244\\.${c.host.index}\\.\\d+$`));
    assert.is.not(c.ip, subnetOf(c.host.index).gateway);
    assert.match(c.cidr, /\/24$/);
    const [eth0] = await lab.ipJson<Array<{ mtu: number; addr_info: Array<{ family: string; local: string }> }>>(c.ns, ['addr', 'show', 'dev', 'eth0']);
    assert.is(eth0!.mtu, MTU);
    assert.ok(eth0!.addr_info.some((a) => a.family === 'inet' && a.local === c.ip), `${c.name} eth0 lacks ${c.ip}`);
  }
  assert.is(new Set(containers.map((c) => c.ip)).size, 4);
  for (const h of lab.hosts) {
    const veths = await lab.ipJson<Array<{ ifname: string; master: string; mtu: number }>>(h.ns, ['link', 'show', 'master', BRIDGE]);
    assert.is(veths.length, 2, JSON.stringify(veths));
    assert.ok(veths.every((v) => v.master === BRIDGE && v.mtu === MTU && v.ifname.startsWith('veth')));
    const [br] = await lab.ipJson<Array<{ addr_info: Array<{ family: string; local: string }> }>>(h.ns, ['addr', 'show', 'dev', BRIDGE]);
    assert.ok(br!.addr_info.some((a) => a.family === 'inet' && a.local === subnetOf(h.index).gateway), 'bridge has the gateway address');
  }
  // host-local keeps its state per host under the lab dir
  assert.ok(existsSync(join(lab.dir, 'ipam', 'h1', 'weft', containers[0]!.ip)));
  assert.ok(existsSync(join(lab.dir, 'ipam', 'h2', 'weft', containers[2]!.ip)));
});

test('same-host containers reach each other; other-host containers do not (no overlay yet)', async () => {
  const pairs = await pingMatrix(lab, containers);
  assert.is(pairs.length, 12);
  const table = formatPingMatrix(pairs);
  for (const p of pairs) {
    const sameHost = p.from.slice(0, 2) === p.to.slice(0, 2);
    if (sameHost) assert.is(p.result.received, p.result.sent, table);
    else assert.is(p.result.received, 0, table);
    assert.ok(p.result.sent >= 2, table);
  }
});

test('a container pings its bridge gateway', async () => {
  for (const c of [containers[0]!, containers[2]!]) {
    const r = await ping(c.ns, subnetOf(c.host.index).gateway, { count: 2, intervalMs: 50 });
    assert.is(r.received, 2, r.output);
    assert.is(r.lossPct, 0);
  }
});

test('removeContainer releases the address, the veth and the namespace', async () => {
  const c = containers.pop()!;
  await lab.removeContainer(c);
  assert.not.ok((await listNetns()).includes(c.ns));
  assert.not.ok(lab.namespaces.includes(c.ns));
  assert.not.ok(existsSync(join(lab.dir, 'ipam', c.host.name, 'weft', c.ip)));
  const veths = await lab.ipJson<unknown[]>(c.host.ns, ['link', 'show', 'master', BRIDGE]);
  assert.is(veths.length, 1);
});

test('destroy removes every namespace, tracked process and the lab dir; twice is fine', async () => {
  sleeper = lab.spawnIn(lab.hosts[0]!.ns, 'sleep', ['600']);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(sleeper.pid && isAlive(sleeper.pid), 'sleeper started');
  const made = [...lab.namespaces];
  const etcdPid = lab.etcdNs ? (await exec('ip', ['netns', 'pids', lab.etcdNs])).stdout.trim() : '';
  const ipamDir = join(lab.dir, 'ipam');
  assert.ok(existsSync(ipamDir));
  await lab.destroy();
  await lab.destroy();
  const present = await listNetns();
  assert.equal(made.filter((ns) => present.includes(ns)), []);
  assert.equal(present.filter((ns) => ns.startsWith(`${lab.id}-`)), []);
  assert.not.ok(isAlive(sleeper.pid!), 'sleeper killed');
  for (const pid of etcdPid.split('\n').filter(Boolean)) assert.ok(await waitPidGone(Number(pid)), `etcd pid ${pid} killed`);
  assert.not.ok(existsSync(ipamDir));
  assert.not.ok(existsSync(lab.dir));
  assert.is(lab.runningProcesses.length, 0);
  assert.throws(() => lab.spawnIn(lab.hosts[0]!.ns, 'true', []), /destroyed/);
});

test('etcdDataRoot: etcd keeps its data in a directory of its own there, removed with the lab', async () => {
  const root = mkdtempSync(join(tmpdir(), 'weft-test-etcd-root-'));
  try {
    const other = await Lab.create({ hosts: 1, etcdDataRoot: root });
    try {
      const pid = other.etcd!.members[0]!.pid!;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const dataDir = argv[argv.indexOf('--data-dir') + 1]!;
      assert.ok(dataDir.startsWith(`${root}/weft-etcd-`), dataDir);
      assert.ok(existsSync(join(dataDir, 'member', 'wal')), `${dataDir}/member/wal`);
    } finally {
      await other.destroy();
    }
    assert.equal(readdirSync(root), [], 'nothing left under the root');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
