// Docker on weft, as the README sets it up: 3 lab hosts, weftd with
// --bridge none and --ip-masq, dockerd with the options `weft docker-opts`
// wrote, FORWARD policy DROP; 2 containers per host from the busybox image.
// Shown with the containers' own tools (docker exec): every container pings
// every other, a 10 MB transfer across hosts arrives with the same sha256,
// the far end sees the container's own address, and the forward chain is what
// lets new connections through Docker's DROP policy (and is put back).
// Run once per backend (docker-vxlan.test.ts, docker-udp.test.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putNetworkConfig, readSubnetEnv, startAgents, waitFor, type StartedAgent } from '../../../../lab/agent.js';
import { which } from '../../../../lib/which.js';
import { Lab } from '../../../../lab/lab.js';
import { formatPingMatrix, pingMatrix, ping } from '../../../../lab/ping.js';
import { DockerRuntime, runtimePreflight, type RuntimeContainer } from '../../../../lab/runtime/index.js';
import { HTTP_PORT } from '../../../../lab/runtime/image.js';
import { assertNothingLeft, loudly, machineState, skipReason, type MachineState } from './leftovers.js';

const HEALTH_PORT = 9101;

export function dockerSuite(backend: 'vxlan' | 'udp'): void {
  const t = suite(`docker on ${backend}`);
  const missing = runtimePreflight('docker', (x) => which(x));
  let lab: Lab;
  let rt: DockerRuntime;
  let agents: StartedAgent[];
  let before: MachineState;
  const on = (h: number) => rt.containers.filter((c) => c.host.index === h);

  const readyz = async (host: number) => {
    const h = lab.host(host);
    const r = await lab.execIn(h.ns, process.execPath, ['-e', `fetch('http://${h.underlayIp}:${HEALTH_PORT}/readyz').then(async (r) => console.log(r.status, await r.text()), (e) => console.log(0, e.message))`]);
    const sp = r.stdout.indexOf(' ');
    return { status: Number(r.stdout.slice(0, sp)), body: JSON.parse(r.stdout.slice(sp + 1)) as Record<string, any> };
  };
  const iptables = async (host: number, args: string[]) => (await lab.execIn(lab.host(host).ns, 'iptables', ['-w', '5', ...args])).stdout;

  t.before(loudly(async () => {
    if (missing.length) return;
    before = await machineState();
    lab = await Lab.create({ hosts: 3 });
    rt = new DockerRuntime(lab);
    await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: backend } });
    agents = await startAgents(lab, (h) => [...rt.weftdArgs(), '--resync-interval', '2', '--healthz-ip', h.underlayIp, '--healthz-port', String(HEALTH_PORT)]);
    await Promise.all(lab.hosts.map((h) => rt.startHost(h)));
    for (const h of lab.hosts) for (let i = 0; i < 2; i++) await rt.run(h);
  }));

  t.after(async () => {
    if (!lab) return;
    const id = { id: lab.id, dir: lab.dir, cgroupPrefix: lab.cgroupPrefix };
    await lab.destroy();
    await assertNothingLeft(before, id);
  });

  if (missing.length) {
    t.skip(skipReason(`docker on ${backend}`, missing), () => {});
    t.run();
    return;
  }

  t('dockerd runs with weft docker-opts: docker0 holds the lease\'s gateway at the overlay MTU; weftd built no bridge', async () => {
    for (const [i, a] of agents.entries()) {
      const h = lab.hosts[i]!;
      const env = readSubnetEnv(a.agent.subnetFile);
      const args = rt.daemonArgs(h);
      for (const want of [`--bip=${env.gateway}/24`, `--mtu=${env.mtu}`, '--ip-masq=false']) assert.ok(args.includes(want), `${h.name}: ${want} in ${args.join(' ')}`);
      const [d0] = await lab.ipJson(h.ns, ['addr', 'show', 'docker0']);
      assert.equal(d0.addr_info.filter((x: any) => x.family === 'inet').map((x: any) => `${x.local}/${x.prefixlen}`), [`${env.gateway}/24`]);
      assert.is(d0.mtu, env.mtu);
      assert.equal(await lab.ipJson(h.ns, ['link', 'show', 'weft0']).catch(() => []), []);
      for (const c of on(h.index)) assert.ok(c.cidr.startsWith(env.gateway.replace(/\.1$/, '.')), `${c.name} ${c.cidr} in ${env.subnet}`);
    }
  });

  t('Docker\'s FORWARD policy is DROP, weft\'s chain comes after Docker\'s rules, and every container pings every other through it', async () => {
    const accepted = async (h: number) => Number(/^\s*(\d+)/m.exec((await iptables(h, ['-L', 'WEFT-FWD', '-v', '-x', '-n'])).split('\n').slice(2).join('\n'))?.[1] ?? 0);
    const before2 = await accepted(2);
    for (const h of [1, 2, 3]) {
      const fwd = (await iptables(h, ['-S', 'FORWARD'])).trim().split('\n');
      assert.is(fwd[0], '-P FORWARD DROP');
      const docker = fwd.findIndex((l) => l.includes('-j DOCKER-USER'));
      const weft = fwd.findIndex((l) => l.includes('-j WEFT-FWD'));
      assert.ok(docker > 0 && weft > docker, fwd.join('\n'));
    }
    const pairs = await pingMatrix(lab, rt.containers, { count: 2, intervalMs: 100, timeoutS: 1 });
    const failed = pairs.filter((p) => p.result.received !== p.result.sent || p.result.sent === 0);
    assert.is(pairs.length, 30);
    assert.equal(failed.map((p) => `${p.from}->${p.to}`), [], formatPingMatrix(pairs));
    assert.ok((await accepted(2)) > before2, 'packets to h2\'s containers were accepted by WEFT-FWD');
  });

  t('a 10 MB transfer between containers on two hosts arrives intact (sha256)', async () => {
    const [server, client] = [on(2)[0]!, on(1)[1]!];
    const made = await server.exec('sh', ['-c', 'head -c 10485760 /dev/urandom > /www/blob && sha256sum /www/blob']);
    assert.is(made.code, 0, made.stderr);
    const got = await client.exec('sh', ['-c', `wget -q -O /tmp/blob http://${server.ip}:${HTTP_PORT}/blob && ls -l /tmp/blob && sha256sum /tmp/blob`], { timeoutMs: 60_000 });
    assert.is(got.code, 0, got.stderr);
    assert.match(got.stdout, /\s10485760\s/);
    assert.is(got.stdout.trim().split('\n').pop()!.split(/\s+/)[0], made.stdout.split(/\s+/)[0]);
  });

  t('the far end sees the container\'s own address, in both directions and from every host', async () => {
    const ask = async (from: RuntimeContainer, to: RuntimeContainer) => {
      const r = await from.exec('wget', ['-q', '-O', '-', `http://${to.ip}:${HTTP_PORT}/cgi-bin/remote`]);
      assert.is(r.code, 0, `${from.name} -> ${to.name}: ${r.stderr}`);
      return r.stdout.trim();
    };
    for (const [a, b] of [[on(1)[0]!, on(2)[0]!], [on(2)[1]!, on(3)[0]!], [on(3)[1]!, on(1)[1]!]] as const) {
      assert.is(await ask(a, b), a.ip, `${b.name} saw ${a.name}`);
      assert.is(await ask(b, a), b.ip, `${a.name} saw ${b.name}`);
    }
  });

  t('forward rules removed by hand: weftd puts them back within its resync interval, /readyz reports it, pings work', async () => {
    await iptables(2, ['-D', 'FORWARD', '-m', 'comment', '--comment', 'weft forward', '-j', 'WEFT-FWD']);
    await iptables(2, ['-F', 'WEFT-FWD']);
    const ms = await waitFor('WEFT-FWD to be back on h2', 10_000, async () => {
      const s = await iptables(2, ['-S']);
      return s.includes('-A FORWARD -m comment --comment "weft forward" -j WEFT-FWD') && (s.match(/^-A WEFT-FWD /gm) ?? []).length === 2;
    });
    console.log(`  forward rules put back after ${ms} ms`);
    const r = await readyz(2);
    assert.is(r.status, 200, JSON.stringify(r.body));
    assert.is(r.body.forwardRules.ok, true);
    assert.ok(r.body.forwardRules.repairs >= 1, JSON.stringify(r.body.forwardRules));
    const p = await ping(on(1)[0]!.exec, on(2)[0]!.ip, { count: 2, intervalMs: 100 });
    assert.is(p.received, 2, p.output);
  });

  t.run();
}
