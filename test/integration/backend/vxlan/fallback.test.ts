// VXLAN with the per-peer udp fallback (issue 18): h1..h3 run weftd with
// {"Type": "vxlan", "Fallback": {"Type": "udp", "Port": 8285}}, h4 is a
// hand-built flannel-style vxlan node (a VXLAN device, a lease without
// Fallback, entries made with ip/bridge). One container per host.
//   - leases advertise the fallback; both devices and the bridge carry the
//     smaller MTU; every peer starts on vxlan; every pair pings
//   - UDP 8472 dropped between h1 and h2 only (iptables in their namespaces):
//     that pair moves into the TUN within 5 s and its pings flow again
//     (longest gap printed); h1-h3, h2-h3 stay on vxlan, lose nothing, and
//     the VXLAN counters keep moving for them; the flannel node stays on vxlan
//   - the rule removed: back on vxlan within 30 s, no ping lost meanwhile
//   - both paths dropped between h1 and h3: unreachable on both, no move
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer, type LabHost } from '../../../../lab/lab.js';
import { ping, pingAllPairs, startPinger, type Pinger, type PingerStats } from '../../../../lab/ping.js';
import { attachContainer, logRecords, PREFIX, putNetworkConfig, startAgent, waitFor, waitReady, weftStatus, type StartedAgent } from '../../../../lab/agent.js';

const DEV = 'weft.1';
const TUN = 'weft-tun';
const FLANNEL_SUBNET = '10.244.77.0/24';
const FLANNEL_MAC = '0e:00:00:00:77:04';
const HEALTH_PORT = 9465;
let lab: Lab;
let weft: StartedAgent[];
let containers: LabContainer[] = [];
const host = (i: number) => lab.host(i);
const agent = (i: number) => weft.find((u) => u.host.index === i)!;
const subnetOf = (i: number) => (i === 4 ? FLANNEL_SUBNET : agent(i).ready.subnet);
const on = (i: number) => containers.find((c) => c.host.index === i)!;

async function sh(ns: string, cmd: string, ...args: string[]): Promise<string> {
  const r = await lab.execIn(ns, cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns}: ${r.stderr}`);
  return r.stdout;
}

/** The device the route to peer j's subnet goes into, on host i (iproute2 as the oracle). */
async function routeDev(i: number, j: number): Promise<string | undefined> {
  const rs = (await lab.ipJson(host(i).ns, ['route', 'show', subnetOf(j)])) as Array<{ dev: string }>;
  return rs[0]?.dev;
}

async function linkStats(h: LabHost, dev: string): Promise<{ tx: number; rx: number; mtu: number }> {
  const [l] = (await lab.ipJson(h.ns, ['-s', 'link', 'show', dev])) as Array<{ mtu: number; stats64: { tx: { packets: number }; rx: { packets: number } } }>;
  return { tx: l!.stats64.tx.packets, rx: l!.stats64.rx.packets, mtu: l!.mtu };
}

/** iptables rules in host i's namespace dropping UDP to/from `port` of host j (the lab's namespaces only). */
async function dropBetween(i: number, j: number, port: number, op: '-I' | '-D'): Promise<void> {
  const peer = host(j).underlayIp;
  await sh(host(i).ns, 'iptables', op, 'OUTPUT', '-p', 'udp', '-d', peer, '--dport', String(port), '-j', 'DROP');
  await sh(host(i).ns, 'iptables', op, 'INPUT', '-p', 'udp', '-s', peer, '--dport', String(port), '-j', 'DROP');
}

async function metrics(i: number): Promise<string> {
  return sh(host(i).ns, process.execPath, '-e', `fetch('http://127.0.0.1:${HEALTH_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`);
}

function metric(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The longest run of unanswered echoes, in ms (pinger interval `ms`). */
function longestGapMs(s: PingerStats, ms: number): number {
  const answered = new Set([...s.output.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])));
  let run = 0;
  let best = 0;
  for (let seq = 1; seq <= s.sent; seq++) {
    run = answered.has(seq) ? 0 : run + 1;
    best = Math.max(best, run);
  }
  return best * ms;
}

function pathLines(i: number): Array<Record<string, unknown>> {
  return logRecords(lab, agent(i).agent).filter((r) => r.msg === 'peer path changed');
}

test.before(async () => {
  lab = await Lab.create({ hosts: 4 });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'vxlan', Fallback: { Type: 'udp', Port: 8285 } } });
  // h4: flannel's vxlan node, by hand: its device, its lease (no Fallback), its bridge.
  const h4 = host(4);
  await sh(h4.ns, 'ip', 'link', 'add', 'flannel.1', 'address', FLANNEL_MAC, 'mtu', '1450', 'type', 'vxlan', 'id', '1', 'local', h4.underlayIp, 'dev', 'eth0', 'dstport', '8472', 'nolearning');
  await sh(h4.ns, 'ip', 'addr', 'add', '10.244.77.0/32', 'dev', 'flannel.1');
  await sh(h4.ns, 'ip', 'link', 'set', 'flannel.1', 'up');
  await sh(h4.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  await lab.etcd!.client().put(`${PREFIX}/subnets/10.244.77.0-24`).value(JSON.stringify({ PublicIP: h4.underlayIp, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: FLANNEL_MAC } }));
  weft = [];
  for (const h of [host(1), host(2), host(3)]) {
    const a = startAgent(lab, h, ['--healthz-ip', '127.0.0.1', '--healthz-port', String(HEALTH_PORT), '--metrics-peer-paths']);
    weft.push({ host: h, agent: a, ready: await waitReady(lab, a) });
  }
  for (const u of weft) containers.push(await attachContainer(lab, u.host, u.ready));
  containers.push(await lab.addContainer(h4, { bridge: 'cni0', subnet: FLANNEL_SUBNET, gateway: '10.244.77.1', mtu: 1450 }));
  // flannel's entries for each weft node, from their leases.
  for (const u of weft) {
    const lease = JSON.parse((await lab.etcd!.client().get(`${PREFIX}/subnets/${u.ready.subnet.replace('/', '-')}`).string())!) as { BackendData: { VtepMAC: string } };
    const vtep = u.ready.subnet.replace(/\/24$/, '');
    await sh(h4.ns, 'ip', 'neigh', 'replace', vtep, 'lladdr', lease.BackendData.VtepMAC, 'dev', 'flannel.1', 'nud', 'permanent');
    await sh(h4.ns, 'bridge', 'fdb', 'replace', lease.BackendData.VtepMAC, 'dev', 'flannel.1', 'dst', u.host.underlayIp, 'self', 'permanent');
    await sh(h4.ns, 'ip', 'route', 'replace', u.ready.subnet, 'via', vtep, 'dev', 'flannel.1', 'onlink');
  }
});

test.after(async () => {
  await lab?.destroy();
});

test('leases advertise the fallback; both devices and the bridge carry the smaller MTU; every peer starts on vxlan; every pair pings', async () => {
  for (const u of weft) {
    const lease = JSON.parse((await lab.etcd!.client().get(`${PREFIX}/subnets/${u.ready.subnet.replace('/', '-')}`).string())!);
    assert.equal(lease.BackendType, 'vxlan');
    assert.equal(lease.BackendData.Fallback, { Type: 'udp', Port: 8285 }, `${u.host.name}'s lease`);
    assert.is(u.ready.mtu, 1450, 'subnet.env MTU: VXLAN\'s 1500 - 50, the smaller of the two');
    assert.is((await linkStats(u.host, DEV)).mtu, 1450);
    assert.is((await linkStats(u.host, TUN)).mtu, 1450);
    for (const j of [1, 2, 3, 4]) if (j !== u.host.index) assert.is(await routeDev(u.host.index, j), DEV, `${u.host.name} -> h${j}`);
    // No Network route into the TUN: only single peers are routed there.
    assert.equal(await lab.ipJson(u.host.ns, ['route', 'show', 'dev', TUN, 'proto', '87']), []);
  }
  await pingAllPairs(lab);
});

test('UDP 8472 dropped between h1 and h2: that pair moves to udp within 5 s and pings again; the others stay on vxlan', async () => {
  const pairs: Array<[number, number]> = [[1, 2], [2, 1], [1, 3], [3, 1], [2, 3], [3, 2], [1, 4], [4, 1]];
  const pingers = new Map<string, Pinger>(pairs.map(([a, b]) => [`h${a}->h${b}`, startPinger(on(a).ns, on(b).ip, 20)]));
  await new Promise((r) => setTimeout(r, 500));
  const h3Before = await linkStats(host(3), DEV);
  const h1TunBefore = await linkStats(host(1), TUN);
  const t0 = Date.now();
  await dropBetween(1, 2, 8472, '-I');
  await dropBetween(2, 1, 8472, '-I');
  let moved: number;
  try {
    moved = await waitFor('h1 and h2 to route each other into the TUN', 10_000, async () => (await routeDev(1, 2)) === TUN && (await routeDev(2, 1)) === TUN);
    await new Promise((r) => setTimeout(r, 2000));
  } finally {
    // (the rules stay for the next test; the pingers stop here)
  }
  const stats = new Map<string, PingerStats>();
  for (const [k, p] of pingers) stats.set(k, await p.stop());
  const gap = Math.max(longestGapMs(stats.get('h1->h2')!, 20), longestGapMs(stats.get('h2->h1')!, 20));
  console.log(`  8472 dropped h1<->h2: both on udp after ${moved} ms (${Date.now() - t0} ms incl. checks); longest ping gap h1<->h2 ${gap} ms`);
  assert.ok(moved <= 5000, `moved after ${moved} ms, more than 5 s`);
  assert.ok(gap <= 5000, `longest gap ${gap} ms`);
  for (const k of ['h1->h2', 'h2->h1']) {
    const s = stats.get(k)!;
    const tail = [...s.output.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])).filter((q) => q > s.sent - 50);
    assert.ok(tail.length >= 45, `${k}: the last second of pings must flow on udp (${tail.length}/50 answered)`);
  }
  for (const k of ['h1->h3', 'h3->h1', 'h2->h3', 'h3->h2', 'h1->h4', 'h4->h1']) assert.is(stats.get(k)!.lost, 0, `${k} lost pings: ${stats.get(k)!.lostSeqs.join(',')}`);
  for (const [a, b] of [[1, 3], [3, 1], [2, 3], [3, 2], [1, 4], [2, 4], [3, 4], [3, 2]] as const) assert.is(await routeDev(a, b), DEV, `h${a} -> h${b} stays on vxlan`);
  const h3After = await linkStats(host(3), DEV);
  assert.ok(h3After.tx - h3Before.tx >= 100 && h3After.rx - h3Before.rx >= 100, `h3's VXLAN counters keep moving: tx +${h3After.tx - h3Before.tx}, rx +${h3After.rx - h3Before.rx}`);
  const h1Tun = await linkStats(host(1), TUN);
  assert.ok(h1Tun.tx - h1TunBefore.tx >= 50, `h1's pings to h2 go into the TUN: tx +${h1Tun.tx - h1TunBefore.tx}`);
  // One warning per move, naming the peer and why.
  for (const [i, j] of [[1, 2], [2, 1]] as const) {
    const lines = pathLines(i);
    assert.is(lines.length, 1, `${host(i).name}: one 'peer path changed' line, got ${JSON.stringify(lines)}`);
    assert.equal([lines[0]!.level, lines[0]!.subnet, lines[0]!.from, lines[0]!.path], ['warn', subnetOf(j), 'vxlan', 'udp']);
    assert.match(String(lines[0]!.reason), /^vxlan probes failing since \d\d:\d\d:\d\d$/);
  }
  const m = await metrics(1);
  assert.is(metric(m, 'weft_peer_path', `peer="${subnetOf(2)}",path="udp"`), 1, m);
  assert.is(metric(m, 'weft_peer_path', `peer="${subnetOf(3)}",path="vxlan"`), 1);
  assert.is(metric(m, 'weft_peer_path_changes_total'), 1);
  assert.ok((metric(m, 'weft_peer_probes_total', 'path="vxlan",result="lost"') ?? 0) >= 5, 'lost vxlan probes are counted');
  const st = await weftStatus(lab, agent(1).agent);
  const p2 = st.status.peers.find((p: { subnet: string }) => p.subnet === subnetOf(2));
  assert.is(p2.path, 'udp', st.text);
  assert.match(p2.pathReason, /^vxlan probes failing since \d\d:\d\d:\d\d$/, st.text);
  assert.ok(p2.reachable, st.text);
  assert.match(st.text, new RegExp(`${subnetOf(2).replace(/\./g, '\\.')}\\s.*udp \\(vxlan probes failing since`), st.text);
  const p4 = st.status.peers.find((p: { subnet: string }) => p.subnet === FLANNEL_SUBNET);
  assert.is(p4.path, 'vxlan');
  assert.match(p4.pathReason, /no fallback in its lease/);
  console.log(st.text.split('\n').filter((l) => l.startsWith('10.244.')).map((l) => `  ${l}`).join('\n'));
});

test('the rule removed: h1 and h2 are back on vxlan within 30 s, without losing a ping', async () => {
  const p12 = startPinger(on(1).ns, on(2).ip, 20);
  const p21 = startPinger(on(2).ns, on(1).ip, 20);
  await new Promise((r) => setTimeout(r, 300));
  await dropBetween(1, 2, 8472, '-D');
  await dropBetween(2, 1, 8472, '-D');
  const back = await waitFor('h1 and h2 back on vxlan', 30_000, async () => (await routeDev(1, 2)) === DEV && (await routeDev(2, 1)) === DEV);
  await new Promise((r) => setTimeout(r, 1000));
  const [s12, s21] = [await p12.stop(), await p21.stop()];
  console.log(`  rule removed: both back on vxlan after ${back} ms; pings lost during the move back: ${s12.lost} + ${s21.lost} of ${s12.sent + s21.sent}`);
  assert.is(s12.lost + s21.lost, 0, `lost: ${s12.lostSeqs.join(',')} / ${s21.lostSeqs.join(',')}`);
  for (const i of [1, 2]) {
    const lines = pathLines(i);
    assert.is(lines.length, 2, `${host(i).name}: two moves in all`);
    assert.equal([lines[1]!.level, lines[1]!.from, lines[1]!.path], ['warn', 'udp', 'vxlan']);
  }
});

test('VXLAN dropped one way only (h2 -> h1): a probe needs its path both ways, so both hosts move, and pings flow', async () => {
  const h1 = host(1).underlayIp;
  const rule = (op: string) => sh(host(2).ns, 'iptables', op, 'OUTPUT', '-p', 'udp', '-d', h1, '--dport', '8472', '-j', 'DROP');
  await rule('-I');
  try {
    const ms = await waitFor('h1 and h2 on udp', 10_000, async () => (await routeDev(1, 2)) === TUN && (await routeDev(2, 1)) === TUN);
    console.log(`  8472 dropped h2 -> h1 only: both on udp after ${ms} ms`);
    for (const [a, b] of [[1, 2], [2, 1]] as const) {
      const r = await ping(on(a).ns, on(b).ip, { count: 5, intervalMs: 50, timeoutS: 2 });
      assert.is(r.received, 5, r.output);
    }
  } finally {
    await rule('-D');
  }
  await waitFor('h1 and h2 back on vxlan', 30_000, async () => (await routeDev(1, 2)) === DEV && (await routeDev(2, 1)) === DEV);
});

test('both paths dropped between h1 and h3: unreachable on both, and nothing moves', async () => {
  for (const port of [8472, 8285]) {
    await dropBetween(1, 3, port, '-I');
    await dropBetween(3, 1, port, '-I');
  }
  try {
    const before = [pathLines(1).length, pathLines(3).length];
    await waitFor('h1 to see both paths to h3 down', 10_000, async () => {
      const st = await weftStatus(lab, agent(1).agent);
      const p = st.status.peers.find((x: { subnet: string }) => x.subnet === subnetOf(3));
      return /^unreachable: vxlan probes failing since .*, udp probes failing since/.test(p.pathReason ?? '');
    });
    await new Promise((r) => setTimeout(r, 5000));
    const st = await weftStatus(lab, agent(1).agent);
    const p3 = st.status.peers.find((x: { subnet: string }) => x.subnet === subnetOf(3));
    console.log(`  both paths dropped h1<->h3: h1 reports ${p3.path}: ${p3.pathReason}`);
    assert.is(p3.path, 'vxlan', 'stays where it was');
    assert.is(p3.reachable, false);
    assert.equal(p3.probes && [p3.probes.vxlan.state, p3.probes.udp.state], ['down', 'down'], st.text);
    assert.equal([pathLines(1).length, pathLines(3).length], before, 'no move on either side');
    assert.is(await routeDev(1, 3), DEV);
    assert.is(await routeDev(3, 1), DEV);
    assert.is(st.code, 1, 'weft status exits 1: a peer does not reply');
  } finally {
    for (const port of [8472, 8285]) {
      await dropBetween(1, 3, port, '-D');
      await dropBetween(3, 1, port, '-D');
    }
  }
  const r = await ping(on(1).ns, on(3).ip, { count: 3, intervalMs: 200, timeoutS: 2 });
  assert.is(r.received, 3, r.output);
});

test.run();
