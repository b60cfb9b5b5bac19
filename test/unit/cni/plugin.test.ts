// The plugin binary (dist/cmd/weft-cni.js) run as a runtime runs it, with a
// stand-in `bridge` delegate in CNI_PATH (a shell script that records what it
// was given and answers as told): ADD/DEL/CHECK/VERSION/STATUS, the saved
// config, the waiting for subnet.env and each error's code. The real bridge
// and host-local plugins are exercised as root in test/integration/cni/.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PLUGIN = fileURLToPath(new URL('../../../cmd/weft-cni.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'weft-cni-unit-'));
const bin = join(dir, 'bin');
const subnetFile = join(dir, 'subnet.env');
const dataDir = join(dir, 'flannel');
const RESULT = '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],"ips":[{"address":"10.244.3.2/24","gateway":"10.244.3.1","interface":0}],"routes":[{"dst":"10.244.0.0/16"}]}';

mkdirSync(bin);
// The stand-in delegate: appends "<command> <stdin>" to calls.log; FAKE_FAIL=1 makes it fail with an error object.
writeFileSync(join(bin, 'bridge'), `#!/bin/sh
in=$(cat)
printf '%s %s\\n' "$CNI_COMMAND" "$in" >> ${join(dir, 'calls.log')}
if [ -f ${join(dir, 'fail')} ]; then echo '{"code":999,"msg":"stand-in failure"}'; exit 1; fi
[ "$CNI_COMMAND" = ADD ] && echo '${RESULT}'
exit 0
`, { mode: 0o755 });

const V4 = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

function conf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name: 'weft', type: 'flannel', subnetFile, dataDir, ...extra });
}

interface Run { status: number | null; stdout: string; stderr: string; ms: number }
function plugin(command: string | undefined, stdin: string, env: Record<string, string> = {}): Promise<Run> {
  const start = Date.now();
  const e: Record<string, string> = { PATH: process.env.PATH ?? '', CNI_CONTAINERID: 'ctr1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: bin, ...env };
  if (command) e.CNI_COMMAND = command;
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [PLUGIN], { env: e });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => { stdout += d; });
    c.stderr.on('data', (d) => { stderr += d; });
    c.stdin.end(stdin);
    c.on('close', (status) => resolve({ status, stdout, stderr, ms: Date.now() - start }));
  });
}

const calls = () => (existsSync(join(dir, 'calls.log')) ? readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n') : []);
const errorOf = (r: Run) => JSON.parse(r.stdout) as { code: number; msg: string; details?: string; cniVersion?: string };

test.before.each(() => {
  rmSync(join(dir, 'calls.log'), { force: true });
  rmSync(join(dir, 'fail'), { force: true });
  writeFileSync(subnetFile, V4);
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('ADD: delegate config saved 0600 under dataDir by container ID, delegate run with it, its result printed unchanged', async () => {
  const r = await plugin('ADD', conf());
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is(r.stdout.trim(), RESULT);
  const saved = join(dataDir, 'ctr1');
  const text = readFileSync(saved, 'utf8');
  assert.is(text, '{"cniVersion":"1.0.0","ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.3.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"weft","type":"bridge"}');
  assert.is(statSync(saved).mode & 0o777, 0o600);
  assert.is(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal(calls(), [`ADD ${text}`]);
});

test('DEL: the saved config is used (not the current subnet.env), then removed; a second DEL does nothing', async () => {
  await plugin('ADD', conf());
  const saved = readFileSync(join(dataDir, 'ctr1'), 'utf8');
  writeFileSync(subnetFile, V4.replace('10.244.3.1/24', '10.244.9.1/24'));
  const r = await plugin('DEL', conf(), { CNI_NETNS: '' });
  assert.is(r.status, 0, r.stdout);
  assert.is(r.stdout, '');
  assert.equal(calls().slice(1), [`DEL ${saved}`]);
  assert.not.ok(existsSync(join(dataDir, 'ctr1')));
  const again = await plugin('DEL', conf());
  assert.equal([again.status, again.stdout], [0, '']);
  assert.is(calls().length, 2, 'the delegate is not called for a container it never saw');
});

test('DEL of a container never added: success, no output, no delegate call', async () => {
  const r = await plugin('DEL', conf(), { CNI_CONTAINERID: 'never-added' });
  assert.equal([r.status, r.stdout, calls()], [0, '', []]);
});

test('a failing delegate: its error object passes through; after a failed DEL the saved config stays for the retry', async () => {
  writeFileSync(join(dir, 'fail'), '');
  const add = await plugin('ADD', conf());
  assert.is(add.status, 1);
  assert.equal(errorOf(add), { cniVersion: '1.0.0', code: 999, msg: 'stand-in failure' });
  const del = await plugin('DEL', conf());
  assert.is(del.status, 1);
  assert.ok(existsSync(join(dataDir, 'ctr1')), 'kept so that the retry can free the address');
  rmSync(join(dir, 'fail'));
  assert.is((await plugin('DEL', conf())).status, 0);
  assert.not.ok(existsSync(join(dataDir, 'ctr1')));
});

test('CHECK: delegated with prevResult (network routes given the gateway); unknown container is 3; before 0.4.0 it is 1', async () => {
  await plugin('ADD', conf());
  const r = await plugin('CHECK', conf({ prevResult: JSON.parse(RESULT) }));
  assert.is(r.status, 0, r.stdout);
  const sent = JSON.parse(calls()[1]!.slice('CHECK '.length));
  assert.equal(sent.prevResult.routes, [{ dst: '10.244.0.0/16', gw: '10.244.3.1' }]);
  assert.is(sent.type, 'bridge');
  const unknown = await plugin('CHECK', conf({ prevResult: JSON.parse(RESULT) }), { CNI_CONTAINERID: 'other' });
  assert.equal([unknown.status, errorOf(unknown).code], [1, 3]);
  const old = await plugin('CHECK', conf({ cniVersion: '0.3.1' }));
  assert.equal([errorOf(old).code, errorOf(old).msg], [1, 'config version does not allow CHECK']);
  await plugin('DEL', conf());
});

test('VERSION: the supported versions, echoing the config\'s cniVersion; no CNI_COMMAND: what the plugin is, exit 0', async () => {
  const r = await plugin('VERSION', '{"cniVersion":"0.4.0"}', { CNI_CONTAINERID: '', CNI_IFNAME: '', CNI_PATH: '' });
  assert.is(r.status, 0);
  assert.equal(JSON.parse(r.stdout), { cniVersion: '0.4.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  const bare = await plugin(undefined, '');
  assert.is(bare.status, 0);
  assert.match(bare.stderr, /^CNI Plugin weft version .*\nCNI protocol versions supported: 0\.1\.0, /);
});

test('malformed stdin is code 6, a missing variable code 4, each as an error object on stdout', async () => {
  const r = await plugin('ADD', '{"name": "weft", ');
  assert.is(r.status, 1);
  assert.is(errorOf(r).code, 6);
  assert.match(errorOf(r).msg, /^error unmarshall network config: /);
  const env = await plugin('ADD', conf(), { CNI_IFNAME: '' });
  assert.equal(errorOf(env), { code: 4, msg: 'required env variables [CNI_IFNAME] missing' });
  assert.equal(calls(), []);
});

test('subnet.env missing: ADD waits subnetFileTimeout, then code 11 "weftd is not ready"; STATUS answers 50 at once', async () => {
  rmSync(subnetFile);
  const r = await plugin('ADD', conf({ subnetFileTimeout: 0.5 }));
  assert.is(r.status, 1);
  const e = errorOf(r);
  assert.is(e.code, 11);
  assert.is(e.msg, `weftd is not ready: ${subnetFile} does not exist after waiting 0.5 s`);
  assert.match(e.details!, /systemctl status weftd/);
  assert.ok(r.ms >= 500, `waited ${r.ms} ms`);
  assert.equal(calls(), [], 'nothing delegated');
  const s = await plugin('STATUS', conf(), { CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '' });
  assert.equal([s.status, errorOf(s).code], [1, 50]);
});

test('subnet.env written while ADD waits: ADD goes ahead', async () => {
  rmSync(subnetFile);
  const pending = plugin('ADD', conf({ subnetFileTimeout: 5 }));
  await new Promise((r) => setTimeout(r, 300));
  writeFileSync(subnetFile, V4);
  const r = await pending;
  assert.is(r.status, 0, r.stdout);
  await plugin('DEL', conf());
});

test('subnet.env incomplete is code 100 naming the missing keys, at once; a delegate not in CNI_PATH is 101', async () => {
  writeFileSync(subnetFile, 'FLANNEL_SUBNET=10.244.3.1/24\n');
  const r = await plugin('ADD', conf());
  assert.equal(errorOf(r).code, 100);
  assert.match(errorOf(r).msg, /is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_MTU, FLANNEL_IPMASQ$/);
  writeFileSync(subnetFile, V4);
  const none = await plugin('ADD', conf(), { CNI_PATH: join(dir, 'empty') });
  assert.equal(errorOf(none).code, 101);
  assert.match(errorOf(none).msg, /failed to find plugin "bridge" in path/);
  rmSync(join(dataDir, 'ctr1'), { force: true });
});

test.run();
