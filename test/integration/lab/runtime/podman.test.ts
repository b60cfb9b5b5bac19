// Podman with weft's CNI plugin installed as `flannel`: 2 lab hosts, weftd
// writing a conflist of "type": "flannel" (--cni-conf --cni-plugin flannel),
// podman 4.3 calling it through CNI. Containers ping across hosts with their
// own addresses, and `podman rm` gives the address back: host-local's store
// no longer holds it, the plugin's saved config and the veth are gone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { putNetworkConfig, readSubnetEnv, startAgents, type StartedAgent } from '../../../../lab/agent.js';
import { which } from '../../../../lib/which.js';
import { Lab } from '../../../../lab/lab.js';
import { exec } from '../../../../lab/netns.js';
import { formatPingMatrix, pingMatrix } from '../../../../lab/ping.js';
import { HTTP_PORT } from '../../../../lab/runtime/image.js';
import { PodmanRuntime, runtimePreflight } from '../../../../lab/runtime/index.js';
import { NETWORK_NAME } from '../../../../lab/runtime/podman.js';
import { assertNothingLeft, loudly, machineState, skipReason, type MachineState } from './leftovers.js';

const missing = runtimePreflight('podman', (x) => which(x));
let lab: Lab;
let rt: PodmanRuntime;
let agents: StartedAgent[];
let before: MachineState;

/** host-local's reservations on a host: address -> container ID. */
function reserved(h: number): Map<string, string> {
  const d = join(rt.ipamDir(lab.host(h)), NETWORK_NAME);
  if (!existsSync(d)) return new Map();
  return new Map(readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).map((f) => [f, readFileSync(join(d, f), 'utf8').split(/\r?\n/)[0]!]));
}

/** Files under a path of the host's own mount namespace (e.g. the plugin's default dataDir on its /var/lib tmpfs). */
async function lsInHost(h: number, path: string): Promise<string[]> {
  const r = await exec('nsenter', [`--target=${rt.mountNsPid(lab.host(h))}`, '--mount', '--', 'ls', '-1', path]);
  return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}

test.before(loudly(async () => {
  if (missing.length) return;
  before = await machineState();
  lab = await Lab.create({ hosts: 2 });
  rt = new PodmanRuntime(lab);
  await rt.prepare();
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } });
  agents = await startAgents(lab, (h) => rt.weftdArgs(h));
  await Promise.all(lab.hosts.map((h) => rt.startHost(h)));
  for (const h of [1, 1, 2]) await rt.run(lab.host(h));
}));

test.after(async () => {
  if (!lab) return;
  const id = { id: lab.id, dir: lab.dir, cgroupPrefix: lab.cgroupPrefix };
  await lab.destroy();
  await assertNothingLeft(before, id);
});

if (missing.length) {
  test.skip(skipReason('podman', missing), () => {});
} else {
  test('weftd wrote a conflist for weft\'s plugin as flannel; podman ran it: the plugin\'s saved configs, the subnet\'s addresses', async () => {
    for (const [i, a] of agents.entries()) {
      const h = lab.hosts[i]!;
      const conflist = JSON.parse(readFileSync(join(rt.confDir(h), '10-weft.conflist'), 'utf8'));
      assert.is(conflist.name, NETWORK_NAME);
      assert.is(conflist.plugins[0].type, 'flannel');
      assert.is(conflist.plugins[0].subnetFile, a.agent.subnetFile);
      const env = readSubnetEnv(a.agent.subnetFile);
      const mine = rt.containers.filter((c) => c.host === h);
      for (const c of mine) assert.ok(c.cidr.startsWith(env.gateway.replace(/\.1$/, '.')) && c.cidr.endsWith('/24'), `${c.name} ${c.cidr} in ${env.subnet}`);
      assert.equal([...reserved(h.index).keys()].sort(), mine.map((c) => c.ip).sort());
      // flannel's dataDir default, on the host's own /var/lib: one saved delegate config per container.
      assert.is((await lsInHost(h.index, '/var/lib/cni/flannel')).length, mine.length);
      const routes = await mine[0]!.exec('ip', ['route']);
      assert.match(routes.stdout, new RegExp(`10\\.244\\.0\\.0/16 via ${env.gateway.replace(/\./g, '\\.')}`), 'the delegate\'s route to the whole network');
    }
  });

  test('containers ping across hosts, and the far end sees the sender\'s own address', async () => {
    const pairs = await pingMatrix(lab, rt.containers, { count: 2, intervalMs: 100, timeoutS: 1 });
    assert.is(pairs.length, 6);
    assert.equal(pairs.filter((p) => p.result.received !== p.result.sent).map((p) => `${p.from}->${p.to}`), [], formatPingMatrix(pairs));
    const [a, b] = [rt.containers.find((c) => c.host.index === 1)!, rt.containers.find((c) => c.host.index === 2)!];
    const r = await a.exec('wget', ['-q', '-O', '-', `http://${b.ip}:${HTTP_PORT}/cgi-bin/remote`]);
    assert.is(r.stdout.trim(), a.ip, r.stderr);
  });

  test('podman rm releases the address: host-local\'s store no longer holds it, the saved config and the veth are gone', async () => {
    const c = rt.containers.find((x) => x.host.index === 1)!;
    const ports = async () => (await lab.ipJson<Array<{ ifname: string }>>(lab.host(1).ns, ['link', 'show', 'master', 'cni0'])).length;
    assert.is(reserved(1).get(c.ip), c.id, 'reserved for this container before');
    const portsBefore = await ports();
    const saved = await lsInHost(1, '/var/lib/cni/flannel');
    assert.ok(saved.includes(c.id), saved.join(' '));
    await rt.remove(c);
    assert.not.ok(reserved(1).has(c.ip), `${c.ip} still reserved: ${[...reserved(1)].join(' ')}`);
    assert.is(reserved(1).size, 1, 'the other container keeps its address');
    assert.not.ok((await lsInHost(1, '/var/lib/cni/flannel')).includes(c.id));
    assert.is(await ports(), portsBefore - 1);
    // The address is free: the next container may get it again.
    const next = await rt.run(lab.host(1));
    assert.is(reserved(1).get(next.ip), next.id);
  });
}

test.run();
