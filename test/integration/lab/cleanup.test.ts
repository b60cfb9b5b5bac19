// A lab leaves nothing behind when the test fails: a throw inside withLab, a
// failed CNI ADD, a setup that fails half-way, a test process stopped by
// SIGTERM or SIGINT mid-test.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPidAlive, listNetns, waitPidGone } from '../../../lab/netns.js';
import { Lab, withLab } from '../../../lab/lab.js';
import { CniError } from '../../../lab/cni.js';
import { ping } from '../../../lab/ping.js';

const LAB_JS = fileURLToPath(new URL('../../../lab/lab.js', import.meta.url));

const isAlive = isPidAlive;

async function assertGone(id: string, dir: string, pids: number[]) {
  const left = (await listNetns()).filter((ns) => ns.startsWith(`${id}-`));
  assert.equal(left, [], `namespaces of ${id} left behind`);
  assert.not.ok(existsSync(dir), `${dir} left behind`);
  for (const pid of pids) assert.ok(await waitPidGone(pid), `pid ${pid} left running`);
}

test('a throw inside withLab propagates and leaves nothing behind', async () => {
  let seen: { id: string; dir: string; pids: number[] } | undefined;
  const boom = new Error('test failed on purpose');
  const err = await withLab({ hosts: 2, etcd: false, outsideHost: true }, async (lab: Lab) => {
    const c = await lab.addContainer(lab.hosts[0]!, { bridge: 'wtest0', subnet: '10.244.7.0/24', gateway: '10.244.7.1', mtu: 1500 });
    const p = lab.spawnIn(c.ns, 'sleep', ['600']);
    const q = lab.spawnIn(lab.outside!.ns, 'sh', ['-c', 'sleep 617 & sleep 617']); // a grandchild in the same group
    seen = { id: lab.id, dir: lab.dir, pids: [p.pid!, q.pid!] };
    assert.equal(lab.namespaces.map((ns) => ns.slice(lab.id.length + 1)), ['ul', 'h1', 'h2', 'out', 'h1c1']);
    assert.is(lab.outside!.ip, '192.0.2.250');
    const r = await ping(lab.outside!.ns, lab.hosts[1]!.underlayIp, { count: 1, intervalMs: 10 });
    assert.is(r.received, 1, r.output);
    await new Promise((r) => setTimeout(r, 100));
    throw boom;
  }).then(() => undefined, (e: unknown) => e);
  assert.is(err, boom);
  assert.ok(seen);
  await assertGone(seen!.id, seen!.dir, seen!.pids);
  const stray = spawnSync('pgrep', ['-f', '^sleep 617$'], { encoding: 'utf8' }).stdout.trim();
  assert.is(stray, '', 'the grandchild sleep was killed with its process group');
});

test('a failed CNI ADD is an error naming the plugin; the half-made container is still cleaned up', async () => {
  let seen: { id: string; dir: string } | undefined;
  await withLab({ hosts: 1, etcd: false }, async (lab) => {
    seen = { id: lab.id, dir: lab.dir };
    const err = await lab.addContainer(lab.hosts[0]!, { bridge: 'wtest0', subnet: '10.244.300.0/24', gateway: '10.244.3.1', mtu: 1500 })
      .then(() => undefined, (e: unknown) => e);
    assert.instance(err, CniError);
    assert.match((err as Error).message, /^CNI bridge ADD: /);
    assert.match((err as Error).message, /10\.244\.300\.0/);
    assert.not.ok(lab.namespaces.includes(`${lab.id}-h1c1`), 'namespace dropped after the failed ADD');
    assert.not.ok((await listNetns()).includes(`${lab.id}-h1c1`));
    assert.is(lab.containers.length, 0);
    // Another bridge: the plugin leaves the bridge of a failed ADD behind (DEL never removes bridges).
    const good = await lab.addContainer(lab.hosts[0]!, { bridge: 'wtest1', subnet: '10.244.3.0/24', gateway: '10.244.3.1', mtu: 1500 });
    assert.is(good.name, 'h1c2');
    assert.is(good.ip, '10.244.3.2');
  });
  await assertGone(seen!.id, seen!.dir, []);
});

test('Lab.create failing half-way (host 2 address rejected) removes what it made and reports the error', async () => {
  // A stand-in `ip` first on PATH: refuses to add host 2's underlay address, runs the real ip otherwise.
  const bin = mkdtempSync(join(tmpdir(), 'weft-fake-ip-'));
  const realIp = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(join(bin, 'ip'), `#!/bin/sh
case "$*" in *"addr add 192.0.2.12/24"*) echo "RTNETLINK answers: injected failure" >&2; exit 2;; esac
exec ${realIp} "$@"
`, { mode: 0o755 });
  const before = new Set(await listNetns());
  const savedPath = process.env['PATH'];
  process.env['PATH'] = `${bin}:${savedPath}`;
  let err: unknown;
  try {
    err = await Lab.create({ hosts: 3, etcd: false }).then(async (lab) => { await lab.destroy(); }, (e: unknown) => e);
  } finally {
    process.env['PATH'] = savedPath;
    rmSync(bin, { recursive: true, force: true });
  }
  assert.instance(err, Error);
  assert.match((err as Error).message, /addr add 192\.0\.2\.12\/24 dev eth0: exit 2: RTNETLINK answers: injected failure/);
  const after = await listNetns();
  assert.equal(after.filter((ns) => !before.has(ns) && /^wt[0-9a-z]{5}-/.test(ns)), [], 'namespaces of the failed lab');
  const dirs = readdirSync(tmpdir()).filter((d) => d.startsWith('weft-lab-'));
  const id = /ip -n (wt[0-9a-z]{5})-h2 /.exec((err as Error).message)?.[1];
  assert.ok(id, 'error names the namespace');
  assert.equal(dirs.filter((d) => d.startsWith(`weft-lab-${id}-`)), [], 'lab dir removed');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`a test process stopped by ${signal} removes its lab on the way out`, async () => {
    const script = `
      const { Lab } = await import(${JSON.stringify(LAB_JS)});
      const lab = await Lab.create({ hosts: 1, etcd: false });
      const p = lab.spawnIn(lab.hosts[0].ns, 'sleep', ['600']);
      console.log(JSON.stringify({ id: lab.id, dir: lab.dir, pid: p.pid }));
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]!); });
      child.on('exit', (code) => reject(new Error(`child exited ${code} before creating its lab`)));
    });
    const info = JSON.parse(line) as { id: string; dir: string; pid: number };
    assert.ok((await listNetns()).includes(`${info.id}-h1`));
    assert.ok(isAlive(info.pid));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill(signal);
    assert.is(await exited, signal === 'SIGTERM' ? 143 : 130);
    await assertGone(info.id, info.dir, [info.pid]);
  });
}

test.run();
