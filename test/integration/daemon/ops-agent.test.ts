// Operating weftd: systemd notify order and watchdog, /healthz /readyz
// /metrics, and a container attached through the CNI conflist weftd wrote.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, type TrackedProcess } from '../../../lab/lab.js';
import { ping } from '../../../lab/ping.js';
import { putNetworkConfig, startAgent, waitFor, waitReady, type LabAgent } from '../../../lab/agent.js';

let lab: Lab;
let listener: TrackedProcess;
let a1: LabAgent;
let a2: LabAgent;
const HEALTH_PORT = 9101;

// A unix datagram listener in h1 (Node has none). On READY=1 it records, right
// then, the routes on the VXLAN device, so the test can see what existed at READY.
const LISTENER = `
import json, socket, subprocess, sys, time
path, dev = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print(json.dumps({"listening": True}), flush=True)
while True:
    m = s.recv(65536).decode()
    rec = {"t": time.time(), "msg": m}
    if "READY=1" in m:
        r = subprocess.run(["ip", "-j", "route", "show", "dev", dev], capture_output=True, text=True)
        rec["routes"] = json.loads(r.stdout or "[]")
    print(json.dumps(rec), flush=True)
`;

function notifications(): Array<{ t: number; msg: string; routes?: Array<{ dst: string }> }> {
  return lab
    .readLog(listener)
    .split('\n')
    .filter((l) => l.startsWith('{"t"'))
    .map((l) => JSON.parse(l));
}

async function http(path: string): Promise<{ status: number; body: string }> {
  const r = await lab.execIn(lab.host(1).ns, process.execPath, [
    '-e',
    `fetch('http://192.0.2.11:${HEALTH_PORT}${path}').then(async (r) => { console.log(r.status); console.log(await r.text()); }, (e) => { console.log(0); console.log(e.message); })`,
  ]);
  const [status, ...rest] = r.stdout.split('\n');
  return { status: Number(status), body: rest.join('\n') };
}

test.before(async () => {
  lab = await Lab.create({ hosts: 2 });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } });
  // h2 first, so h1 has a peer to program before it may say READY=1.
  a2 = startAgent(lab, lab.host(2), ['--cni-conf', join(lab.host(2).dir, 'cni', '10-weft.conflist'), '--cni-ipam-data-dir', join(lab.host(2).dir, 'cni-ipam')]);
  await waitReady(lab, a2);
  const sock = join(lab.host(1).dir, 'notify.sock');
  listener = lab.spawnIn(lab.host(1).ns, 'python3', ['-c', LISTENER, sock, 'weft.1'], { logName: 'notify-listener' });
  await waitFor('the notify listener', 5000, () => lab.readLog(listener).includes('listening'));
  a1 = startAgent(lab, lab.host(1), [
    '--healthz-port', String(HEALTH_PORT),
    '--cni-conf', join(lab.host(1).dir, 'cni', '10-weft.conflist'),
    '--cni-ipam-data-dir', join(lab.host(1).dir, 'cni-ipam'),
  ]);
  // startAgent has no env option: restart it with NOTIFY_SOCKET set.
  await lab.stop(a1.proc, { signal: 'SIGKILL' });
  a1.proc = lab.spawnIn(lab.host(1).ns, process.execPath, ['--enable-source-maps', ...a1.args], {
    logName: 'weftd-h1-systemd',
    env: { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' },
  });
  await waitReady(lab, a1);
});

test.after(async () => {
  await lab?.destroy();
});

test('systemd: STATUS lines, then READY=1 only once the peer route exists, then WATCHDOG=1 every half period', async () => {
  await waitFor('READY=1', 5000, () => notifications().some((n) => n.msg.includes('READY=1')));
  await new Promise((r) => setTimeout(r, 600));
  const ns = notifications();
  const readyAt = ns.findIndex((n) => n.msg.includes('READY=1'));
  assert.ok(ns.slice(0, readyAt).some((n) => /^STATUS=acquiring a subnet lease/.test(n.msg)), 'a STATUS line before READY');
  assert.is(ns.filter((n) => n.msg.includes('READY=1')).length, 1, 'READY=1 exactly once');
  const peer = readFileSync(a2.subnetFile, 'utf8').match(/FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/24/)![1];
  assert.equal(ns[readyAt]!.routes!.map((r) => r.dst), [`${peer}.0/24`], 'the peer route existed when READY=1 arrived');
  assert.match(ns[readyAt]!.msg, /STATUS=ready: subnet 10\.244\.\d+\.0\/24, 1\/1 peers programmed/);
  const dogs = ns.slice(readyAt).filter((n) => n.msg === 'WATCHDOG=1');
  assert.ok(dogs.length >= 3, `WATCHDOG=1 about every 100 ms, got ${dogs.length} in 600 ms`);
});

test('health: /healthz and /readyz say ok; /metrics has the peers, readiness and lease expiry', async () => {
  const h = await http('/healthz');
  assert.is(h.status, 200, h.body);
  assert.is(JSON.parse(h.body).etcd, 'reachable');
  const r = await http('/readyz');
  assert.is(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).peersProgrammed, 1);
  const m = await http('/metrics');
  assert.is(m.status, 200);
  assert.match(m.body, /^weft_peers\{state="known"\} 1$/m);
  assert.match(m.body, /^weft_peers\{state="programmed"\} 1$/m);
  assert.match(m.body, /^weft_ready 1$/m);
  assert.match(m.body, /^weft_kernel_operation_errors_total 0$/m);
  const exp = Number(/^weft_lease_expiry_timestamp_seconds (\S+)$/m.exec(m.body)![1]);
  assert.ok(exp > Date.now() / 1000 + 86000 && exp < Date.now() / 1000 + 86401, `lease expiry ${exp}`);
  assert.match(m.body, /^weft_process_resident_memory_bytes \d+/m);
  assert.is((await http('/nope')).status, 404);
});

test('CNI: the conflist weftd wrote attaches containers by itself, and they ping across hosts', async () => {
  const file1 = join(lab.host(1).dir, 'cni', '10-weft.conflist');
  assert.ok(existsSync(file1));
  const conf = JSON.parse(readFileSync(file1, 'utf8'));
  const own = readFileSync(a1.subnetFile, 'utf8');
  assert.is(conf.plugins[0].type, 'bridge');
  assert.is(conf.plugins[0].bridge, 'weft0');
  assert.is(conf.plugins[0].mtu, 1450);
  assert.is(`${conf.plugins[0].ipam.ranges[0][0].gateway}/24`, /FLANNEL_SUBNET=(\S+)/.exec(own)![1]);
  const c1 = await lab.addContainer(lab.host(1), { conflist: file1 });
  const c2 = await lab.addContainer(lab.host(2), { conflist: join(lab.host(2).dir, 'cni', '10-weft.conflist') });
  const mtu = (await lab.ipJson(c1.ns, ['link', 'show', 'eth0'])) as Array<{ mtu: number }>;
  assert.is(mtu[0]!.mtu, 1450);
  const p = await ping(c1.ns, c2.ip, { count: 3, intervalMs: 100 });
  assert.is(p.received, 3, p.output);
  await lab.removeContainer(c1);
  await lab.removeContainer(c2);
});

test('health: with etcd down /healthz turns 503 while /readyz stays 200 (the data plane is intact); back when etcd is', async () => {
  const member = lab.etcd!.members[0]!;
  await member.kill('SIGKILL');
  try {
    const ms = await waitFor('/healthz to report etcd unreachable', 10_000, async () => (await http('/healthz')).status === 503);
    console.log(`  etcd killed -> /healthz 503 after ${ms} ms`);
    const r = await http('/readyz');
    assert.is(r.status, 200, r.body);
  } finally {
    await member.restart();
  }
  await waitFor('/healthz to recover', 15_000, async () => (await http('/healthz')).status === 200);
});

test('SIGTERM sends STOPPING=1 and exits 0', async () => {
  await lab.stop(a1.proc, { signal: 'SIGTERM' });
  assert.is(a1.proc.exitCode, 0);
  await waitFor('STOPPING=1', 2000, () => notifications().some((n) => n.msg === 'STOPPING=1'));
});

test.run();
