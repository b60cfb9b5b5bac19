// Issue 12: under systemd, the udp backend's files are kept by systemd's fd
// store, not by the fd holder process (which lives in weftd's cgroup, so
// `systemctl restart weftd` would kill it too). Lab namespaces have no systemd:
// lab/fake-systemd.ts speaks systemd's side of the protocol (the notify socket,
// FDSTORE=1 / FDSTOREREMOVE=1 / BARRIER=1 with SCM_RIGHTS, and a restart that
// passes the stored fds as LISTEN_FDS/LISTEN_FDNAMES). Two udp hosts (native
// engine), one container each; weftd on h1 runs under the fake systemd with
// --udp-workers 2.
//  - h1's weftd hands its TUN queues, UDP receive sockets and the second
//    worker's send socket (port + 1) to the store, one name each, with
//    FDPOLL=0, and starts no fd holder process;
//  - kill -9 and restart with the stored fds while the containers ping every
//    10 ms: the new weftd resumes from the store ("via systemd's fd store"),
//    at most 15 pings lost, and the store still holds exactly the same names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { Lab, type LabContainer } from '../../../../lab/lab.js';
import { attachContainer, fdHolderPids, logRecords, putNetworkConfig, startAgent, waitFor, waitReady, type LabAgent } from '../../../../lab/agent.js';
import { startPinger } from '../../../../lab/ping.js';

const TUN = 'weft-tun';
const MAX_LOST = 15;
let lab: Lab;
const agents: LabAgent[] = [];
const cs: LabContainer[] = [];

const events = (a: LabAgent, ev: string) => logRecords(lab, a).filter((r) => r.ev === ev);
const resumedLines = (a: LabAgent) => logRecords(lab, a).filter((r) => r.msg === 'resumed the data path from saved state, before etcd');
const held = (a: LabAgent) => {
  const last = logRecords(lab, a).filter((r) => r.ev === 'store' || r.ev === 'remove').at(-1);
  return ((last?.held ?? []) as string[]).slice().sort();
};
const names = [`weft-udp/${TUN}/tun/0`, `weft-udp/${TUN}/tun/1`, `weft-udp/${TUN}/udp/0`, `weft-udp/${TUN}/udp/1`, `weft-udp/${TUN}/tx/0`].sort();

test.before(async () => {
  lab = await Lab.create({ hosts: 2 });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'udp', Engine: 'native' } });
  const h1 = lab.host(1);
  agents.push(startAgent(lab, h1, ['--log-level', 'info', '--udp-workers', '2'], undefined, { fakeSystemd: join(h1.dir, 'notify.sock') }));
  agents.push(startAgent(lab, lab.host(2), ['--log-level', 'info']));
  for (const a of agents) cs.push(await attachContainer(lab, a.host, await waitReady(lab, a)));
});

test.after(async () => {
  await lab?.destroy();
});

test('under systemd with an fd store: the TUN queues and the UDP sockets (receive, and the second worker\'s send socket) go to the store (one name each, FDPOLL=0), no fd holder process', async () => {
  const a = agents[0]!;
  assert.ok(events(a, 'ready').length >= 1, 'READY=1 reached the notify socket');
  assert.equal(held(a), names, JSON.stringify(events(a, 'store')));
  assert.ok(events(a, 'store').every((e) => e.poll === '0'), 'FDPOLL=0 on every FDSTORE');
  assert.is((await fdHolderPids(lab, a.host)).length, 0, 'no weft-fd-holder process on h1');
  assert.is((await fdHolderPids(lab, agents[1]!.host)).length, 1, 'h2 (no systemd) keeps its fd holder');
  const started = logRecords(lab, a).find((r) => r.msg === 'forwarder started');
  assert.is(started?.holder, "systemd's fd store");
});

test(`kill -9 and restart with the stored fds (LISTEN_FDS) while the containers ping every 10 ms: resumed from the store, at most ${MAX_LOST} lost, the same names held`, async () => {
  const a = agents[0]!;
  const [before] = (await lab.ipJson(a.host.ns, ['link', 'show', TUN])) as Array<{ ifindex: number }>;
  const pinger = startPinger(cs[1]!.ns, cs[0]!.ip, 10);
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = Date.now();
  process.kill(a.proc.pid!, 'SIGUSR2');  // the fake systemd: SIGKILL, then start it again as Restart= would
  await waitFor('the new weftd to resume', 10_000, () => resumedLines(a).length === 1);
  await waitFor('the new weftd to be ready', 20_000, () => events(a, 'ready').length >= 2);
  await new Promise((r) => setTimeout(r, 1000));
  const s = await pinger.stop();
  const r = resumedLines(a)[0]!;
  const restarted = events(a, 'started').at(-1)!;
  console.log(`  kill -9 + restart under the fake systemd: ${s.lost} of ${s.sent} pings (10 ms) lost; forwarding again ${Date.parse(String(r.at)) - t0} ms after the kill, via ${r.via}`);
  assert.equal((restarted.fds as string[]).slice().sort(), names, 'the stored fds were passed');
  assert.is(r.via, "systemd's fd store");
  assert.ok(s.sent > 150, `pinger sent ${s.sent}`);
  assert.ok(s.lost <= MAX_LOST, `${s.lost} pings lost (seqs ${s.lostSeqs.join(',')})`);
  assert.equal(held(a), names, 'the store holds the same names, once each');
  assert.is((await fdHolderPids(lab, a.host)).length, 0, 'still no fd holder process');
  const [after] = (await lab.ipJson(a.host.ns, ['link', 'show', TUN])) as Array<{ ifindex: number }>;
  assert.is(after!.ifindex, before!.ifindex, 'the same TUN device');
});

test.run();
