// etcd authentication: with auth enabled, the right user and password work;
// a wrong password stops weftd at once with a message that says so.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { Lab } from '../../../lab/lab.js';
import { PREFIX, waitReady, WEFTD, type LabAgent } from '../../../lab/agent.js';

let lab: Lab;
const URL = 'http://192.0.2.2:2379';

const etcdctl = (args: string[]) =>
  lab.execIn(lab.etcdNs!, 'etcdctl', ['--endpoints', URL, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });

function agent(extra: string[], name: string): LabAgent {
  const host = lab.host(1);
  const args = [WEFTD, '--etcd-endpoints', URL, '--subnet-file', join(host.dir, 'subnet.env'), '--state-dir', join(host.dir, 'state'), '--log-level', 'info', ...extra];
  return { host, proc: lab.spawnIn(host.ns, process.execPath, args, { logName: name }), subnetFile: join(host.dir, 'subnet.env'), args };
}

test.before(async () => {
  lab = await Lab.create({ hosts: 1 });
  for (const args of [
    ['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16' })],
    ['user', 'add', 'root:rootpw'],
    ['user', 'add', 'weft:weftpw'],
    ['role', 'add', 'weft'],
    ['role', 'grant-permission', 'weft', '--prefix=true', 'readwrite', `${PREFIX}/`],
    ['user', 'grant-role', 'weft', 'weft'],
    ['auth', 'enable'],
  ]) {
    const r = await etcdctl(args);
    assert.is(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
  }
});

test.after(async () => {
  await lab?.destroy();
});

test('with the right user and password weftd leases a subnet', async () => {
  const a = agent(['--etcd-username', 'weft', '--etcd-password', 'weftpw'], 'weftd-auth-good');
  const r = await waitReady(lab, a);
  assert.match(r.subnet, /^10\.244\.\d+\.0\/24$/);
  await lab.stop(a.proc);
});

test('a wrong password exits 2 at once, saying authentication failed', async () => {
  const a = agent(['--etcd-username', 'weft', '--etcd-password', 'nope'], 'weftd-auth-bad');
  const t0 = Date.now();
  const r = await Promise.race([a.proc.exited, new Promise<null>((res) => setTimeout(() => res(null), 15_000))]);
  const log = lab.readLog(a.proc);
  assert.ok(r, `weftd kept running with a wrong password:\n${log.slice(-1500)}`);
  console.log(`  wrong password -> exit ${r!.code} after ${Date.now() - t0} ms`);
  assert.is(r!.code, 2);
  assert.match(log, /weftd: .*authentication failed/i);
});

test('no credentials against an etcd with auth: exits 2 naming the permission problem', async () => {
  const a = agent([], 'weftd-auth-none');
  const r = await Promise.race([a.proc.exited, new Promise<null>((res) => setTimeout(() => res(null), 15_000))]);
  const log = lab.readLog(a.proc);
  assert.ok(r, `weftd kept running without credentials:\n${log.slice(-1500)}`);
  assert.is(r!.code, 2);
  assert.match(log, /weftd: .*(permission denied|user name is empty|authentication)/i);
});

test.run();
