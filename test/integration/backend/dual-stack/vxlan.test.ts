// Dual stack on kernel VXLAN, end to end: a dual-stack underlay (192.0.2.0/24
// and 2001:db8::/64), two weft hosts and a hand-built flannel-style
// dual-stack node (flannel.1 and flannel-v6.1 made with `ip`, its lease with
// the `&` key and PublicIPv6/BackendV6Data written with etcdctl). Real pings
// over both families, a sha256-checked 10 MB TCP transfer over IPv6, the
// kernel's IPv6 entries (ip -j -6, bridge -j) against the leases, and a
// kill -9 + restart that loses no IPv6 ping.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, type LabContainer, type LabHost } from '../../../../lab/lab.js';
import { pingAllPairs, startPinger } from '../../../../lab/ping.js';
import { checkedTransfer } from '../../../../lab/transfer.js';
import { attachContainer, logRecords, PREFIX, putNetworkConfig, restartAgent, startAgent, waitFor, waitReady, type StartedAgent } from '../../../../lab/agent.js';

const DEV6 = 'weft-v6.1';
const IPV6_NETWORK = 'fd00:10:244::/48';
const FLANNEL = { v4: '10.244.77.0/24', v6: 'fd00:10:244:77::/64', mac: '0e:00:00:00:77:04', mac6: '0e:00:00:00:77:06' };
// flannel's ParseSubnetKey regex (pkg/subnet/subnet.go), applied to the whole key as flannel does.
const FLANNEL_KEY_RE = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

let lab: Lab;
let weft: StartedAgent[] = [];
const containers: LabContainer[] = [];

async function etcdctl(...args: string[]): Promise<string> {
  const r = await lab.execIn(lab.etcdNs!, 'etcdctl', ['--endpoints', lab.etcd!.labEndpoints[0]!, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function sh(ns: string, ...args: string[]): Promise<void> {
  const r = await lab.execIn(ns, args[0]!, args.slice(1));
  if (r.code !== 0) throw new Error(`${args.join(' ')} in ${ns}: ${r.stderr}`);
}

interface Lease6 { key: string; v4: string; v6: string; publicIp: string; publicIpv6: string; mac6: string; raw: Record<string, unknown> }

async function leases(): Promise<Lease6[]> {
  const all = await lab.etcd!.client().getAll().prefix(`${PREFIX}/subnets/`).strings();
  return Object.entries(all).map(([key, v]) => {
    const m = FLANNEL_KEY_RE.exec(key)!;
    const j = JSON.parse(v) as { PublicIP: string; PublicIPv6: string; BackendV6Data: { VtepMAC: string } };
    return { key, v4: `${m[1]}/${m[2]}`, v6: `${m[3]}/${m[4]}`, publicIp: j.PublicIP, publicIpv6: j.PublicIPv6, mac6: j.BackendV6Data?.VtepMAC, raw: j as unknown as Record<string, unknown> };
  });
}

/** What iproute2 says the host holds on weft-v6.1 (in the IPv6 network), as comparable strings. */
async function kernelView6(h: LabHost) {
  const inNet = (a: string) => a.startsWith('fd00:10:244:');
  const neigh = (await lab.ipJson(h.ns, ['-6', 'neigh', 'show', 'dev', DEV6])) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  const fdb = (await lab.bridgeJson(h.ns, ['fdb', 'show', 'dev', DEV6])) as Array<{ mac: string; dst?: string; flags?: string[]; state?: string }>;
  const route = (await lab.ipJson(h.ns, ['-6', 'route', 'show', 'dev', DEV6])) as Array<{ dst: string; gateway?: string; flags?: string[]; protocol?: string }>;
  return {
    neigh: neigh.filter((n) => inNet(n.dst)).map((n) => `${n.dst} ${n.lladdr} ${(n.state ?? []).join(',')}`).sort(),
    fdb: fdb.filter((f) => f.dst).map((f) => `${f.mac} ${f.dst} ${(f.flags ?? []).join(',')} ${f.state ?? ''}`.trim()).sort(),
    route: route.filter((r) => inNet(r.dst)).map((r) => `${r.dst} via ${r.gateway} ${(r.flags ?? []).join(',')} proto ${r.protocol}`).sort(),
  };
}

function expectedView6(h: LabHost, all: Lease6[]) {
  const peers = all.filter((l) => l.publicIpv6 !== h.underlayIpv6);
  const addr0 = (s: string) => s.slice(0, s.indexOf('/'));
  return {
    neigh: peers.map((p) => `${addr0(p.v6)} ${p.mac6} PERMANENT`).sort(),
    fdb: peers.map((p) => `${p.mac6} ${p.publicIpv6} self permanent`).sort(),
    route: peers.map((p) => `${p.v6} via ${addr0(p.v6)} onlink proto 87`).sort(),
  };
}

const v6Targets = () => containers.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6! }));

test.before(async () => {
  lab = await Lab.create({ hosts: 3, ipv6: true });
  await putNetworkConfig(lab, { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: IPV6_NETWORK, Backend: { Type: 'vxlan', VNI: 1, Port: 8472 } });

  // h3: flannel's dual-stack vxlan node, by hand. Lease first, so no weft node takes its subnets.
  const h3 = lab.host(3);
  const leaseId = /lease ([0-9a-f]+) granted/.exec(await etcdctl('lease', 'grant', '600'))![1]!;
  const value = JSON.stringify({
    PublicIP: h3.underlayIp, PublicIPv6: h3.underlayIpv6, BackendType: 'vxlan',
    BackendData: { VNI: 1, VtepMAC: FLANNEL.mac }, BackendV6Data: { VNI: 1, VtepMAC: FLANNEL.mac6 },
  });
  await etcdctl('put', `--lease=${leaseId}`, `${PREFIX}/subnets/10.244.77.0-24&fd00:10:244:77::-64`, value);
  await sh(h3.ns, 'ip', 'link', 'add', 'flannel.1', 'address', FLANNEL.mac, 'mtu', '1450', 'type', 'vxlan', 'id', '1', 'local', h3.underlayIp, 'dev', 'eth0', 'dstport', '8472', 'nolearning');
  await sh(h3.ns, 'ip', 'link', 'add', 'flannel-v6.1', 'address', FLANNEL.mac6, 'mtu', '1450', 'type', 'vxlan', 'id', '1', 'local', h3.underlayIpv6!, 'dev', 'eth0', 'dstport', '8472', 'nolearning');
  await sh(h3.ns, 'ip', 'addr', 'add', '10.244.77.0/32', 'dev', 'flannel.1');
  await sh(h3.ns, 'ip', 'addr', 'add', 'fd00:10:244:77::/128', 'dev', 'flannel-v6.1', 'nodad');
  await sh(h3.ns, 'ip', 'link', 'set', 'flannel.1', 'up');
  await sh(h3.ns, 'ip', 'link', 'set', 'flannel-v6.1', 'up');
  await sh(h3.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');

  weft = [];
  for (const h of [lab.host(1), lab.host(2)]) {
    const agent = startAgent(lab, h, h.index === 2 ? ['--ip-masq'] : []);
    weft.push({ host: h, agent, ready: await waitReady(lab, agent) });
  }
  for (const u of weft) containers.push(await attachContainer(lab, u.host, u.ready));
  containers.push(await lab.addContainer(h3, { bridge: 'cni0', subnet: FLANNEL.v4, gateway: '10.244.77.1', mtu: 1430, ipv6: { subnet: FLANNEL.v6, gateway: 'fd00:10:244:77::1' } }));

  // flannel's side of the entries, by hand, from the leases the weft nodes wrote (both families, as vxlan_network.go does).
  for (const l of (await leases()).filter((x) => x.publicIp !== h3.underlayIp)) {
    const j = l.raw as { BackendData: { VtepMAC: string } };
    const v4gw = l.v4.replace(/\/\d+$/, '');
    const v6gw = l.v6.replace(/\/\d+$/, '');
    await sh(h3.ns, 'ip', 'neigh', 'replace', v4gw, 'lladdr', j.BackendData.VtepMAC, 'dev', 'flannel.1', 'nud', 'permanent');
    await sh(h3.ns, 'bridge', 'fdb', 'replace', j.BackendData.VtepMAC, 'dev', 'flannel.1', 'dst', l.publicIp, 'self', 'permanent');
    await sh(h3.ns, 'ip', 'route', 'replace', l.v4, 'via', v4gw, 'dev', 'flannel.1', 'onlink');
    await sh(h3.ns, 'ip', '-6', 'neigh', 'replace', v6gw, 'lladdr', l.mac6, 'dev', 'flannel-v6.1', 'nud', 'permanent');
    await sh(h3.ns, 'bridge', 'fdb', 'replace', l.mac6, 'dev', 'flannel-v6.1', 'dst', l.publicIpv6, 'self', 'permanent');
    await sh(h3.ns, 'ip', '-6', 'route', 'replace', l.v6, 'via', v6gw, 'dev', 'flannel-v6.1', 'onlink');
  }
});

test.after(async () => {
  await lab?.destroy();
});

test('leases are flannel\'s: `<v4>-<len>&<v6>-<len>` keys, PublicIPv6, two VTEP MACs; subnet.env has the IPv6 pair', async () => {
  const mine = (await leases()).filter((l) => l.publicIp !== lab.host(3).underlayIp);
  assert.is(mine.length, 2);
  for (const l of mine) {
    const u = weft.find((w) => w.host.underlayIp === l.publicIp)!;
    assert.is(l.publicIpv6, u.host.underlayIpv6);
    assert.equal(Object.keys(l.raw), ['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data']);
    const d4 = (l.raw.BackendData as { VtepMAC: string }).VtepMAC;
    assert.is.not(d4, l.mac6, 'each device has its own MAC');
    assert.is(l.v6.endsWith('/64') && l.v6.startsWith('fd00:10:244:'), true, l.key);
    assert.equal(u.ready.ipv6, { subnet: l.v6, gateway: `${l.v6.replace(/::\/64$/, '')}::1` });
    const dev = (await lab.ipJson(u.host.ns, ['-d', 'link', 'show', DEV6]))[0] as { address: string; mtu: number; linkinfo: { info_data: { id: number; local6: string; port: number; learning?: boolean } } };
    assert.equal([dev.address, dev.mtu, dev.linkinfo.info_data.id, dev.linkinfo.info_data.local6, dev.linkinfo.info_data.port], [l.mac6, 1430, 1, u.host.underlayIpv6, 8472]);
    const bridge6 = (await lab.ipJson(u.host.ns, ['-6', 'addr', 'show', 'dev', 'weft0', 'scope', 'global']))[0].addr_info.filter((a: { local?: string }) => a.local).map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
    assert.equal(bridge6, [`${u.ready.ipv6!.gateway}/64`]);
    const fwd = await lab.execIn(u.host.ns, 'sysctl', ['-n', 'net.ipv6.conf.all.forwarding']);
    assert.is(fwd.stdout.trim(), '1');
  }
});

test('--ip-masq: the masquerade chain in ip6tables too, on the IPv6 network and this host\'s IPv6 subnet', async () => {
  const u = weft[1]!;
  const r = await lab.execIn(u.host.ns, 'ip6tables', ['-w', '5', '-t', 'nat', '-S', 'WEFT-POSTRTG']);
  assert.is(r.code, 0, r.stderr);
  const net = IPV6_NETWORK;
  assert.match(r.stdout, new RegExp(`-A WEFT-POSTRTG -s ${net.replace(/\//g, '\\/')} -d ${net.replace(/\//g, '\\/')} .*-j RETURN`));
  assert.match(r.stdout, new RegExp(`! -s ${net.replace(/\//g, '\\/')} -d ${u.ready.ipv6!.subnet.replace(/\//g, '\\/')} .*-j RETURN`));
  assert.match(r.stdout, /! -d ff00::\/8 .*-j MASQUERADE --random-fully/);
  const jump = await lab.execIn(u.host.ns, 'ip6tables', ['-w', '5', '-t', 'nat', '-S', 'POSTROUTING']);
  assert.match(jump.stdout, /-j WEFT-POSTRTG/);
});

test('every container pings every other over IPv4 and over IPv6, flannel\'s node included', async () => {
  await pingAllPairs(lab, containers);
  // The hand-built node's gateway, fd00:10:244:77::1 on cni0, is the CNI bridge plugin's address, added with DAD:
  // until DAD ends (1-2 s after cni0 gets a carrier, i.e. after its first container) it is `tentative` and answers no
  // neighbour solicitation, so its container's first echo waits ~1 s in the neighbour queue (observed: the first
  // `ping -6` from it took 1010 ms while `ip -6 addr show dev cni0` said tentative; a 1 s timeout counts it lost).
  // That is the hand-built node's, not weft's (weft's bridge address is added nodad); wait for DAD to end instead.
  await waitFor('DAD on the hand-built node\'s cni0', 5000, async () => (await lab.execIn(lab.host(3).ns, 'ip', ['-6', 'addr', 'show', 'dev', 'cni0', 'tentative'])).stdout.trim() === '');
  await pingAllPairs(lab, v6Targets());
});

test('the kernel entries on weft-v6.1 match the leases exactly (ip -j -6, bridge -j)', async () => {
  const all = await leases();
  for (const u of weft) assert.equal(await kernelView6(u.host), expectedView6(u.host, all), `IPv6 kernel state of ${u.host.name}`);
});

test('10 MB of TCP over IPv6 between containers on two weft hosts arrives intact (sha256)', async () => {
  const [a, b] = v6Targets();
  const r = await checkedTransfer(lab, a!, b!, { bytes: 10 * 1024 * 1024, port: 7106 });
  assert.is(r.receivedBytes, r.bytes);
  assert.is(r.receivedSha, r.sentSha);
});

test('kill -9 and restart of weftd loses no IPv6 ping; the kernel entries stay as the leases say', async () => {
  const u = weft[0]!;
  const [c1, c2] = containers;
  const pinger = startPinger(c2!.ns, c1!.ipv6!, 10);
  await new Promise((r) => setTimeout(r, 500));
  process.kill(u.agent.proc.pid!, 'SIGKILL');
  await waitFor('weftd to die', 5000, () => u.agent.proc.exitCode !== null || u.agent.proc.signalCode !== null);
  await new Promise((r) => setTimeout(r, 500));
  await restartAgent(lab, u.agent);
  await waitReady(lab, u.agent);
  await new Promise((r) => setTimeout(r, 500));
  const s = await pinger.stop();
  assert.ok(s.sent > 50, `pinger sent ${s.sent}`);
  assert.is(s.lost, 0, `lost seqs ${s.lostSeqs.join(',')}`);
  assert.equal(await kernelView6(u.host), expectedView6(u.host, await leases()));
  // It adopted, not rebuilt: no IPv6 entry was written on restart (the same lease, the same MAC).
  assert.not.ok(logRecords(lab, u.agent).some((r) => r.msg === 'replacing VXLAN device with different parameters'));
});

test.run();
