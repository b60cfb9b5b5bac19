// weft's CNI plugin, installed as `flannel` by `weft install-cni` into a
// lab-local plugin directory, against the CNI spec's conventions with the real
// bridge and host-local delegates: ADD, ADD twice, CHECK, DEL, DEL again, DEL
// of an unknown container, VERSION, malformed stdin, a missing subnet.env.
// After each: what is on the bridge (iproute2) and what host-local's store
// holds, so a leaked veth or address fails the test.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WEFT } from '../../../lab/agent.js';
import { cniExec, installWeftPlugin, type CniInvocation } from '../../../lab/cni.js';
import { Lab } from '../../../lab/lab.js';
import { NETNS_DIR } from '../../../lab/netns.js';

let lab: Lab;
let host: string;
let cniPath: readonly string[];
let dir: string;
const NETWORK = 'weftspec';

test.before(async () => {
  lab = await Lab.create({ hosts: 1, etcd: false });
  host = lab.hosts[0]!.ns;
  dir = lab.hosts[0]!.dir;
  cniPath = await installWeftPlugin(WEFT, join(lab.dir, 'cni-bin'));
  writeFileSync(join(dir, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
});
test.after(async () => {
  await lab?.destroy();
});

function conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: '1.0.0', name: NETWORK, type: 'flannel',
    subnetFile: join(dir, 'subnet.env'), dataDir: join(dir, 'flannel'), subnetFileTimeout: 1,
    ipam: { dataDir: join(dir, 'ipam') }, delegate: { bridge: 'cni0' },
    ...extra,
  };
}

async function container(name: string, c: Record<string, unknown> = conf()): Promise<CniInvocation> {
  const ns = await lab.addNamespace(name);
  return { hostNs: host, netnsPath: `${NETNS_DIR}/${ns}`, containerId: `ctr-${name}`, ifName: 'eth0', conf: c, cniPath };
}

/** host-local's reservations: address -> container ID. */
function reserved(): Map<string, string> {
  const d = join(dir, 'ipam', NETWORK);
  if (!existsSync(d)) return new Map();
  return new Map(readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).map((f) => [f, readFileSync(join(d, f), 'utf8').split(/\r?\n/)[0]!]));
}

async function bridgePorts(): Promise<string[]> {
  const links = await lab.ipJson<Array<{ ifname: string }>>(host, ['link', 'show', 'master', 'cni0']).catch(() => []);
  return links.map((l) => l.ifname);
}

async function addrOf(inv: CniInvocation): Promise<string[]> {
  const ns = inv.netnsPath.split('/').pop()!;
  const a = await lab.ipJson<Array<{ addr_info: Array<{ local: string; prefixlen: number; family: string }> }>>(ns, ['addr', 'show', 'dev', 'eth0']).catch(() => []);
  return a.flatMap((x) => x.addr_info.filter((i) => i.family === 'inet').map((i) => `${i.local}/${i.prefixlen}`));
}

const errorOf = (stdout: string) => JSON.parse(stdout) as { code: number; msg: string; details?: string };

test('ADD: eth0 with an address of the subnet, one veth on the bridge, one reservation; then CHECK with prevResult passes', async () => {
  const c = await container('a');
  const r = await cniExec('ADD', c);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const result = JSON.parse(r.stdout);
  const addr = result.ips[0].address as string;
  assert.match(addr, /^10\.244\.3\.\d+\/24$/);
  assert.equal(await addrOf(c), [addr]);
  assert.is((await bridgePorts()).length, 1);
  assert.equal([...reserved()].filter(([, id]) => id === 'ctr-a').map(([ip]) => ip), [addr.split('/')[0]]);
  const routes = await lab.ipJson<Array<{ dst: string; gateway?: string }>>(c.netnsPath.split('/').pop()!, ['route', 'show']);
  assert.ok(routes.some((x) => x.dst === '10.244.0.0/16' && x.gateway === '10.244.3.1'), JSON.stringify(routes));
  const check = await cniExec('CHECK', { ...c, conf: { ...conf(), prevResult: result } });
  assert.equal([check.code, check.stdout], [0, ''], check.stdout + check.stderr);

  // ADD again for the same container and interface: an error object, and nothing of the first attachment changes or leaks.
  const twice = await cniExec('ADD', c);
  assert.is(twice.code, 1);
  const e = errorOf(twice.stdout);
  assert.type(e.code, 'number');
  assert.match(e.msg, /already exists/);
  assert.equal(await addrOf(c), [addr]);
  assert.is((await bridgePorts()).length, 1);
  assert.is([...reserved().values()].filter((id) => id === 'ctr-a').length, 1);

  // CHECK notices a missing interface.
  await lab.execIn(c.netnsPath.split('/').pop()!, 'ip', ['link', 'set', 'eth0', 'name', 'gone0']);
  const broken = await cniExec('CHECK', { ...c, conf: { ...conf(), prevResult: result } });
  assert.is(broken.code, 1, broken.stdout);
  assert.match(errorOf(broken.stdout).msg, /eth0/);
  await lab.execIn(c.netnsPath.split('/').pop()!, 'ip', ['link', 'set', 'gone0', 'name', 'eth0']);

  // DEL frees all of it; DEL again succeeds doing nothing; CHECK then says the container is unknown (3).
  const del = await cniExec('DEL', c);
  assert.equal([del.code, del.stdout], [0, ''], del.stdout + del.stderr);
  assert.equal(await bridgePorts(), []);
  assert.equal([...reserved()], []);
  assert.not.ok(existsSync(join(dir, 'flannel', 'ctr-a')), 'saved delegate config removed');
  const again = await cniExec('DEL', c);
  assert.equal([again.code, again.stdout], [0, '']);
  const gone = await cniExec('CHECK', { ...c, conf: { ...conf(), prevResult: result } });
  assert.equal([gone.code, errorOf(gone.stdout).code], [1, 3]);
});

test('DEL of a container never added (no netns either): success, and another container is untouched', async () => {
  const other = await container('b');
  assert.is((await cniExec('ADD', other)).code, 0);
  const before = [...reserved()];
  const r = await cniExec('DEL', { ...other, containerId: 'never-added' }, { env: { CNI_NETNS: '' } });
  assert.equal([r.code, r.stdout], [0, ''], r.stderr);
  assert.equal([...reserved()], before);
  assert.is((await bridgePorts()).length, 1);
  assert.is((await cniExec('DEL', other)).code, 0);
  assert.equal([...reserved()], []);
});

test('VERSION answers the supported versions', async () => {
  const c = await container('v');
  const r = await cniExec('VERSION', c, { stdin: '{"cniVersion":"1.0.0"}' });
  assert.is(r.code, 0);
  assert.equal(JSON.parse(r.stdout), { cniVersion: '1.0.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
});

test('malformed stdin: code 6 and nothing created; an unsupported cniVersion: code 1', async () => {
  const c = await container('m');
  const r = await cniExec('ADD', c, { stdin: '{"cniVersion":"1.0.0","name":' });
  assert.is(r.code, 1);
  assert.is(errorOf(r.stdout).code, 6);
  const v = await cniExec('ADD', { ...c, conf: conf({ cniVersion: '2.0.0' }) });
  assert.equal(errorOf(v.stdout).code, 1);
  assert.equal(await addrOf(c), []);
  assert.equal(await bridgePorts(), []);
  assert.equal([...reserved()], []);
  assert.not.ok(existsSync(join(dir, 'flannel', 'ctr-m')));
});

test('missing subnet.env: ADD waits subnetFileTimeout, then code 11 "weftd is not ready"; nothing created; DEL after it succeeds', async () => {
  const env = join(dir, 'subnet.env');
  const saved = readFileSync(env, 'utf8');
  rmSync(env);
  try {
    const c = await container('n');
    const start = Date.now();
    const r = await cniExec('ADD', c);
    const ms = Date.now() - start;
    assert.is(r.code, 1);
    const e = errorOf(r.stdout);
    assert.is(e.code, 11);
    assert.is(e.msg, `weftd is not ready: ${env} does not exist after waiting 1 s`);
    assert.ok(ms >= 1000 && ms < 8000, `waited ${ms} ms`);
    assert.equal(await addrOf(c), []);
    assert.equal(await bridgePorts(), []);
    assert.equal([...reserved()], []);
    assert.equal((await cniExec('DEL', c)).code, 0, 'the runtime\'s DEL after a failed ADD');
  } finally {
    mkdirSync(dir, { recursive: true });
    writeFileSync(env, saved);
  }
});

test.run();
